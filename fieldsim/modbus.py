"""Simulated Modbus devices served by real pymodbus servers: TCP on loopback and RTU over a
pair of pseudo-terminals.

A :class:`SimulatedModbusDevice` takes a device profile (the same TOML the gateway reads) and a
value source (a mapping or a function returning field -> value, text for string fields); every
read encodes the current values with the profile's data types, byte order and scale. It behaves
like the meters it stands for: holding (FC3) and input registers (FC4), coils and discrete
inputs are separate blocks; per function, registers between the profile's lowest and highest
address answer (zero where the profile defines nothing); forbidden ranges and everything
outside answer ILLEGAL DATA ADDRESS, a read of more than the profile's ``max_registers``
answers ILLEGAL DATA VALUE (an SDM630 refuses more than 80); a unit id nobody has stays silent.

A profile's ``[[settings]]`` (line settings, node address, model code) are served as well and
are writable (FC6/FC16; writes elsewhere answer ILLEGAL DATA ADDRESS): a write changes
``device.settings``, so a test sees the meter take its new baud rate. They start at
``settings=`` or else the profile's ``identify`` values (the model code).

Faults to inject: ``muted`` (no reply at all), ``exception_code`` (every read answered with that
Modbus exception), ``busy_replies`` (the next N reads answered SERVER DEVICE BUSY) and
``garble_replies`` (reply sent with a broken CRC, RTU only). A NaN or infinite value in the
value source is sent as that IEEE float, as a meter with a failed measurement does.
:class:`FaultyModbusSlave` (below) misbehaves on the wire in ways pymodbus's server cannot:
late, long, wrong-function and wrong-unit replies.

Servers: :class:`ModbusTcpSimulator` (``async with``; ``.port`` is the bound port on
127.0.0.1) and :class:`ModbusRtuSimulator` (``async with``; ``.client_port`` is the pty path the
gateway opens). :class:`PtyLine` is the virtual RS-485 cable between two pseudo-terminals; with
``line_settings_matter=True`` a client whose baud rate, stop or data bits differ from the
server's gets what a UART at the wrong settings gets: garbage reaches the device, which stays
silent. (Parity cannot be compared: Linux ptys drop PARENB, and refuse a change that only
sets it with EINVAL, as a USB adapter refuses settings it cannot do.)
"""

from __future__ import annotations

import asyncio
import functools
import os
import termios
import tty
from collections.abc import Callable, Mapping
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from gateway.modbus.decode import decode_register, decode_text, encode_register, encode_text
from gateway.modbus.profile import BIT_FUNCTIONS, DeviceProfile

ValueSource = Mapping[str, float | str] | Callable[[], Mapping[str, float | str]]
_BLOCKS = (1, 2, 3, 4)  # pymodbus's order of separate blocks: coils, discrete, holding, input


