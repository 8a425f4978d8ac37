"""Running command sequences on a DALI bus (the thin I/O shell of commissioning).

:class:`SequenceRunner` sends each command a sequence yields through a
:class:`lykta.dali_bus.DaliBus`, passes the typed response back, sleeps when asked and reports
progress, and counts what the bus spent: frames (a send-twice command is two) and bus time
(:func:`gateway.dali.timing.frame_bus_time`, the one source of bus-time figures). Explicit
sleeps (after RANDOMISE) are counted too: the bus is held meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from dali.command import Command
from dali.sequences import progress, sleep

from gateway.commissioning.addressing import Sequence
from gateway.dali.timing import frame_bus_time
from lykta.dali_bus import DaliBus, send_command


@dataclass
class BusCost:
    """Frames and bus time spent, in total and per named step."""

    frames: int = 0
    bus_time_s: float = 0.0
    by_step: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, step: str, frames: int, seconds: float) -> None:
        """Account ``frames`` and ``seconds`` to ``step``."""
        self.frames += frames
        self.bus_time_s += seconds
        s = self.by_step.setdefault(step, {"frames": 0, "bus_time_s": 0.0})
        s["frames"] += frames
        s["bus_time_s"] += seconds


class SequenceRunner:
    """Runs python-dali style sequences on one bus and counts their cost."""

    def __init__(self, bus: DaliBus, *,
                 sleep_fn: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 on_progress: Callable[[progress], None] | None = None,
                 cost: BusCost | None = None) -> None:
        self.bus = bus
        self.sleep_fn = sleep_fn
        self.on_progress = on_progress
        self.cost = cost if cost is not None else BusCost()
        self.step = "other"

    async def run(self, sequence: Sequence, *, step: str | None = None) -> Any:
        """Run ``sequence`` to its end and return its result (its exceptions propagate; the
        generator is closed either way)."""
        if step is not None:
            self.step = step
        response: Any = None
        try:
            while True:
                try:
                    item = sequence.send(response)
                except StopIteration as done:
                    return done.value
                response = None
                if isinstance(item, Command):
                    response = await send_command(self.bus, item)
                    self.cost.add(self.step, 2 if item.sendtwice else 1,
                                  frame_bus_time(len(item.frame),
                                                 is_query=item.response is not None,
                                                 send_twice=item.sendtwice))
                elif isinstance(item, sleep):
                    await self.sleep_fn(item.delay)
                    self.cost.add(self.step, 0, item.delay)
                elif isinstance(item, progress):
                    if self.on_progress is not None:
                        self.on_progress(item)
        finally:
            sequence.close()
