"""Simulated Modbus devices served by real pymodbus servers: TCP on loopback and RTU over a
pair of pseudo-terminals.

A :class:`SimulatedModbusDevice` takes a device profile (the same TOML the gateway reads) and a
value source (a mapping or a function returning field -> value); every read encodes the current
values with the profile's data types, word order and scale. Registers between the profile's
lowest and highest address answer (zero where the profile defines nothing), forbidden ranges
and everything outside answer with an ILLEGAL DATA ADDRESS exception, as a real device would.

Faults to inject: ``muted`` (no reply at all), ``exception_code`` (every read answered with that
Modbus exception) and ``garble_replies`` (reply sent with a broken CRC, RTU only).

Servers: :class:`ModbusTcpSimulator` (``async with``; ``.port`` is the bound port on
127.0.0.1) and :class:`ModbusRtuSimulator` (``async with``; ``.client_port`` is the pty path the
gateway opens). :class:`PtyLine` is the virtual RS-485 cable between two pseudo-terminals.
"""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import Callable, Mapping
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from gateway.modbus.decode import encode_register
from gateway.modbus.profile import DeviceProfile

ValueSource = Mapping[str, float] | Callable[[], Mapping[str, float]]


class SimulatedModbusDevice:
    """One Modbus device answering by its profile; see the module docstring."""

    def __init__(self, profile: DeviceProfile, unit: int = 1,
                 values: ValueSource | None = None) -> None:
        self.profile = profile
        self.unit = unit
        self.values: ValueSource = values if values is not None else {}
        self.muted = False
        self.exception_code: int | None = None
        self.garble_replies = False
        self.reads = 0

    def current_values(self) -> Mapping[str, float]:
        """The values the device reports now."""
        return self.values() if callable(self.values) else self.values

    def _valid_ranges(self) -> list[tuple[int, int]]:
        lo = min(r.address for r in self.profile.registers)
        hi = max(r.address + r.count - 1 for r in self.profile.registers)
        cuts = sorted((f.start, f.end) for f in self.profile.forbidden)
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
        """The pymodbus ``SimDevice`` that serves this device."""
        simdata = [SimData(address=a, count=b - a + 1, values=0, datatype=DataType.REGISTERS)
                   for a, b in self._valid_ranges()]
        return SimDevice(id=self.unit, simdata=simdata, action=self._action)

    async def _action(self, function_code: int, start_address: int, address: int, count: int,
                      registers: list[int], set_values: Any) -> ExcCodes | None:
        if self.muted:
            # the server is built with ignore_missing_devices: this sends no reply at all
            raise NoSuchIdException(f"simulated device {self.unit} is muted")
        self.reads += 1
        if self.exception_code is not None:
            return ExcCodes(self.exception_code)
        values = self.current_values()
        for reg in self.profile.registers:
            if reg.function != function_code or reg.field not in values:
                continue
            if reg.address + reg.count <= address or reg.address >= address + count:
                continue
            raw = encode_register(self.profile, reg, values[reg.field])
            for i, word in enumerate(raw):
                registers[reg.address - start_address + i] = word
        return None


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
            [d.sim_device() for d in self.devices], address=("127.0.0.1", self._requested_port),
            ignore_missing_devices=True)
        await self._server.serve_forever(background=True)
        self.port = self._server.transport.sockets[0].getsockname()[1]

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

    def __init__(self, *, baudrate: int | None = None, bits_per_char: int = 11) -> None:
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
        if self.char_s and self._loop is not None:
            # deliver when the last character would have left the wire; characters queue
            # behind those still on the wire in the same direction, so order is kept
            now = self._loop.time()
            done = max(now, self._busy_until.get(src, 0.0)) + len(data) * self.char_s
            self._busy_until[src] = done
            self._loop.call_later(done - now, os.write, dst, data)
        else:
            os.write(dst, data)

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
                 parity: str = "N", stopbits: int = 1, wire_time: bool = False) -> None:
        self.devices = devices
        self.baudrate = baudrate
        self.parity = parity
        self.stopbits = stopbits
        bits = 1 + 8 + (0 if parity == "N" else 1) + stopbits
        self.line = PtyLine(baudrate=baudrate if wire_time else None, bits_per_char=bits)
        self._server: ModbusSerialServer | None = None

    @property
    def client_port(self) -> str:
        """The serial port path the gateway opens."""
        return self.line.client_port

    async def start(self) -> None:
        """Start relaying the line and serving."""
        self.line.start()
        self._server = ModbusSerialServer(
            [d.sim_device() for d in self.devices], framer=FramerType.RTU,
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