class SimulatedModbusDevice:
    """One Modbus device answering by its profile; see the module docstring."""

    def __init__(self, profile: DeviceProfile, unit: int = 1,
                 values: ValueSource | None = None,
                 settings: Mapping[str, float | str] | None = None) -> None:
        self.profile = profile
        self.unit = unit
        self.values: ValueSource = values if values is not None else {}
        self.settings: dict[str, float | str] = {
            k: (v if not profile.spec(k).numeric else float(v))
            for k, v in profile.identify.items() if any(s.field == k for s in profile.settings)}
        self.settings.update(settings or {})
        self.writes = 0
        self.muted = False
        self.exception_code: int | None = None
        self.garble_replies = False
        self.busy_replies = 0
        self.reads = 0

    def current_values(self) -> Mapping[str, float | str]:
        """The values the device reports now (its settings included)."""
        values = self.values() if callable(self.values) else self.values
        return {**values, **self.settings} if self.settings else values

    def valid_ranges(self, function: int) -> list[tuple[int, int]]:
        """The address ranges (inclusive) of ``function`` that answer with data."""
        regs = [r for r in (*self.profile.registers, *self.profile.settings)
                if r.function == function]
        if not regs:
            return []
        lo = min(r.address for r in regs)
        hi = max(r.address + r.count - 1 for r in regs)
        cuts = sorted((f.start, f.end) for f in self.profile.forbidden if f.function == function)
        ranges: list[tuple[int, int]] = []
        start = lo
        for f_start, f_end in cuts:
            if f_end < start or f_start > hi:
                continue
            if f_start > start:
                ranges.append((start, f_start - 1))
            start = max(start, f_end + 1)
        if start <= hi:
            ranges.append((start, hi))
        return ranges

    def sim_device(self) -> SimDevice:
        """The pymodbus ``SimDevice`` that serves this device: four separate blocks."""
        blocks: list[list[SimData]] = []
        for function in _BLOCKS:
            if function in BIT_FUNCTIONS:
                # bit addressing: block register k holds bits 16k..16k+15
                ranges = self.valid_ranges(function)
                words = sorted({a // 16 for lo, hi in ranges for a in range(lo, hi + 1)})
                block = [SimData(address=16 * w, count=1, values=False, datatype=DataType.BITS)
                         for w in words] or [SimData(address=0xFFF0, count=1, values=False,
                                                     datatype=DataType.BITS)]
            else:
                block = [SimData(address=a, count=b - a + 1, values=0,
                                 datatype=DataType.REGISTERS)
                         for a, b in self.valid_ranges(function)]
            # pymodbus needs a block per function: a function the profile lacks gets one
            # invalid register, answered ILLEGAL DATA ADDRESS like everything outside
            blocks.append(block or [SimData(address=0xFFFF, count=1,
                                            datatype=DataType.INVALID)])
        return SimDevice(id=self.unit, simdata=(blocks[0], blocks[1], blocks[2], blocks[3]),
                         action=self._action)

    def _inside(self, function: int, address: int, count: int) -> bool:
        return any(lo <= address and address + count - 1 <= hi
                   for lo, hi in self.valid_ranges(function))

    async def _action(self, function_code: int, start_address: int, address: int, count: int,
                      registers: list[int], set_values: Any) -> ExcCodes | None:
        if self.muted:
            # the server is built with ignore_missing_devices: this sends no reply at all
            raise NoSuchIdException(f"simulated device {self.unit} is muted")
        self.reads += 1
        if self.exception_code is not None:
            return ExcCodes(self.exception_code)
        if self.busy_replies > 0:
            self.busy_replies -= 1
            return ExcCodes.DEVICE_BUSY
        if set_values is not None:
            if function_code in (5, 15):
                return None  # coils are stored by pymodbus as sent
            return self._write(address, [int(v) for v in set_values])
        # pymodbus reads the block back to echo a write (FC5/6): that is a read of its block
        function_code = {5: 1, 15: 1, 6: 3, 16: 3}.get(function_code, function_code)
        limit = 2000 if function_code in BIT_FUNCTIONS else self.profile.max_registers
        if count > limit:
            return ExcCodes.ILLEGAL_VALUE
        if not self._inside(function_code, address, count):
            return ExcCodes.ILLEGAL_ADDRESS
        self._fill(function_code, start_address, address, count, registers)
        return None

    def _write(self, address: int, words: list[int]) -> ExcCodes | None:
        """A write of holding registers: only whole settings may be written (like a meter's
        configuration registers); the device takes the new value at once."""
        end = address + len(words)
        hit = [s for s in self.profile.settings
               if s.function == 3 and s.address < end and address < s.address + s.count]
        if not hit or any(s.address < address or s.address + s.count > end for s in hit):
            return ExcCodes.ILLEGAL_ADDRESS
        covered = sum(s.count for s in hit)
        if covered != len(words):
            return ExcCodes.ILLEGAL_ADDRESS
        for spec in hit:
            raw = words[spec.address - address:spec.address - address + spec.count]
            self.settings[spec.field] = (decode_text(self.profile, spec, raw) if not spec.numeric
                                         else decode_register(self.profile, spec, raw))
        self.writes += 1
        return None

    def answer(self, function: int, address: int, count: int) -> list[int] | int:
        """The registers a read of FC3/FC4 returns, or the exception code it gets."""
        if function not in (3, 4):
            return int(ExcCodes.ILLEGAL_FUNCTION)
        if count > self.profile.max_registers:
            return int(ExcCodes.ILLEGAL_VALUE)
        if not self._inside(function, address, count):
            return int(ExcCodes.ILLEGAL_ADDRESS)
        registers = [0] * count
        self._fill(function, address, address, count, registers)
        return registers

    def _fill(self, function_code: int, start_address: int, address: int, count: int,
              registers: list[int]) -> None:
        values = self.current_values()
        for reg in (*self.profile.registers, *self.profile.settings):
            if reg.function != function_code or reg.field not in values:
                continue
            if reg.address + reg.count <= address or reg.address >= address + count:
                continue
            value = values[reg.field]
            if function_code in BIT_FUNCTIONS:
                word, bit = divmod(reg.address, 16)
                mask = 1 << bit
                i = word - start_address
                registers[i] = (registers[i] | mask) if value else (registers[i] & ~mask)
                continue
            raw = (encode_text(self.profile, reg, value) if isinstance(value, str)
                   else encode_register(self.profile, reg, float(value)))
            i0 = reg.address - start_address
            if reg.type == "bit":
                assert reg.bit is not None
                registers[i0] = (registers[i0] & ~(1 << reg.bit)) | raw[0]
                continue
            for i, word in enumerate(raw):
                if 0 <= i0 + i < len(registers):
                    registers[i0 + i] = word


async def _absent(*_args: Any) -> ExcCodes | None:
    raise NoSuchIdException("no simulated device has this unit id")


def _sim_devices(devices: list[SimulatedModbusDevice]) -> list[SimDevice]:
    """The devices plus a catch-all (id 0 = every other unit id) that stays silent: a unit
    id nobody has gets no reply on a real line, not an exception."""
    silent = SimDevice(id=0, simdata=[SimData(address=0, count=0xFFFF, values=0,
                                              datatype=DataType.REGISTERS)], action=_absent)
    return [d.sim_device() for d in devices] + [silent]


def _garbler(devices: list[SimulatedModbusDevice]) -> Callable[[bool, bytes], bytes]:
    by_unit = {d.unit: d for d in devices}

    def trace_packet(sending: bool, data: bytes) -> bytes:
        if sending and data:
            device = by_unit.get(data[0])
            if device is not None and device.garble_replies:
                return data[:-1] + bytes([data[-1] ^ 0xFF])  # break the CRC
        return data

    return trace_packet


class ModbusTcpSimulator:
    """A Modbus TCP server on 127.0.0.1 serving simulated devices (by unit id)."""

    def __init__(self, devices: list[SimulatedModbusDevice], *, port: int = 0) -> None:
        self.devices = devices
        self._requested_port = port
        self.port = port
        self._server: ModbusTcpServer | None = None

    async def start(self) -> None:
        """Start listening; ``.port`` is then the bound port."""
        self._server = ModbusTcpServer(
            _sim_devices(self.devices), address=("127.0.0.1", self._requested_port),
            ignore_missing_devices=True)
        await self._server.serve_forever(background=True)
        listening = self._server.transport  # pymodbus keeps its asyncio.Server here
        if not isinstance(listening, asyncio.Server):
            raise RuntimeError(f"pymodbus server did not listen: {listening!r}")
        self.port = listening.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the server and its connections."""
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    async def __aenter__(self) -> ModbusTcpSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class PtyLine:
    """Two pseudo-terminals joined like the two ends of an RS-485 cable.

    Bytes written to one end's path come out of the other's. Optionally the line takes the
    real character time (``baudrate``/``bits_per_char``), so timing is that of the wire.
    """

    def __init__(self, *, baudrate: int | None = None, bits_per_char: int = 11,
                 line_settings_matter: bool = False) -> None:
        self.line_settings_matter = line_settings_matter
        self.garbled_bytes = 0
        self._fds: list[tuple[int, int]] = []
        for _ in range(2):
            master, slave = os.openpty()
            tty.setraw(slave)
            self._fds.append((master, slave))
        self.server_port = os.ttyname(self._fds[0][1])
        self.client_port = os.ttyname(self._fds[1][1])
        self.char_s = bits_per_char / baudrate if baudrate else 0.0
        self.bytes_relayed = 0
        self._busy_until: dict[int, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start relaying (in the running event loop)."""
        self._loop = asyncio.get_running_loop()
        a, b = self._fds[0][0], self._fds[1][0]
        self._loop.add_reader(a, self._relay, a, b)
        self._loop.add_reader(b, self._relay, b, a)

    def _relay(self, src: int, dst: int) -> None:
        try:
            data = os.read(src, 4096)
        except OSError:
            return
        self.bytes_relayed += len(data)
        if self.line_settings_matter and not self._same_settings():
            # a UART at the wrong rate or framing reads garbage (and framing errors)
            self.garbled_bytes += len(data)
            data = bytes(b ^ 0xA5 for b in data)
        if self.char_s and self._loop is not None:
            # deliver when the last character would have left the wire; characters queue
            # behind those still on the wire in the same direction, so order is kept
            now = self._loop.time()
            done = max(now, self._busy_until.get(src, 0.0)) + len(data) * self.char_s
            self._busy_until[src] = done
            self._loop.call_later(done - now, os.write, dst, data)
        else:
            os.write(dst, data)

    def _same_settings(self) -> bool:
        """Whether both ends use the same baud rate, data bits and stop bits (a pty keeps no
        parity)."""
        mask = termios.CSIZE | termios.CSTOPB | termios.CBAUD
        try:
            a, b = (termios.tcgetattr(slave) for _, slave in self._fds)
        except termios.error:
            return True
        return (a[4], a[5], a[2] & mask) == (b[4], b[5], b[2] & mask)

    def close(self) -> None:
        """Stop relaying and close both pseudo-terminals."""
        if self._loop is not None:
            for master, _ in self._fds:
                self._loop.remove_reader(master)
            self._loop = None
        for master, slave in self._fds:
            for fd in (master, slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._fds = []


class ModbusRtuSimulator:
    """A Modbus RTU server on one end of a :class:`PtyLine`; the gateway opens
    ``.client_port`` with the same serial settings."""

    def __init__(self, devices: list[SimulatedModbusDevice], *, baudrate: int = 9600,
                 parity: str = "N", stopbits: int = 1, wire_time: bool = False,
                 line_settings_matter: bool = False) -> None:
        self.devices = devices
        self.baudrate = baudrate
        self.parity = parity
        self.stopbits = stopbits
        bits = 1 + 8 + (0 if parity == "N" else 1) + stopbits
        self.line = PtyLine(baudrate=baudrate if wire_time else None, bits_per_char=bits,
                            line_settings_matter=line_settings_matter)
        self._server: ModbusSerialServer | None = None

    @property
    def client_port(self) -> str:
        """The serial port path the gateway opens."""
        return self.line.client_port

    async def start(self) -> None:
        """Start relaying the line and serving."""
        self.line.start()
        self._server = ModbusSerialServer(
            _sim_devices(self.devices), framer=FramerType.RTU,
            port=self.line.server_port, baudrate=self.baudrate, parity=self.parity,
            stopbits=self.stopbits, ignore_missing_devices=True,
            trace_packet=_garbler(self.devices))
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        """Stop serving and close the line."""
        if self._server is not None:
            await self._server.shutdown()
            self._server = None
        self.line.close()

    async def __aenter__(self) -> ModbusRtuSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


FAULTS = ("late", "long", "short", "wrong_function", "wrong_unit", "busy", "stale_tid")
"""What :class:`FaultyModbusSlave` can do to one reply."""


class FaultyModbusSlave:
    """A raw Modbus slave (RTU on a :class:`PtyLine`, or TCP on 127.0.0.1) that answers FC3/FC4
    from simulated devices and misbehaves on request, the way real lines and gateways do.

    ``faults`` is a queue: each request takes the next fault (``None`` = answer correctly):
    ``late`` (the right reply, ``late_s`` after the request), ``long`` (two registers more than
    asked), ``short`` (one fewer), ``wrong_function`` (FC4 answered as FC3 and vice versa),
    ``wrong_unit`` (the reply carries unit id + 1), ``busy`` (exception 6), ``stale_tid`` (TCP:
    the previous transaction id). ``log`` records (unit, function, address, count, fault).
    """

    def __init__(self, devices: list[SimulatedModbusDevice], *, tcp: bool = False,
                 late_s: float = 0.3) -> None:
        self.devices = {d.unit: d for d in devices}
        self.tcp = tcp
        self.late_s = late_s
        self.faults: list[str | None] = []
        self.log: list[tuple[int, int, int, int, str | None]] = []
        self.port: int | str = 0
        self._line: PtyLine | None = None
        self._server: asyncio.Server | None = None
        self._fd: int | None = None
        self._buf = b""
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_tid = 0

    async def __aenter__(self) -> FaultyModbusSlave:
        if self.tcp:
            self._server = await asyncio.start_server(self._serve_tcp, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
        else:
            self._line = PtyLine()
            self._line.start()
            self._fd = os.open(self._line.server_port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            asyncio.get_running_loop().add_reader(self._fd, self._on_rtu)
            self.port = self._line.client_port
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
        if self._line is not None:
            self._line.close()

    def _reply_pdu(self, unit: int, function: int, address: int, count: int
                   ) -> tuple[int, bytes] | None:
        fault = self.faults.pop(0) if self.faults else None
        self.log.append((unit, function, address, count, fault))
        device = self.devices.get(unit)
        if device is None or device.muted:
            return None  # an absent unit is silent
        device.reads += 1
        if fault == "busy":
            return unit, bytes([function | 0x80, 6])
        answer = device.answer(function, address, count)
        if isinstance(answer, int):
            return unit, bytes([function | 0x80, answer])
        if fault == "long":
            answer = answer + [0x1234, 0x5678]
        elif fault == "short":
            answer = answer[:-1]
        reply_fc = {3: 4, 4: 3}[function] if fault == "wrong_function" else function
        reply_unit = (unit + 1) & 0xFF if fault == "wrong_unit" else unit
        data = b"".join(w.to_bytes(2, "big") for w in answer)
        return reply_unit, bytes([reply_fc, len(data)]) + data

    def _fault_of_last(self) -> str | None:
        return self.log[-1][4] if self.log else None

    def _send_later(self, delay: float, write: Callable[[], object]) -> None:
        async def later() -> None:
            await asyncio.sleep(delay)
            write()
        task = asyncio.ensure_future(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_rtu(self) -> None:
        from pymodbus.framer.rtu import FramerRTU

        assert self._fd is not None
        try:
            self._buf += os.read(self._fd, 4096)
        except OSError:
            return
        while len(self._buf) >= 8:
            frame, self._buf = self._buf[:8], self._buf[8:]
            if FramerRTU.compute_CRC(frame[:6]) != int.from_bytes(frame[6:8], "big"):
                self._buf = b""  # lost sync: wait for the next request
                return
            unit, function = frame[0], frame[1]
            address, count = int.from_bytes(frame[2:4]), int.from_bytes(frame[4:6])
            reply = self._reply_pdu(unit, function, address, count)
            if reply is None:
                continue
            body = bytes([reply[0]]) + reply[1]
            packet = body + FramerRTU.compute_CRC(body).to_bytes(2, "big")
            fd = self._fd
            delay = self.late_s if self._fault_of_last() == "late" else 0.0
            self._send_later(delay, functools.partial(os.write, fd, packet))

    async def _serve_tcp(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readexactly(7)
                tid, length, unit = int.from_bytes(head[:2]), int.from_bytes(head[4:6]), head[6]
                pdu = await reader.readexactly(length - 1)
                function = pdu[0]
                address, count = int.from_bytes(pdu[1:3]), int.from_bytes(pdu[3:5])
                reply = self._reply_pdu(unit, function, address, count)
                if reply is None:
                    continue
                fault = self._fault_of_last()
                out_tid = self._last_tid if fault == "stale_tid" else tid
                self._last_tid = tid
                body = bytes([reply[0]]) + reply[1]
                packet = out_tid.to_bytes(2, "big") + b"\0\0" + len(body).to_bytes(2, "big") + body
                delay = self.late_s if fault == "late" else 0.0
                self._send_later(delay, functools.partial(writer.write, packet))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
