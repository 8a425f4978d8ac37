"""The asyncio Modbus poller: one task owns one bus (a serial line or a TCP endpoint) and polls
every device on it by its profile's read plan.

Usage (gateway daemon)::

    devices = [ModbusDevice("meter-1", unit=1, profile=profiles["eastron_sdm630"]),
               ModbusDevice("radar-1", unit=2, profile=profiles["radar_presence"])]
    async with ModbusPoller(SerialLine("/dev/ttyUSB0", 9600, "E"), devices) as poller:
        async for message in poller.run():
            ...  # MeterReading | SensorReading | Event (lykta.contract)

``poll_due()`` does one round instead of looping, for callers with their own schedule.

What it guarantees: requests are spaced by the device's ``pause_s``; a failed request is
retried ``retries`` times with exponential backoff; an exception reply is reported as a
``modbus_error`` event naming device, function and registers (never retried, never raised); a
reply that arrived but did not decode (CRC or framing error) is reported as such; a device that
fails ``offline_after`` polls in a row raises one ``modbus_offline`` event and is then polled
every ``offline_interval_s`` until it answers (``modbus_online``). Nothing a device does
crashes the poller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from gateway.modbus.decode import decode_values
from gateway.modbus.health import DeviceHealth, Transition
from gateway.modbus.planner import ReadRequest, plan_profile
from gateway.modbus.profile import DeviceProfile
from lykta.contract import Event, EventKind, MeterReading, SensorReading

log = logging.getLogger(__name__)

Message = MeterReading | SensorReading | Event
"""What the poller yields: readings and events of the wire contract."""


@dataclass(frozen=True, slots=True)
class SerialLine:
    """An RS-485 line for Modbus RTU."""

    port: str
    baudrate: int = 9600
    parity: str = "E"
    stopbits: int = 1
    bytesize: int = 8

    def __post_init__(self) -> None:
        if not 1200 <= self.baudrate <= 115200:
            raise ValueError(f"{self.port}: baud rate {self.baudrate} outside 1200..115200")
        if self.parity not in ("N", "E", "O"):
            raise ValueError(f"{self.port}: parity must be N, E or O, not {self.parity!r}")
        if self.stopbits not in (1, 2):
            raise ValueError(f"{self.port}: stop bits must be 1 or 2, not {self.stopbits}")

    @property
    def name(self) -> str:
        """How events name this bus."""
        return self.port


@dataclass(frozen=True, slots=True)
class TcpEndpoint:
    """A Modbus TCP server (a device or an RTU gateway)."""

    host: str
    port: int = 502

    @property
    def name(self) -> str:
        """How events name this bus."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ModbusDevice:
    """One device on a bus: its id in readings/events, unit id and profile."""

    id: str
    unit: int
    profile: DeviceProfile
    interval_s: float = 10.0


@dataclass(frozen=True, slots=True)
class ReadFailure:
    """Why a request got no usable answer: ``kind`` is ``exception`` (with the Modbus exception
    ``code``), ``timeout``, ``garbled`` (bytes arrived but no valid frame: CRC/framing error)
    or ``connection``."""

    kind: str
    message: str
    code: int | None = None

    @property
    def answered(self) -> bool:
        """An exception reply proves the device is there."""
        return self.kind == "exception"


@dataclass
class _DeviceState:
    device: ModbusDevice
    plan: list[ReadRequest]
    health: DeviceHealth


@dataclass
class PollStats:
    """Counters since start (for logs, tests and benchmarks)."""

    polls: int = 0
    requests: int = 0
    registers: int = 0
    retries: int = 0
    failures: dict[str, int] = field(default_factory=dict)


