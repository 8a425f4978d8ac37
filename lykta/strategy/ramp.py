"""Ramps: which fade a level change uses, and the level part-way through a fade.

DALI gear fades linearly in arc power level over the fade time (so logarithmically in light).
A step up uses the fade-up time, a step down the fade-down time: a step down is never faster.
"""

from __future__ import annotations


def fade_for(previous: int, target: int, fade_up_s: float, fade_down_s: float) -> float:
    """Fade time in seconds for a change from ``previous`` to ``target`` arc level."""
    if target > previous:
        return fade_up_s
    if target < previous:
        return fade_down_s
    return 0.0


def level_during_fade(start: int, target: int, fade_ms: int, elapsed_ms: int) -> int:
    """Arc level ``elapsed_ms`` into a linear fade from ``start`` to ``target``.

    Rounded towards ``start``, so a fade down never undershoots the straight line (and never
    passes below ``target``); a switch-off (``target`` 0) fades down to the lowest level and
    then goes off at the end.
    """
    if elapsed_ms >= fade_ms or fade_ms <= 0 or start == target:
        return target
    if elapsed_ms <= 0:
        return start
    if target == 0:  # DALI fades to off through the minimum level
        return max(1, level_during_fade(start, 1, fade_ms, elapsed_ms))
    span = target - start
    step = span * elapsed_ms // fade_ms if span > 0 else -((-span * elapsed_ms) // fade_ms)
    return start + step
