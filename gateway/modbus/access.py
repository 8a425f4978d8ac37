"""Ad-hoc Modbus requests on one line or endpoint (I/O shell), as mbpoll makes them: for
``lykta commission scan modbus`` and ``lykta commission modbus read|write``.

Same rules as the poller: a reply is data only if it answers *this* request (unit and, on
TCP, transaction id checked by pymodbus; function code and length checked here); a timeout
after some bytes arrived is ``garbled`` (a device at other line settings, or noise), a
timeout with nothing is silence. Never raises for what a device does::

    async with ModbusAccess(SerialLine("/dev/ttyUSB0", 2400, "N"), timeout_s=0.2) as bus:
        got = await bus.read(1, 4, 0x0000, 2)      # list[int] | ReadFailure
        await bus.write(1, 16, 0x001C, [0x4000, 0])
"""

from __future__ import annotations

import asyncio
import termios
import time
from collections.abc import Sequence

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from gateway.modbus.poller import ReadFailure, SerialLine, TcpEndpoint, reply_mismatch
from gateway.modbus.profile import BIT_FUNCTIONS

READ_FUNCTIONS = (1, 2, 3, 4)
WRITE_FUNCTIONS = (5, 6, 15, 16)


def parse_endpoint(port: str) -> TcpEndpoint | None:
    """``tcp://host:port`` (port 502 if left out) as an endpoint; None for a serial port."""
    if not port.startswith("tcp://"):
        return None
    host, _, number = port[len("tcp://"):].rstrip("/").rpartition(":")
    if not host:
        host, number = number, "502"
    try:
        tcp_port = int(number)
    except ValueError:
        raise ValueError(f"{port}: write tcp://HOST:PORT") from None
    if not 1 <= tcp_port <= 65535:  # else the socket's OverflowError, far from the option
        raise ValueError(f"{port}: TCP port {tcp_port} is not 1..65535")
    return TcpEndpoint(host.strip("[]"), tcp_port)


class SettingsRefused(ConnectionError):
    """The serial port refuses these line settings (the adapter cannot do them)."""


