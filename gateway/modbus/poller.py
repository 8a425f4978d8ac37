"""The asyncio Modbus poller: one task owns one bus (a serial line or a TCP endpoint) and polls
every device on it by its profile's read plan.

Usage (gateway daemon)::

    devices = [ModbusDevice("meter-1", unit=1, profile=profiles["eastron_sdm630"]),
               ModbusDevice("radar-1", unit=2, profile=profiles["radar_presence"])]
    async with ModbusPoller(SerialLine("/dev/ttyUSB0", 9600, "E"), devices) as poller:
        async for message in poller.run():
            ...  # MeterReading | SensorReading | Event (lykta.contract)

``poll_due()`` does one round instead of looping, for callers with their own schedule.

What it guarantees:

- requests are spaced by the device's ``pause_s``; a failed request is retried ``retries``
  times with exponential backoff;
- a reply is data only if it is the answer to *this* request: same unit id (pymodbus checks),
  same MBAP transaction id on TCP (pymodbus checks), same function code and exactly the byte
  count asked for (checked here). Anything else is a counted ``mismatch``, never data;
- after a failed request the line must be quiet for ``settle_s`` before the next request goes
  out, and the receive buffer starts empty, so a late reply cannot be taken as the answer to
  the next request (on RTU nothing else in the frame could tell them apart);
- exception 6 (SERVER DEVICE BUSY) is retried ``busy_retries`` times with backoff; any other
  exception reply is reported as a ``modbus_error`` event naming device, function and
  registers (not retried, never raised); a reply that arrived but did not decode (CRC or
  framing error) is reported as ``garbled``. An error event is raised when a request's error
  changes, not on every poll;
- a poll in which no request returned data has failed (also when the device only answered
  with exceptions); after ``offline_after`` failed polls in a row the device raises one
  ``modbus_offline`` event and is then polled every ``offline_interval_s`` until it answers
  with data (``modbus_online``);
- a value that is not finite, is the profile's ``nan_value`` or lies outside its min/max is
  left out of the reading and counted in ``stats.rejected`` — the other values are published.

Nothing a device does crashes the poller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from gateway.modbus.decode import decode_checked
from gateway.modbus.health import DeviceHealth, Transition
from gateway.modbus.planner import ReadRequest, plan_profile
from gateway.modbus.profile import BIT_FUNCTIONS, DeviceProfile
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
    ``code``), ``timeout``, ``garbled`` (bytes arrived but no valid frame: CRC/framing error),
    ``mismatch`` (a valid frame that is not the answer to this request: other unit, function,
    transaction id or byte count) or ``connection``."""

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
    # the last error of each request, so an error is reported when it starts or changes
    last_error: dict[ReadRequest, tuple[str, int | None]] = field(default_factory=dict)
    last_rejected: set[tuple[str, str]] = field(default_factory=set)


@dataclass
class PollStats:
    """Counters since start (for logs, tests and benchmarks)."""

    polls: int = 0
    requests: int = 0
    registers: int = 0
    retries: int = 0
    busy_retries: int = 0
    mismatches: int = 0
    """Replies that were not the answer to their request (each attempt counts)."""
    failures: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    """Values read but left out, by reason (``not_finite``, ``not_available``,
    ``out_of_range``)."""


