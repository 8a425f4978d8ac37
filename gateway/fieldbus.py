"""The gateway's field buses together: Modbus pollers and DALI drivers as one field reader.

:class:`FieldBusReader` implements the daemon's ``FieldReader`` protocol
(:class:`gateway.daemon.FieldReader`) on top of :class:`gateway.modbus.poller.ModbusPoller`
and :class:`gateway.dali.driver.DaliLuminaireDriver`::

    reader = FieldBusReader([ModbusPoller(link, devices)], [DaliLuminaireDriver(bus, lums)])
    async with reader:
        event, read_at = await reader.presence.get()  # the moment a sensor is read
        readings = await reader.read(now_ms)   # luminaires, meters, sensors
        events = reader.take_events()          # modbus/dali/lamp events since last

Inside ``async with``:

- each DALI driver programs its gear's POWER ON / SYSTEM FAILURE LEVEL to the fail-safe
  level, then reads D4i banks, all in the background (within its bus-time budget);
- presence events go to :attr:`FieldBusReader.presence` the moment they are read: DALI
  Part 303 occupancy events as they arrive on the bus, Modbus presence sensors as each poll
  returns (an event when the sensor turns occupied or counts a new person);
- each Modbus line is polled by its own loop at its devices' intervals, never behind a DALI
  state read; :attr:`on_sensor` sees every sensor reading at once (the lux rule uses it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

from gateway.daemon import FieldReadings
from gateway.dali.driver import DaliLuminaireDriver
from gateway.modbus.poller import ModbusPoller
from lykta.contract import Event, EventKind, MeterReading, SensorReading

PRESENCE_QUEUE = 1000
"""Presence events waiting for the executor at most (then the oldest are dropped)."""


PresenceSeen = tuple[bool, float | None]
"""A polled presence sensor's last ``(occupied, people counter)``; the counter ``None`` until
one was read."""


def people_since(
    before: PresenceSeen | None, occupied: bool, count: float | None
) -> tuple[int | None, PresenceSeen]:
    """How many people a poll of a presence sensor counts (``None``: no presence event), and
    what to remember for the next poll.

    People counted since the last poll are the counter's rise; turning occupied without a rise
    is one detection; a counter that went back (a sensor restart) counts nobody. A poll
    that did not read the counter (``count`` None: a rejected or failed register) keeps the
    last value — unknown is not zero, or the next good read would count everybody ever counted.
    """
    was, last = before if before is not None else (False, count)
    if count is None:
        count = last
    rise = count is not None and last is not None and count > last
    after = (occupied, count)
    if rise:
        assert count is not None and last is not None
        return int(count - last), after
    return (1 if occupied and not was else None), after


class FieldBusReader:
    """Reads every Modbus device that is due and every DALI luminaire's state."""

    def __init__(
        self,
        pollers: Sequence[ModbusPoller],
        drivers: Sequence[DaliLuminaireDriver],
        *,
        energy_interval_s: float = 60.0,
        fail_safe_level: int | None = 254,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pollers = list(pollers)
        self.drivers = list(drivers)
        self.energy_interval_s = energy_interval_s
        self.fail_safe_level = fail_safe_level
        self.monotonic = monotonic
        self.presence: asyncio.Queue[tuple[Event, float]] = asyncio.Queue(PRESENCE_QUEUE)
        """Presence events with the monotonic time they were read, oldest first."""
        self.presence_dropped = 0
        self.on_sensor: Callable[[SensorReading], None] | None = None
        self._events: list[Event] = []
        self._modbus: list[MeterReading | SensorReading] = []
        self._polled: list[asyncio.Event] = []
        self._occupied: dict[str, PresenceSeen] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> FieldBusReader:
        for poller in self.pollers:
            await self._stack.enter_async_context(poller)
        for driver in self.drivers:
            self._tasks.append(
                asyncio.create_task(self._background(driver), name=f"d4i-{driver.bus.name}")
            )
            self._tasks.append(
                asyncio.create_task(
                    self._collect_presence(driver), name=f"presence-{driver.bus.name}"
                )
            )
        for poller in self.pollers:
            polled = asyncio.Event()
            self._polled.append(polled)
            self._tasks.append(
                asyncio.create_task(self._modbus_loop(poller, polled), name="modbus-poll")
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._stack.aclose()

    def check(self) -> None:
        """Raise the error of a field loop that died (the daemon's supervisor calls this)."""
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"field loop {task.get_name()} died") from task.exception()

    async def _background(self, driver: DaliLuminaireDriver) -> None:
        if self.fail_safe_level is not None:
            await driver.program_fail_safe_levels(self.fail_safe_level)
        # The first D4i round waits one interval: at start-up the bus time goes to the first
        # state reads (telemetry, faults), not to a round of slow D4i bank reads.
        await asyncio.sleep(self.energy_interval_s)
        await driver.run_energy_reads(self.energy_interval_s)

    async def _collect_presence(self, driver: DaliLuminaireDriver) -> None:
        async for event in driver.presence_events():
            self._put_presence(event)

    def _put_presence(self, event: Event) -> None:
        if self.presence.full():
            self.presence.get_nowait()
            self.presence_dropped += 1
        self.presence.put_nowait((event, self.monotonic()))

    async def _modbus_loop(self, poller: ModbusPoller, polled: asyncio.Event) -> None:
        while True:
            for message in await poller.poll_due():
                if isinstance(message, MeterReading):
                    self._modbus.append(message)
                elif isinstance(message, SensorReading):
                    self._modbus.append(message)
                    self._sensor(message)
                else:
                    self._events.append(message)
            polled.set()
            await asyncio.sleep(max(0.01, poller.seconds_until_due()))

    def _sensor(self, reading: SensorReading) -> None:
        if self.on_sensor is not None:
            self.on_sensor(reading)
        if reading.kind != "presence" or "occupied" not in reading.values:
            return
        occupied = reading.values["occupied"] > 0
        # the counter of people passed ("count" in the device profiles), if the sensor has one
        count = reading.values.get("count", reading.values.get("count_total"))
        people, self._occupied[reading.device] = people_since(
            self._occupied.get(reading.device), occupied, count
        )
        if people is not None:
            self._put_presence(
                Event(
                    ts=reading.ts,
                    kind=EventKind.PRESENCE,
                    source=reading.device,
                    detail={"device": reading.device, "occupied": occupied, "people": people},
                )
            )

    def luminaire_count(self) -> int:
        """How many luminaires the DALI drivers drive."""
        return sum(len(d.luminaires) for d in self.drivers)

    async def read(self, now_ms: int) -> FieldReadings:
        """The Modbus readings since the last call (after every line's first poll) and one
        state query of every luminaire; readings carry their own timestamps. Events go to
        :meth:`take_events`, presence to :attr:`presence`."""
        out = FieldReadings()
        for driver in self.drivers:
            readings, events = await driver.read_states()
            out.luminaires.extend(readings)
            self._events.extend(events)
        for polled in self._polled:
            await polled.wait()
        modbus, self._modbus = self._modbus, []
        for message in modbus:
            if isinstance(message, MeterReading):
                out.meters.append(message)
            else:
                out.sensors.append(message)
        return out

    def take_events(self) -> list[Event]:
        """Events since the last call (Modbus errors/offline/online, lamp failures, DALI
        communication), oldest first. Presence goes to :attr:`presence` instead."""
        events, self._events = self._events, []
        return events
