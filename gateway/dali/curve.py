"""The DALI logarithmic dimming curve (IEC 62386-102): arc power level <-> light output.

Arc level 254 is 100 %, level 1 is 0.1 %, 0 is off; in between each step multiplies the light
output by the same factor (3 decades over 253 steps).
"""

from __future__ import annotations

import math

_STEPS_PER_DECADE = 253 / 3


def arc_level_to_percent(level: int) -> float:
    """Light output in percent of maximum for arc power ``level`` (0–254; 0 is off)."""
    if not 0 <= level <= 254:
        raise ValueError(f"arc power level {level} outside 0..254")
    if level == 0:
        return 0.0
    return 10 ** ((level - 1) / _STEPS_PER_DECADE - 1)


def percent_to_arc_level(percent: float) -> int:
    """The arc power level whose light output is closest (on the log scale) to ``percent``.

    0 (or less) is off; anything above 0 but below 0.1 % is level 1 (lights never switch off
    by rounding), 100 % and more is 254.
    """
    if percent <= 0:
        return 0
    level = 1 + _STEPS_PER_DECADE * (math.log10(percent) + 1)
    return max(1, min(254, round(level)))
