"""The gateway daemon: reads the field buses, publishes telemetry, runs the program.

It ties together the field (anything implementing :class:`FieldReader`), the MQTT link
(:class:`gateway.link.GatewayLink`) and the telemetry cadence. It runs autonomously: when the
broker is away, telemetry keeps being read and spooled on disk.
"""

from __future__ import annotations

import asyncio
import logging
import time
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
        """Events seen since the last call (faults, presence), oldest first."""
        ...


class Gateway:
    """One cabinet's gateway. ``async with Gateway(...)`` runs it; leaving the block stops it."""

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
    ) -> None:
        self.site = site
        self.id = gateway_id
        self.field = field_reader
        self.interval = telemetry_interval_s
        self.clock = clock
        self.runner = runner
        self.link = GatewayLink(
            mqtt,
            site,
            gateway_id,
            state_dir,
            clock=clock,
            on_command=self._on_command if runner else None,
            on_program=self._on_program if runner else None,
            command_keys=runner.public_key if runner else None,  # the same trust as programs
        )
        self.link.luminaire_count = field_reader.luminaire_count()
        if runner is not None:
            runner.emit = self.link.send_event
            self.link.program_hash = runner.program_hash
        self.readings_read = 0
        self.presence_events = 0
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Gateway:
        await self.link.__aenter__()
        self._tasks.append(asyncio.create_task(self._telemetry_loop(), name=f"telemetry-{self.id}"))
        if self.runner is not None:
            self._tasks.append(asyncio.create_task(self.runner.run(), name=f"program-{self.id}"))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self, *, drain_s: float = 10.0, graceful: bool = True) -> None:
        """Stop reading; give the outbox ``drain_s`` to empty; close the link."""
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []
        if graceful and drain_s > 0:
            await self.link.drained(drain_s)
        await self.link.close(graceful=graceful)

    async def _on_program(self, program: Program | None, raw: bytes) -> None:
        assert self.runner is not None
        before = self.runner.program_hash
        await self.runner.on_program(program, raw)
        if self.runner.program_hash != before:
            # the birth carries the program hash: the controller checks it for drift
            self.link.program_hash = self.runner.program_hash
            self.link.request_rebirth()

    async def _on_command(self, cmd: Command) -> CommandResult:
        assert self.runner is not None
        return await self.runner.on_command(cmd)

    async def _telemetry_loop(self) -> None:
        next_at = time.monotonic()
        while True:
            now = self.clock()
            try:
                r = await self.field.read(now)
            except Exception:  # a field bus fault must never stop the gateway
                log.exception("%s: reading the field failed", self.id)
            else:
                batch = TelemetryBatch(
                    seq=0, ts=now, luminaires=r.luminaires, meters=r.meters, sensors=r.sensors
                )
                if batch.reading_count():
                    self.link.send_telemetry(batch)
                    self.readings_read += batch.reading_count()
                for event in self.field.take_events():
                    if event.kind == "presence":
                        self.presence_events += 1
                        if self.runner is not None:
                            self.runner.on_presence_event(event)
                    self.link.send_event(event)
            next_at += self.interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
