"""Daylight saving, the noon-to-noon night, sun elevation switching at 58–78 °N."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lykta.strategy.astronomy import (
    LuxHysteresis,
    lit_windows,
    lux_switch,
    safe_default_level,
    sun_elevation,
)
from lykta.strategy.wallclock import local_to_utc, night_bounds, night_of, zone

STO = zone("Europe/Stockholm")
SPRING = date(2026, 3, 29)  # 02:00 CET -> 03:00 CEST
AUTUMN = date(2026, 10, 25)  # 03:00 CEST -> 02:00 CET


def test_spring_forward_gap_happens_at_the_jump() -> None:
    # 02:30 does not exist; it happens at the first instant after it: 03:00 CEST = 01:00 UTC
    assert local_to_utc(datetime(2026, 3, 29, 2, 30), STO) == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )
    assert local_to_utc(datetime(2026, 3, 29, 2, 0), STO) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert local_to_utc(datetime(2026, 3, 29, 3, 0), STO) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_fall_back_first_occurrence_counts() -> None:
    # 02:30 happens twice (00:30 and 01:30 UTC); the first counts
    assert local_to_utc(datetime(2026, 10, 25, 2, 30), STO) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )


def test_nights_are_23_and_25_hours_on_the_dst_nights() -> None:
    s, e = night_bounds(SPRING - timedelta(days=1), STO)
    assert e - s == timedelta(hours=23)
    s, e = night_bounds(AUTUMN - timedelta(days=1), STO)
    assert e - s == timedelta(hours=25)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([SPRING, AUTUMN]), st.integers(0, 24 * 60 - 1), st.integers(0, 24 * 60 - 1))
def test_local_to_utc_is_monotone_across_dst(day: date, a: int, b: int) -> None:
    """Invariant: later wall times never happen earlier (so periods keep their order)."""
    base = datetime.combine(day, datetime.min.time())
    wa, wb = base + timedelta(minutes=min(a, b)), base + timedelta(minutes=max(a, b))
    assert local_to_utc(wa, STO) <= local_to_utc(wb, STO)


@settings(max_examples=100, deadline=None)
@given(st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)))
def test_every_instant_is_in_its_night(t: datetime) -> None:
    s, e = night_bounds(night_of(t, STO), STO)
    assert s <= t < e


def test_white_night_at_58_north_is_short_but_lit() -> None:
    ((on, off),) = lit_windows(58.59, 16.19, "Europe/Stockholm", -4.0, 0, 0, date(2026, 6, 21))
    assert timedelta(hours=3) < off - on < timedelta(hours=5)
    for edge in (on, off):
        assert sun_elevation(58.59, 16.19, edge) == pytest.approx(-4.0, abs=0.02)
    mid = on + (off - on) / 2
    assert sun_elevation(58.59, 16.19, mid) < -4.0


def test_midnight_sun_and_polar_night() -> None:
    # Tromsø at midsummer: never dark, never lit
    assert lit_windows(69.65, 18.96, "Europe/Oslo", -4.0, 0, 0, date(2026, 6, 21)) == ()
    # Longyearbyen at midwinter: dark from noon to noon, one window covering the night
    night = date(2026, 12, 21)
    (w,) = lit_windows(78.22, 15.65, "Arctic/Longyearbyen", -4.0, 15, -15, night)
    assert w == night_bounds(night, zone("Arctic/Longyearbyen"))  # edges not shifted


def test_offsets_shift_switching() -> None:
    args = (58.59, 16.19, "Europe/Stockholm", -4.0)
    night = date(2026, 11, 25)
    ((on, off),) = lit_windows(*args, 0, 0, night)
    ((on2, off2),) = lit_windows(*args, 10, -20, night)
    assert on2 - on == timedelta(minutes=10)
    assert off - off2 == timedelta(minutes=20)


def test_safe_default_is_dusk_to_dawn() -> None:
    noon = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
    midnight = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
    assert safe_default_level(58.59, 16.19, noon) == 0
    assert safe_default_level(58.59, 16.19, midnight) == 254
    assert safe_default_level(58.59, 16.19, midnight, level=200) == 200


@given(st.booleans(), st.floats(0, 200, allow_nan=False))
def test_lux_hysteresis(was_on: bool, lux: float) -> None:
    h = LuxHysteresis(on_below_lx=20, off_above_lx=40)
    now = lux_switch(was_on, lux, h)
    if 20 <= lux <= 40:
        assert now == was_on  # no flicker between the thresholds
    else:
        assert now == (lux < 20)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        sun_elevation(58.59, 16.19, datetime(2026, 1, 1))


@pytest.mark.parametrize("lat", [62.47, 62.481, 62.482, 62.5])
def test_short_dips_below_the_threshold_are_found(lat: float) -> None:
    """Near the latitude where the midsummer sun just touches −4°, the lit window shrinks to
    minutes (shorter than the 5-minute sampling); it must match a 5-second brute force."""
    windows = lit_windows(lat, 16.0, "Europe/Stockholm", -4.0, 0, 0, date(2026, 6, 21))
    t, end, dark = (
        datetime(2026, 6, 21, 22, 20, tzinfo=UTC),
        datetime(2026, 6, 21, 23, 30, tzinfo=UTC),
        0,
    )
    while t < end:
        dark += sun_elevation(lat, 16.0, t) < -4.0
        t += timedelta(seconds=5)
    found = sum((off - on).total_seconds() for on, off in windows)
    assert abs(found - 5 * dark) <= 10
