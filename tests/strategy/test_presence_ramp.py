"""The presence corridor and ramps."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lykta.strategy.presence import corridor, nearest_index
from lykta.strategy.ramp import fade_for, level_during_fade

paths = st.lists(st.floats(0, 5000, allow_nan=False), min_size=1, max_size=60).map(sorted)


@settings(max_examples=300, deadline=None)
@given(paths, st.floats(-100, 5100, allow_nan=False), st.integers(0, 8), st.integers(0, 8))
def test_corridor(positions: list[float], p: float, ahead: int, behind: int) -> None:
    """Invariant: the corridor is [k - behind, k + ahead] around the nearest luminaire k,
    clipped to the path, and k is always in it."""
    k = nearest_index(positions, p)
    assert all(abs(positions[k] - p) <= abs(x - p) for x in positions)
    c = corridor(positions, p, ahead, behind)
    assert k in c
    assert c.start == max(0, k - behind) and c.stop == min(len(positions), k + ahead + 1)
    assert len(c) <= ahead + behind + 1


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 254), st.integers(0, 254), st.integers(0, 90_000), st.integers(-10, 100_000))
def test_fade_stays_between_ends_and_is_monotone(
    start: int, target: int, fade: int, t: int
) -> None:
    lvl = level_during_fade(start, target, fade, t)
    later = level_during_fade(start, target, fade, t + 500)
    lo, hi = min(start, target), max(start, target)
    if target == 0:
        lo = 0
    assert lo <= lvl <= hi
    if target < start:
        assert later <= lvl  # going down, never back up
    elif target > start:
        assert later >= lvl
    if t >= fade:
        assert lvl == target


def test_fade_direction() -> None:
    assert fade_for(100, 200, 2.0, 45.0) == 2.0
    assert fade_for(200, 100, 2.0, 45.0) == 45.0
    assert fade_for(100, 100, 2.0, 45.0) == 0.0
