"""The gateway's field buses together: Modbus pollers and DALI drivers as one field reader.

:class:`FieldBusReader` implements the daemon's ``FieldReader`` protocol
(:class:`gateway.daemon.FieldReader`: ``read(now_ms) -> FieldReadings`` and
``luminaire_count()``) on top of :class:`gateway.modbus.poller.ModbusPoller` and
:class:`gateway.dali.driver.DaliLuminaireDriver`::

    reader = FieldBusReader([ModbusPoller(link, devices)], [DaliLuminaireDriver(bus, lums)])
    async with reader:
        readings = await reader.read(now_ms)   # luminaires, meters, sensors
        events = reader.take_events()          # modbus/dali/lamp/presence events since last

Inside ``async with`` the pollers are connected, each DALI driver reads its D4i banks in the
background (within its bus-time budget) and presence events from the DALI buses are collected.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from gateway.daemon import FieldReadings
from gateway.dali.driver import DaliLuminaireDriver
from gateway.modbus.poller import ModbusPoller
from lykta.contract import Event, MeterReading, SensorReading


class FieldBusReader:
    """Reads every Modbus device that is due and every DALI luminaire's state."""

    def __init__(
        self,
        pollers: Sequence[ModbusPoller],
        drivers: Sequence[DaliLuminaireDriver],
        *,
        energy_interval_s: float = 60.0,
    ) -> None:
        self.pollers = list(pollers)
        self.drivers = list(drivers)
        self.energy_interval_s = energy_interval_s
        self._events: list[Event] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> FieldBusReader:
        for poller in self.pollers:
            await self._stack.enter_async_context(poller)
        for driver in self.drivers:
            self._tasks.append(
                asyncio.create_task(self._energy_reads(driver), name=f"d4i-{driver.bus.name}")
            )
            self._tasks.append(
                asyncio.create_task(
                    self._collect_presence(driver), name=f"presence-{driver.bus.name}"
                )
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

    async def _energy_reads(self, driver: DaliLuminaireDriver) -> None:
        # The first round waits one interval: at start-up the bus time goes to the first
        # state reads (telemetry, faults), not to a round of slow D4i bank reads.
        await asyncio.sleep(self.energy_interval_s)
        await driver.run_energy_reads(self.energy_interval_s)

    async def _collect_presence(self, driver: DaliLuminaireDriver) -> None:
        async for event in driver.presence_events():
            self._events.append(event)

    def luminaire_count(self) -> int:
        """How many luminaires the DALI drivers drive."""
        return sum(len(d.luminaires) for d in self.drivers)

    async def read(self, now_ms: int) -> FieldReadings:
        """Poll the due Modbus devices and query every luminaire once; readings carry their own
        timestamps. Events go to :meth:`take_events`."""
        out = FieldReadings()
        for poller in self.pollers:
            for message in await poller.poll_due():
                if isinstance(message, MeterReading):
                    out.meters.append(message)
                elif isinstance(message, SensorReading):
                    out.sensors.append(message)
                else:
                    self._events.append(message)
        for driver in self.drivers:
            readings, events = await driver.read_states()
            out.luminaires.extend(readings)
            self._events.extend(events)
        return out

    def take_events(self) -> list[Event]:
        """Events since the last call (Modbus errors/offline/online, lamp failures, DALI
        communication, presence), oldest first."""
        events, self._events = self._events, []
        return events
