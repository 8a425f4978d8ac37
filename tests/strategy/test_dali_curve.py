"""The DALI logarithmic curve and fade times."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lykta.strategy.dali_curve import (
    FADE_TIMES_S,
    arc_level_at_least,
    arc_level_to_percent,
    fade_time_code,
    percent_to_arc_level,
)

percent = st.floats(0.0, 150.0, allow_nan=False)


def test_anchor_points() -> None:
    assert arc_level_to_percent(254) == pytest.approx(100.0)
    assert arc_level_to_percent(1) == pytest.approx(0.1)
    assert arc_level_to_percent(0) == 0.0
    assert arc_level_to_percent(170) == pytest.approx(10 ** ((169 * 3 / 253) - 1))
    with pytest.raises(ValueError, match="255"):
        arc_level_to_percent(255)


@given(st.integers(0, 254))
def test_levels_round_trip(level: int) -> None:
    p = arc_level_to_percent(level)
    assert percent_to_arc_level(p) == level
    assert arc_level_at_least(p) == level


@settings(max_examples=300, deadline=None)
@given(percent)
def test_at_least_is_the_smallest_level_not_below(p: float) -> None:
    """Invariant: output(level) >= p, and the level below delivers less than p (for p > 0)."""
    level = arc_level_at_least(p)
    if p <= 0:
        assert level == 0
        return
    assert level >= 1
    assert arc_level_to_percent(level) >= min(p, 100.0) - 1e-12 or level == 254
    if level > 1:
        assert arc_level_to_percent(level - 1) < p


@given(percent, percent)
def test_monotone(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert arc_level_at_least(lo) <= arc_level_at_least(hi)
    assert percent_to_arc_level(lo) <= percent_to_arc_level(hi)


@given(st.floats(0.0, 90.5, allow_nan=False))
def test_fade_code_never_faster(seconds: float) -> None:
    code = fade_time_code(seconds)
    assert FADE_TIMES_S[code] >= seconds - 1e-9
    if code > 0:
        assert FADE_TIMES_S[code - 1] < seconds


def test_fade_too_long() -> None:
    with pytest.raises(ValueError, match="90.5"):
        fade_time_code(120)
