"""Writes ``zone_compliance``, ``gateway_health`` and ``luminaire_state`` once a minute (the
I/O shell of :mod:`controller.compliance`).

The clock is injected (the service's): each time it passes a whole minute, the minute that
ended is judged and its lines go to the InfluxDB writer. A clock that jumps (an accelerated
demo night) closes every minute it passed, up to :data:`MAX_CATCH_UP`, each at its own end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from controller.compliance import MINUTE_MS, Minutes
from controller.datamodel import (
    Placement,
    gateway_minute_lines,
    luminaire_minute_lines,
    zone_minute_lines,
)
from controller.influx_writer import InfluxWriter
from lykta.contract import Event, TelemetryBatch
from lykta.strategy import Strategy

log = logging.getLogger("lykta.controller.minutes")
MAX_CATCH_UP = 60  # minutes judged at once after a clock jump; older ones are skipped


class MinuteWriter:
    """Feed it telemetry and events (ingest's observer calls); ``run()`` writes the minutes.

    ``strategy`` returns the applied strategy (``None``: nothing applied, nothing judged),
    ``online`` and ``program_ok`` what the controller knows of each gateway now.
    """

    def __init__(
        self,
        site: str,
        writer: InfluxWriter,
        *,
        clock: Callable[[], int],
        strategy: Callable[[], Strategy | None],
        placement: Callable[[], Placement | None],
        online: Callable[[], Mapping[str, bool]],
        program_ok: Callable[[], Mapping[str, bool | None]],
        poll_s: float = 1.0,
    ) -> None:
        self.site = site
        self.writer = writer
        self.clock = clock
        self.strategy = strategy
        self.placement = placement
        self.online = online
        self.program_ok = program_ok
        self.poll_s = poll_s
        self.minutes = Minutes()
        self.closed_until: int | None = None
        self.minutes_written = 0

    def telemetry(self, gateway: str, batch: TelemetryBatch) -> None:
        """Ingest hook (hot path): remember the readings."""
        self.minutes.telemetry(gateway, batch)

    def event(self, gateway: str, event: Event) -> None:
        """Ingest hook: count presence per zone."""
        placement = self.placement()
        zone = placement.of(gateway, event.source)[0] if placement else None
        self.minutes.event(zone, event)

    async def close_minute(self, end_ms: int) -> int:
        """Judge the minute ending at ``end_ms`` and write it; return the lines written."""
        strategy = self.strategy()
        if strategy is None:
            return 0
        zones, gateways = await asyncio.to_thread(
            self.minutes.close,
            strategy,
            end_ms,
            online=dict(self.online()),
            program_ok=dict(self.program_ok()),
        )
        lines = (
            zone_minute_lines(self.site, zones)
            + gateway_minute_lines(self.site, gateways)
            + luminaire_minute_lines(self.site, self.minutes.states)
        )
        await self.writer.write(lines)
        self.minutes_written += 1
        return len(lines)

    async def due(self) -> None:
        """Close every whole minute the clock has passed since the last call."""
        now = self.clock()
        boundary = now - now % MINUTE_MS
        if self.closed_until is None:
            self.closed_until = boundary  # the minute under way is judged when it ends
            return
        if boundary - self.closed_until > MAX_CATCH_UP * MINUTE_MS:
            self.closed_until = boundary - MAX_CATCH_UP * MINUTE_MS
        while self.closed_until < boundary:
            self.closed_until += MINUTE_MS
            await self.close_minute(self.closed_until)

    async def run(self) -> None:
        """Write minutes until cancelled; a failed minute is logged and the loop goes on."""
        while True:
            try:
                await self.due()
            except Exception:
                log.exception("writing the minute's compliance and health failed")
            await asyncio.sleep(self.poll_s)
