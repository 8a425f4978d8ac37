"""The gateway daemon: reads the field buses, publishes telemetry, runs the program.

It ties together the field (anything implementing :class:`FieldReader`), the MQTT link
(:class:`gateway.link.GatewayLink`), the executor (:class:`gateway.program_runner.ProgramRunner`)
and the telemetry cadence. It runs autonomously: when the broker is away, telemetry keeps being
read and spooled on disk and the executor keeps the street lit. Presence events go straight from
the field reader's queue to the executor; telemetry reads never delay them. They are published
at once, and the presence events of the neighbouring gateways the program names come back in
from the broker to light this cabinet's part of a corridor that crosses the boundary.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gateway.link import GatewayLink, cancel_and_wait
from gateway.program_runner import ProgramRunner
from lykta.clock import now_ms
from lykta.config import MqttConfig
from lykta.contract import (
    Command,
    CommandResult,
    Event,
    LuminaireReading,
    MeterReading,
    SensorReading,
    TelemetryBatch,
)
from lykta.contract.program import Program

log = logging.getLogger("lykta.gateway")


def is_vacant_report(event: Event) -> bool:
    """A Part 303 sensor's periodic "nobody here" (a vacant repeat): a sign of life only."""
    return event.detail.get("repeat") is True and event.detail.get("occupied") is False


@dataclass(slots=True)
class FieldReadings:
    """One read of everything on the cabinet's buses."""

    luminaires: list[LuminaireReading] = field(default_factory=list)
    meters: list[MeterReading] = field(default_factory=list)
    sensors: list[SensorReading] = field(default_factory=list)


class FieldReader(Protocol):
    """Whatever reads the cabinet's devices (DALI luminaires, Modbus meters and sensors)."""

    async def read(self, now_ms: int) -> FieldReadings:
        """Read every device once; readings carry ``now_ms`` or their own timestamps."""
        ...

    def luminaire_count(self) -> int:
        """How many luminaires this gateway drives."""
        ...

    def take_events(self) -> list[Event]:
        """Events seen since the last call (faults), oldest first."""
        ...

    # Optional: ``presence``, an ``asyncio.Queue`` of ``(Event, read_at_monotonic)`` that the
    # reader fills the moment a sensor is read (the daemon then reacts without waiting for
    # ``read``); ``on_sensor``, a callback slot for sensor readings; ``check()``, raising if
    # one of the reader's own loops died. :class:`gateway.fieldbus.FieldBusReader` has all.