def reply_mismatch(reply: object, function: int, count: int) -> str | None:
    """Why a decoded reply is not the answer to a read of ``count`` registers (or bits) with
    ``function`` (None if it is): another function code or another length."""
    got = getattr(reply, "function_code", None)
    if got != function:
        return f"reply of function {got} to a request of function {function}"
    if function in BIT_FUNCTIONS:
        bits = list(getattr(reply, "bits", []))
        if len(bits) != 8 * -(-count // 8):
            return f"{len(bits)} bits in a reply to a read of {count}"
        return None
    registers = list(getattr(reply, "registers", []))
    if len(registers) != count:
        return f"{len(registers)} registers in a reply to a read of {count}"
    return None


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
        busy_retries: int = 3,
        busy_backoff_s: float = 0.1,
        settle_s: float | None = None,
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
        self.busy_retries = busy_retries
        self.busy_backoff_s = busy_backoff_s
        self.settle_s = timeout_s if settle_s is None else settle_s
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
        self._rx_head = b""
        self._last_rx = -1e9
        self._unsettled = False
        self._last_request_end = -1e9
        self._client: AsyncModbusSerialClient | AsyncModbusTcpClient | None = None

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        # counts bytes that arrived for the current request: a timeout after some bytes is a
        # corrupted reply (CRC/framing), not silence
        if not sending:
            self._rx_bytes += len(data)
            self._last_rx = self.monotonic()
            if len(self._rx_head) < 16:
                self._rx_head += data[: 16 - len(self._rx_head)]
        return data

    async def _settle(self) -> None:
        """After a failed request, wait until the line has been quiet for ``settle_s`` (at
        most four times that), so a late or long reply is not mistaken for the next one."""
        if not self._unsettled:
            return
        self._unsettled = False
        deadline = self.monotonic() + 4 * self.settle_s
        while (now := self.monotonic()) < deadline:
            quiet = now - max(self._last_rx, self._last_request_end)
            if quiet >= self.settle_s:
                return
            await asyncio.sleep(self.settle_s - quiet)

    def _unparsed(self, device: ModbusDevice) -> ReadFailure:
        """What the bytes that arrived without forming an accepted reply were."""
        head = self._rx_head
        if isinstance(self.link, TcpEndpoint) and len(head) >= 8:
            return ReadFailure("mismatch", f"reply for transaction {int.from_bytes(head[:2])}"
                               f" unit {head[6]} is not the answer to this request")
        if isinstance(self.link, SerialLine) and head and head[0] != device.unit:
            return ReadFailure("mismatch", f"reply from unit {head[0]}, not {device.unit}")
        return ReadFailure("garbled", f"{self._rx_bytes} bytes arrived but formed "
                           "no valid reply (CRC or framing error)")

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
        attempt = busy = 0
        while attempt <= self.retries:
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            attempt += 1
            await self._settle()
            # the device's required silence between two requests (RS-485 turnaround)
            wait = self._last_request_end + device.profile.pause_s - self.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._rx_bytes = 0
            self._rx_head = b""
            self.stats.requests += 1
            read = {
                1: client.read_coils,
                2: client.read_discrete_inputs,
                3: client.read_holding_registers,
                4: client.read_input_registers,
            }[req.function]
            try:
                if not client.connected:
                    await client.connect()
                reply = await read(req.start, count=req.count, device_id=device.unit)
            except ConnectionException as exc:
                failure = ReadFailure("connection", f"connection to {self.link.name} failed: {exc}")
                continue
            except ModbusIOException:
                failure = (
                    self._unparsed(device)
                    if self._rx_bytes
                    else ReadFailure("timeout", f"no answer in {self.timeout_s} s")
                )
                self._unsettled = True
                if failure.kind == "mismatch":
                    self.stats.mismatches += 1
                continue
            except ModbusException as exc:
                failure = ReadFailure("garbled", f"invalid reply: {exc}")
                self._unsettled = True
                continue
            finally:
                self._last_request_end = self.monotonic()
            if reply.isError():
                code = getattr(reply, "exception_code", None)
                if (reply.function_code & 0x7F) != req.function:
                    failure = ReadFailure("mismatch", f"exception reply for function "
                                          f"{reply.function_code & 0x7F}, not {req.function}")
                    self.stats.mismatches += 1
                    self._unsettled = True
                    continue
                if code == 6 and busy < self.busy_retries:
                    # SERVER DEVICE BUSY: ask again later, without spending a retry
                    busy += 1
                    attempt -= 1
                    self.stats.busy_retries += 1
                    await asyncio.sleep(self.busy_backoff_s * 2 ** (busy - 1))
                    continue
                return ReadFailure("exception", f"exception reply code {code}", code)
            mismatch = self._check_reply(reply, req)
            if mismatch is not None:
                failure = ReadFailure("mismatch", mismatch)
                self.stats.mismatches += 1
                self._unsettled = True
                continue
            self.stats.registers += req.count
            if req.function in BIT_FUNCTIONS:
                return [int(b) for b in reply.bits[: req.count]]
            return list(reply.registers)
        return failure

    @staticmethod
    def _check_reply(reply: object, req: ReadRequest) -> str | None:
        return reply_mismatch(reply, req.function, req.count)

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
        answered = False  # some request returned data (exceptions alone do not count)
        for req in state.plan:
            result = await self._transact(device, req)
            if isinstance(result, ReadFailure):
                self.stats.failures[result.kind] = self.stats.failures.get(result.kind, 0) + 1
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
                error = (result.kind, result.code)
                if state.last_error.get(req) != error and (
                        result.kind == "exception" or state.health.online):
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
                state.last_error[req] = error
                if not result.answered:
                    # a silent device will not answer the rest of the plan either
                    break
                continue
            answered = True
            state.last_error.pop(req, None)
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
        values, rejected = decode_checked(device.profile, image)
        now_rejected = {(r.field, r.reason) for r in rejected}
        for r in rejected:
            self.stats.rejected[r.reason] = self.stats.rejected.get(r.reason, 0) + 1
            if (r.field, r.reason) not in state.last_rejected:
                log.warning("%s unit %d (%s): %s = %s left out (%s)", self.link.name,
                            device.unit, device.id, r.field, r.raw, r.reason)
        state.last_rejected = now_rejected
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
