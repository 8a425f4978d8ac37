"""The DALI logarithmic dimming curve (IEC 62386-102) and DALI fade times, in one place.

Arc power level 254 is 100 % light output, level 1 is 0.1 %, 0 is off; in between every step
multiplies the output by the same factor (three decades over 253 steps)::

    X(n) = 10 ** ((n - 1) / (253 / 3) - 1)  %      for n = 1 … 254

Rounding, percent → arc level:

- :func:`percent_to_arc_level` picks the nearest level on the log scale (what a display or a
  simulator wants);
- :func:`arc_level_at_least` rounds *up*: the smallest level whose output is at least the
  requested percentage. The strategy engine uses it for every lighting-class level, so a
  luminaire never delivers less than the class (and the safety floor) asks for.

Both map 0 % (or less) to 0 (off), anything above 0 but at most 0.1 % to 1 (rounding never
switches a lamp off) and 100 % or more to 254.

The simulator and the gateway import these; nothing else defines the curve.
"""

from __future__ import annotations

import math

STEPS_PER_DECADE = 253 / 3
MAX_LEVEL = 254
MIN_LEVEL = 1

# IEC 62386-102 fade time codes 0..15: T = 0.5 * sqrt(2 ** code) s, code 0 = no fade.
FADE_TIMES_S: tuple[float, ...] = (0.0,) + tuple(0.5 * math.sqrt(2**c) for c in range(1, 16))

# Light output of every level, so level -> percent is a table lookup.
_PERCENT: tuple[float, ...] = (0.0,) + tuple(
    10 ** ((n - 1) / STEPS_PER_DECADE - 1) for n in range(1, MAX_LEVEL + 1)
)


def arc_level_to_percent(level: int) -> float:
    """Light output in percent of maximum for arc power ``level`` (0–254; 0 is off)."""
    if not 0 <= level <= MAX_LEVEL:
        raise ValueError(f"arc power level {level} outside 0..254")
    return _PERCENT[level]


def percent_to_arc_level(percent: float) -> int:
    """The arc power level whose output is nearest (on the log scale) to ``percent``."""
    if percent <= 0:
        return 0
    level = 1 + STEPS_PER_DECADE * (math.log10(percent) + 1)
    return max(MIN_LEVEL, min(MAX_LEVEL, round(level)))


def arc_level_at_least(percent: float) -> int:
    """The smallest arc power level whose output is at least ``percent`` (capped at 254)."""
    if percent <= 0:
        return 0
    if percent >= 100.0:
        return MAX_LEVEL
    # Start from the analytic answer and correct for floating-point error either way.
    level = max(
        MIN_LEVEL, min(MAX_LEVEL, math.ceil(1 + STEPS_PER_DECADE * (math.log10(percent) + 1)))
    )
    while level > MIN_LEVEL and _PERCENT[level - 1] >= percent:
        level -= 1
    while level < MAX_LEVEL and _PERCENT[level] < percent:
        level += 1
    return level


def fade_time_code(seconds: float) -> int:
    """The DALI fade time code (0–15) of the shortest standard fade lasting at least ``seconds``.

    Rounding up keeps a step down never faster than asked. Raises ``ValueError`` above 90.5 s,
    the longest standard fade time.
    """
    if seconds <= 0:
        return 0
    for code, t in enumerate(FADE_TIMES_S):
        if t >= seconds - 1e-9:
            return code
    raise ValueError(f"fade of {seconds} s is longer than the longest DALI fade time (90.5 s)")
