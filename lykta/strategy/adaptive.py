"""Adaptive classes by traffic (EN 13201 adaptive lighting): counted flow -> class steps.

Pure, no clock: the caller counts detections over the zone's window and passes the flow in
people per hour (``None`` when it is not known). The same functions run in the evaluator
(preview, energy, compiler) and at the gateway, which keeps the hysteresis state per zone.

A zone states thresholds such as ``below_per_h = 200 -> step 1``, ``below_per_h = 50 ->
step 2``: while the counted flow stays below a threshold, the schedule's class is that many
classes darker (P3 -> P4 -> P5), never darker than the series' last class nor than the
zone's safety floor. Back up needs the flow to reach the threshold plus ``hysteresis_percent``
(so a count that wobbles around 200/h does not blink the street), and happens at the first
count that does. Unknown flow (no sensor, not counted for a whole window yet) is not zero: it
gives step 0, the unadapted class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lykta.contract.messages import MAX_ADAPTIVE_STEP
from lykta.strategy.en13201 import MAINTAINED_VALUES, LightingClass

if TYPE_CHECKING:
    from lykta.strategy.model import Strategy

Threshold = tuple[float, int]
"""``(below_per_h, step)``: while the flow is below ``below_per_h`` people per hour, step down
``step`` classes."""

MAX_STEP = MAX_ADAPTIVE_STEP
"""The most classes a threshold can step down (P1 -> P6); the contract's number, so a step the
strategy allows is one a telemetry batch (``zone_steps``) and a program can carry."""


def steps_for_flow(thresholds: Sequence[Threshold], flow_per_h: float | None) -> int:
    """The steps a steady ``flow_per_h`` gives, with no history (``None``: unknown, 0)."""
    if flow_per_h is None:
        return 0
    return max((s for below, s in thresholds if flow_per_h < below), default=0)


def next_steps(
    thresholds: Sequence[Threshold],
    flow_per_h: float | None,
    current: int,
    hysteresis_percent: float,
) -> int:
    """The steps after counting ``flow_per_h`` at ``current`` steps.

    Down at once to the steps of every threshold the flow is below; up only as far as the
    flow reaches ``threshold × (1 + hysteresis_percent / 100)``; unknown flow: 0.
    """
    if flow_per_h is None:
        return 0
    down = steps_for_flow(thresholds, flow_per_h)
    k = 1 + hysteresis_percent / 100
    hold = max((s for below, s in thresholds if flow_per_h < below * k), default=0)
    return max(down, min(current, hold))


def flow_per_h(count: int, window_ms: int) -> float:
    """People per hour from ``count`` detections over ``window_ms``."""
    return count * 3_600_000 / window_ms


def step_down(cls: LightingClass, steps: int, floor: LightingClass | None) -> LightingClass:
    """``cls`` made ``steps`` classes darker within its series, never darker than the series'
    last class nor than ``floor`` (and never brighter than ``cls``)."""
    if steps <= 0:
        return cls
    series = [c for c in MAINTAINED_VALUES if c[0] == cls.series]
    i = min(series.index(cls.name) + steps, len(series) - 1)
    out = LightingClass(series[i])
    if floor is not None and floor.series == cls.series and out.value < floor.value:
        out = floor if floor.value < cls.value else cls
    return out


def zone_steps(strategy: Strategy, zone: str, flow_per_h: float | None) -> int:
    """The steps a steady ``flow_per_h`` gives ``zone`` (0 if it does not adapt or the flow is
    unknown): the operator tools' what-if (``--flow``)."""
    a = strategy.zones[zone].adaptive
    return steps_for_flow(a.rules, flow_per_h) if a is not None else 0
