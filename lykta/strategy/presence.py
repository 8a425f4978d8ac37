"""The presence light corridor, pure.

A zone's luminaires stand in order along its path (by ``position_m``). A detection at position
``p`` lights the luminaire nearest to ``p`` plus ``behind`` luminaires before it and ``ahead``
after it (ahead = increasing position) to the boost class: the corridor
``[k - behind, k + ahead]`` in path indices, clipped to the path. The boost is reached within
the presence fade-up time and held for ``hold_s`` after the last detection covering a
luminaire, then fades down over the presence fade-down time (never below the safety floor).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Detection:
    """A presence detection at ``position_m`` along a zone's path at UTC instant ``at``."""

    position_m: float
    at: datetime


PresenceState = Mapping[str, Sequence[Detection]]
"""Recent detections per zone name (older than the hold time may be dropped by the caller)."""


def nearest_index(positions: Sequence[float], p: float) -> int:
    """Index of the position nearest to ``p`` in sorted ``positions`` (ties: the lower)."""
    if not positions:
        raise ValueError("a zone path with no luminaires has no corridor")
    i = bisect_left(positions, p)
    if i == 0:
        return 0
    if i == len(positions):
        return len(positions) - 1
    return i - 1 if p - positions[i - 1] <= positions[i] - p else i


def corridor(positions: Sequence[float], p: float, ahead: int, behind: int) -> range:
    """Path indices lit by a detection at ``p``: ``[k - behind, k + ahead]`` clipped."""
    k = nearest_index(positions, p)
    return range(max(0, k - behind), min(len(positions), k + ahead + 1))


def boosted(
    positions: Sequence[float],
    index: int,
    detections: Sequence[Detection],
    at: datetime,
    ahead: int,
    behind: int,
    hold_s: float,
) -> bool:
    """Whether luminaire ``index`` of the path is held at boost at ``at``."""
    for d in detections:
        age = (at - d.at).total_seconds()
        if 0 <= age < hold_s and index in corridor(positions, d.position_m, ahead, behind):
            return True
    return False