class Gateway:
    """One cabinet's gateway. ``async with Gateway(...)`` runs it; leaving the block stops it.

    Supervised: the telemetry loop, the presence loop and the executor run in one TaskGroup;
    if any of them — or the MQTT link, or a field bus loop — dies, :attr:`failed` is set and
    :attr:`error` holds why, and the caller ends the process (systemd restarts it).
    :meth:`healthy` is the watchdog's question: it is True only while the executor steps and
    the link runs.
    """

    def __init__(
        self,
        site: str,
        gateway_id: str,
        mqtt: MqttConfig,
        field_reader: FieldReader,
        state_dir: Path,
        *,
        telemetry_interval_s: float = 1.0,
        runner: ProgramRunner | None = None,
        clock: Callable[[], int] = now_ms,
        stall_s: float = 30.0,
    ) -> None:
        self.site = site
        self.id = gateway_id
        self.field = field_reader
        self.interval = telemetry_interval_s
        self.clock = clock
        self.runner = runner
        self.stall_s = stall_s
        self.link = GatewayLink(
            mqtt,
            site,
            gateway_id,
            state_dir,
            clock=clock,
            on_command=self._on_command if runner else None,
            on_program=self._on_program if runner else None,
            command_keys=runner.public_key if runner else None,  # the same trust as programs
            on_neighbour_event=runner.on_neighbour_presence if runner else None,
        )
        self.link.luminaire_count = field_reader.luminaire_count()
        if runner is not None:
            runner.emit = self._send_event
            self.link.program_hash = runner.program_hash
            self.link.set_neighbours(runner.neighbour_gateways())
            on_sensor = getattr(field_reader, "on_sensor", False)
            if on_sensor is None:
                field_reader.on_sensor = self._on_sensor  # type: ignore[attr-defined]
        self.readings_read = 0
        self.presence_events = 0
        self.presence_reports = 0  # vacant repeats: signs of life, not stored (see below)
        self.outbox_errors = 0
        self.failed = asyncio.Event()
        self.error: BaseException | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._telemetry_at = time.monotonic()

    async def __aenter__(self) -> Gateway:
        await self.link.__aenter__()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"gateway-{self.id}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self, *, drain_s: float = 10.0, graceful: bool = True) -> None:
        """Stop reading; give the outbox ``drain_s`` to empty; close the link."""
        if self._supervisor is not None:
            await cancel_and_wait(self._supervisor)
            self._supervisor = None
        if graceful and drain_s > 0:
            await self.link.drained(drain_s)
        await self.link.close(graceful=graceful)

    def healthy(self) -> bool:
        """Whether the watchdog may be fed: no loop died, the executor completed a step and the
        telemetry loop a round within ``stall_s``, and the MQTT link's loop runs."""
        if self.failed.is_set() or self.link.dead() is not None:
            return False
        now = time.monotonic()
        if self.runner is not None and now - self.runner.last_step_at > self.stall_s:
            return False
        return now - self._telemetry_at <= max(self.stall_s, 3 * self.interval)

    async def _supervise(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._telemetry_loop(), name=f"telemetry-{self.id}")
                if getattr(self.field, "presence", None) is not None:
                    tg.create_task(self._presence_loop(), name=f"presence-{self.id}")
                if self.runner is not None:
                    tg.create_task(self.runner.run(), name=f"executor-{self.id}")
                tg.create_task(self._watch(), name=f"watch-{self.id}")
        except Exception as e:  # noqa: BLE001 - any loop dying ends the gateway
            self.error = e
            log.critical("%s: a gateway loop died: %r", self.id, e, exc_info=e)
            self.failed.set()

    async def _watch(self) -> None:
        """Loops outside the TaskGroup (the link's, the field buses') die loudly too."""
        while True:
            dead = self.link.dead()
            if dead is not None:
                raise RuntimeError("the MQTT link loop died") from dead
            check = getattr(self.field, "check", None)
            if check is not None:
                check()
            await asyncio.sleep(0.5)

    def _send_event(self, event: Event, *, live: bool = False) -> None:
        try:
            self.link.send_event(event, live=live)
        except OSError as e:  # disk full: count it; the street does not wait for the disk
            self.outbox_errors += 1
            log.error("%s: event %s not stored: %s", self.id, event.kind, e)

    def _on_sensor(self, reading: SensorReading) -> None:
        assert self.runner is not None
        if reading.kind == "lux" and "illuminance" in reading.values:
            self.runner.on_lux(reading.device, reading.values["illuminance"], reading.ts)
        elif reading.kind == "presence":
            self.runner.on_sensor_reading(reading.device, reading.ts)

    async def _on_program(self, program: Program | None, raw: bytes) -> None:
        assert self.runner is not None
        before = self.runner.program_hash
        await self.runner.on_program(program, raw)
        if self.runner.program_hash != before:
            # the birth carries the program hash: the controller checks it for drift
            self.link.program_hash = self.runner.program_hash
            self.link.set_neighbours(self.runner.neighbour_gateways())
            self.link.request_rebirth()

    async def _on_command(self, cmd: Command) -> CommandResult:
        assert self.runner is not None
        return await self.runner.on_command(cmd)

    async def _presence_loop(self) -> None:
        """Presence reaches the executor the moment it is read, never behind telemetry."""
        queue: asyncio.Queue[tuple[Event, float]] = self.field.presence  # type: ignore[attr-defined]
        to_store: deque[Event] = deque()
        while True:
            if not to_store or not queue.empty():
                got = [] if to_store else [await queue.get()]
                while not queue.empty():
                    got.append(queue.get_nowait())
                self.presence_events += len(got)
                if self.runner is not None:
                    for event, read_at in got:
                        self.runner.on_presence_event(event, read_at=read_at)
                    # The executor, woken by the events, sends the corridors' first frames
                    # before the events are stored: storing means fsyncs, which never come
                    # first, and a burst (a crowd, a backlog) is reacted to as a whole.
                    await asyncio.sleep(0)
                # A vacant repeat is the sensor's report timer saying "alive, nobody here": the
                # executor needs it (a dead sensor's silence is unknown traffic, not an empty
                # street), the controller does not — one per sensor every 30 s would be most
                # of a site's events. Counted, not stored.
                reports = [e for e, _ in got if is_vacant_report(e)]
                self.presence_reports += len(reports)
                to_store.extend(e for e, _ in got if not is_vacant_report(e))
            if to_store:
                event = to_store.popleft()
                live = self.runner is not None and self.runner.has_neighbours(
                    event.detail.get("zone"))
                self._send_event(event, live=live)
                # one event stored at a time, and then whatever came meanwhile is reacted to
                # first; yielding lets the bus deliver it (``queue.get`` does not yield while
                # events wait)
                await asyncio.sleep(0)

    async def _telemetry_loop(self) -> None:
        next_at = time.monotonic()
        while True:
            now = self.clock()
            try:
                r = await self.field.read(now)
            except Exception:  # noqa: BLE001 - a field bus fault must never stop the gateway
                log.exception("%s: reading the field failed", self.id)
            else:
                # the traffic steps in force, so the controller judges each zone against the
                # level the gateway chose for its counted traffic, not the unadapted schedule
                steps = self.runner.adaptive_steps if self.runner is not None else {}
                batch = TelemetryBatch(
                    seq=0, ts=now, luminaires=r.luminaires, meters=r.meters, sensors=r.sensors,
                    zone_steps={z: k for z, k in steps.items() if k > 0},
                )
                if batch.reading_count():
                    try:
                        self.link.send_telemetry(batch)
                    except OSError as e:
                        self.outbox_errors += 1
                        log.error("%s: telemetry batch not stored: %s", self.id, e)
                    else:
                        self.readings_read += batch.reading_count()
                for event in self.field.take_events():
                    if event.kind == "presence":  # a reader without a presence queue
                        self.presence_events += 1
                        if self.runner is not None:
                            self.runner.on_presence_event(event)
                    self._send_event(event)
            self._telemetry_at = time.monotonic()
            next_at += self.interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