class ModbusPoller:
    """Polls the devices of one Modbus bus. Use as ``async with``; see the module docstring."""

    def __init__(
        self,
        link: SerialLine | TcpEndpoint,
        devices: Sequence[ModbusDevice],
        *,
        timeout_s: float = 0.5,
        retries: int = 2,
        backoff_s: float = 0.05,
        offline_after: int = 3,
        offline_interval_s: float = 30.0,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        units = [d.unit for d in devices]
        if len(set(units)) != len(units) and isinstance(link, SerialLine):
            raise ValueError(f"{link.name}: two devices share a unit id ({sorted(units)})")
        ids = [d.id for d in devices]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{link.name}: two devices share an id ({sorted(ids)})")
        self.link = link
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.wall_clock = wall_clock
        self.monotonic = monotonic
        self.stats = PollStats()
        self._states = [
            _DeviceState(
                d,
                plan_profile(d.profile),
                DeviceHealth(d.interval_s, offline_after, offline_interval_s),
            )
            for d in devices
        ]
        self._rx_bytes = 0
        self._last_request_end = -1e9
        self._client: AsyncModbusSerialClient | AsyncModbusTcpClient | None = None

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        # counts bytes that arrived for the current request: a timeout after some bytes is a
        # corrupted reply (CRC/framing), not silence
        if not sending:
            self._rx_bytes += len(data)
        return data

    def _make_client(self) -> AsyncModbusSerialClient | AsyncModbusTcpClient:
        if isinstance(self.link, SerialLine):
            return AsyncModbusSerialClient(
                self.link.port,
                baudrate=self.link.baudrate,
                parity=self.link.parity,
                stopbits=self.link.stopbits,
                bytesize=self.link.bytesize,
                timeout=self.timeout_s,
                retries=0,
                reconnect_delay=0.1,
                reconnect_delay_max=2.0,
                trace_packet=self._trace_packet,
            )
        return AsyncModbusTcpClient(
            self.link.host,
            port=self.link.port,
            timeout=self.timeout_s,
            retries=0,
            reconnect_delay=0.1,
            reconnect_delay_max=2.0,
            trace_packet=self._trace_packet,
        )

    async def __aenter__(self) -> ModbusPoller:
        self._client = self._make_client()
        # a device that is not there yet is not an error: polls report it and it comes online
        await self._client.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection to the bus."""
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def devices(self) -> list[ModbusDevice]:
        """The devices on this bus."""
        return [s.device for s in self._states]

    def health(self, device_id: str) -> DeviceHealth:
        """The health record of a device (KeyError naming it if unknown)."""
        for s in self._states:
            if s.device.id == device_id:
                return s.health
        raise KeyError(f"{self.link.name}: no device {device_id!r}")

    def plan(self, device_id: str) -> list[ReadRequest]:
        """The read plan of a device."""
        for s in self._states:
            if s.device.id == device_id:
                return list(s.plan)
        raise KeyError(f"{self.link.name}: no device {device_id!r}")

    async def _transact(self, device: ModbusDevice, req: ReadRequest) -> list[int] | ReadFailure:
        """One request with retries and backoff; never raises for device misbehaviour."""
        client = self._client
        if client is None:
            raise RuntimeError(f"{self.link.name}: poller used outside 'async with'")
        failure = ReadFailure("timeout", "no answer")
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            # the device's required silence between two requests (RS-485 turnaround)
            wait = self._last_request_end + device.profile.pause_s - self.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._rx_bytes = 0
            self.stats.requests += 1
            read = (
                client.read_input_registers if req.function == 4 else client.read_holding_registers
            )
            try:
                if not client.connected:
                    await client.connect()
                reply = await read(req.start, count=req.count, device_id=device.unit)
            except ConnectionException as exc:
                failure = ReadFailure("connection", f"connection to {self.link.name} failed: {exc}")
                continue
            except ModbusIOException:
                failure = (
                    ReadFailure(
                        "garbled",
                        f"{self._rx_bytes} bytes arrived but formed "
                        "no valid reply (CRC or framing error)",
                    )
                    if self._rx_bytes
                    else ReadFailure("timeout", f"no answer in {self.timeout_s} s")
                )
                continue
            except ModbusException as exc:
                failure = ReadFailure("garbled", f"invalid reply: {exc}")
                continue
            finally:
                self._last_request_end = self.monotonic()
            if reply.isError():
                code = getattr(reply, "exception_code", None)
                return ReadFailure("exception", f"exception reply code {code}", code)
            registers = list(reply.registers)
            if len(registers) < req.count:
                failure = ReadFailure("garbled", f"{len(registers)} of {req.count} registers")
                continue
            self.stats.registers += req.count
            return registers[: req.count]
        return failure

    async def poll_device(self, device_id: str) -> list[Message]:
        """Poll one device now (whether due or not); return its reading and events."""
        for s in self._states:
            if s.device.id == device_id:
                return await self._poll(s)
        raise KeyError(f"{self.link.name}: no device {device_id!r}")

    async def _poll(self, state: _DeviceState) -> list[Message]:
        device = state.device
        self.stats.polls += 1
        image: dict[tuple[int, int], int] = {}
        messages: list[Message] = []
        answered = False
        for req in state.plan:
            result = await self._transact(device, req)
            if isinstance(result, ReadFailure):
                self.stats.failures[result.kind] = self.stats.failures.get(result.kind, 0) + 1
                answered = answered or result.answered
                log.warning(
                    "%s unit %d (%s): read fc%d %#06x+%d failed: %s",
                    self.link.name,
                    device.unit,
                    device.id,
                    req.function,
                    req.start,
                    req.count,
                    result.message,
                )
                if result.kind == "exception" or state.health.online:
                    messages.append(
                        self._event(
                            EventKind.MODBUS_ERROR,
                            device,
                            {
                                "bus": self.link.name,
                                "unit": device.unit,
                                "function": req.function,
                                "address": req.start,
                                "count": req.count,
                                "error": result.kind,
                                "code": result.code,
                                "message": result.message,
                            },
                        )
                    )
                if not result.answered:
                    # a silent device will not answer the rest of the plan either
                    break
                continue
            answered = True
            for i, value in enumerate(result):
                image[(req.function, req.start + i)] = value
        ts = self._now_ms()
        transition = state.health.record(self.monotonic(), answered=answered)
        if transition is Transition.WENT_OFFLINE:
            messages.append(
                self._event(
                    EventKind.MODBUS_OFFLINE,
                    device,
                    {"bus": self.link.name, "unit": device.unit, "failures": state.health.failures},
                )
            )
        elif transition is Transition.CAME_ONLINE:
            messages.append(
                self._event(
                    EventKind.MODBUS_ONLINE, device, {"bus": self.link.name, "unit": device.unit}
                )
            )
        values = decode_values(device.profile, image)
        if values:
            if device.profile.kind == "meter":
                messages.append(MeterReading(device=device.id, ts=ts, values=values))
            else:
                messages.append(
                    SensorReading(device=device.id, ts=ts, kind=device.profile.kind, values=values)
                )
        return messages

    async def poll_due(self) -> list[Message]:
        """Poll every device that is due now, in order; return all their messages."""
        messages: list[Message] = []
        for s in self._states:
            if s.health.due(self.monotonic()):
                messages.extend(await self._poll(s))
        return messages

    def seconds_until_due(self) -> float:
        """How long until the next device is due (0 if one is due now)."""
        if not self._states:
            return 3600.0
        now = self.monotonic()
        return max(0.0, min(s.health.next_poll_s for s in self._states) - now)

    async def run(self) -> AsyncIterator[Message]:
        """Poll forever, each device at its interval; yield readings and events."""
        while True:
            for message in await self.poll_due():
                yield message
            await asyncio.sleep(self.seconds_until_due())

    def _now_ms(self) -> int:
        return int(self.wall_clock() * 1000)

    def _event(self, kind: EventKind, device: ModbusDevice, detail: dict[str, object]) -> Event:
        return Event(
            ts=self._now_ms(),
            kind=kind,
            source=device.id,
            detail={k: v for k, v in detail.items() if v is not None},
        )