class ModbusAccess:
    """One pymodbus client for ad-hoc requests; ``async with`` opens and closes it."""

    def __init__(self, link: SerialLine | TcpEndpoint, *, timeout_s: float = 0.5,
                 settle_s: float | None = None) -> None:
        self.link = link
        self.timeout_s = timeout_s
        self.settle_s = timeout_s if settle_s is None else settle_s
        self.requests = 0
        self.garbled = 0
        """Requests after which bytes arrived that formed no valid reply."""
        self._rx = 0
        self._last_rx = -1e9
        self._unsettled = False
        self._client: AsyncModbusSerialClient | AsyncModbusTcpClient | None = None

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._rx += len(data)
            self._last_rx = time.monotonic()
        return data

    async def __aenter__(self) -> ModbusAccess:
        if isinstance(self.link, SerialLine):
            self._client = AsyncModbusSerialClient(
                self.link.port, baudrate=self.link.baudrate, parity=self.link.parity,
                stopbits=self.link.stopbits, bytesize=self.link.bytesize,
                timeout=self.timeout_s, retries=0, reconnect_delay=0.1,
                reconnect_delay_max=1.0, trace_packet=self._trace)
        else:
            self._client = AsyncModbusTcpClient(
                self.link.host, port=self.link.port, timeout=self.timeout_s, retries=0,
                reconnect_delay=0.1, reconnect_delay_max=1.0, trace_packet=self._trace)
        try:
            opened = await self._client.connect()
        except termios.error as exc:
            self._client.close()
            raise SettingsRefused(f"{self.link.name}: the port refuses these line settings "
                                  f"({exc.args[-1]})") from None
        if not opened:
            self._client.close()
            what = ("cannot connect (is the device or gateway up, the port right?)"
                    if isinstance(self.link, TcpEndpoint)
                    else "cannot open the serial port (plugged in? permissions?)")
            raise ConnectionError(f"{self.link.name}: {what}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _settle(self) -> None:
        # after a failure the line must be quiet before the next request, so a late reply
        # is not taken as the answer to it
        if not self._unsettled:
            return
        self._unsettled = False
        deadline = time.monotonic() + 4 * self.settle_s
        while (now := time.monotonic()) < deadline and now - self._last_rx < self.settle_s:
            await asyncio.sleep(self.settle_s - (now - self._last_rx))

    async def _call(self, function: int, address: int, arg: int | Sequence[int] | bool,
                    unit: int) -> object | ReadFailure:
        client = self._client
        if client is None:
            raise RuntimeError(f"{self.link.name}: used outside 'async with'")
        await self._settle()
        self._rx = 0
        self.requests += 1
        try:
            if not client.connected:
                await client.connect()
            if function == 1:
                return await client.read_coils(address, count=int(arg), device_id=unit)  # type: ignore[arg-type]
            if function == 2:
                return await client.read_discrete_inputs(address, count=int(arg), device_id=unit)  # type: ignore[arg-type]
            if function == 3:
                return await client.read_holding_registers(address, count=int(arg), device_id=unit)  # type: ignore[arg-type]
            if function == 4:
                return await client.read_input_registers(address, count=int(arg), device_id=unit)  # type: ignore[arg-type]
            assert isinstance(arg, Sequence)
            if function == 5:
                return await client.write_coil(address, bool(arg[0]), device_id=unit)
            if function == 6:
                return await client.write_register(address, int(arg[0]), device_id=unit)
            if function == 15:
                return await client.write_coils(address, [bool(v) for v in arg], device_id=unit)
            if function == 16:
                return await client.write_registers(address, list(arg), device_id=unit)
            raise ValueError(f"function {function}: use 1, 2, 3, 4, 5, 6, 15 or 16")
        except ConnectionException as exc:
            return ReadFailure("connection", f"connection to {self.link.name} failed: {exc}")
        except ModbusIOException:
            if self._rx:
                self.garbled += 1
                self._unsettled = True
                return ReadFailure("garbled", f"{self._rx} bytes arrived but formed no valid "
                                   "reply (other line settings? CRC error?)")
            return ReadFailure("timeout", f"no answer in {self.timeout_s} s")
        except ModbusException as exc:
            self._unsettled = True
            return ReadFailure("garbled", f"invalid reply: {exc}")

    @staticmethod
    def _exception(reply: object, function: int) -> ReadFailure | None:
        if not getattr(reply, "isError", lambda: False)():
            return None
        code = getattr(reply, "exception_code", None)
        if (getattr(reply, "function_code", 0) & 0x7F) != function:
            return ReadFailure("mismatch", "exception reply for another function")
        return ReadFailure("exception", f"exception reply code {code}", code)

    async def read(self, unit: int, function: int, address: int, count: int
                   ) -> list[int] | ReadFailure:
        """Read ``count`` registers (FC3/4) or bits (FC1/2) from ``address`` of ``unit``."""
        if function not in READ_FUNCTIONS:
            raise ValueError(f"function {function}: reads are 1, 2, 3 or 4")
        reply = await self._call(function, address, count, unit)
        if isinstance(reply, ReadFailure):
            return reply
        failure = self._exception(reply, function)
        if failure is not None:
            return failure
        mismatch = reply_mismatch(reply, function, count)
        if mismatch is not None:
            self._unsettled = True
            return ReadFailure("mismatch", mismatch)
        if function in BIT_FUNCTIONS:
            return [int(b) for b in getattr(reply, "bits", [])[:count]]
        return list(getattr(reply, "registers", []))

    async def write(self, unit: int, function: int, address: int, values: Sequence[int]
                    ) -> ReadFailure | None:
        """Write ``values`` (registers for FC6/16, 0/1 for FC5/15) from ``address``; None
        when the device confirmed it."""
        if function not in WRITE_FUNCTIONS:
            raise ValueError(f"function {function}: writes are 5, 6, 15 or 16")
        if function in (5, 6) and len(values) != 1:
            raise ValueError(f"function {function} writes exactly one value")
        if not values:
            raise ValueError("nothing to write")
        reply = await self._call(function, address, list(values), unit)
        if isinstance(reply, ReadFailure):
            return reply
        failure = self._exception(reply, function)
        if failure is not None:
            return failure
        if getattr(reply, "function_code", None) != function:
            return ReadFailure("mismatch", f"reply of function "
                               f"{getattr(reply, 'function_code', None)} to a write of {function}")
        return None
