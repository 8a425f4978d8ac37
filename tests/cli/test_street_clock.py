"""The demo's live view tells what time it is on the street: site-local time with its UTC
offset (so both 02:30 of the autumn DST night can be told apart), the clock's speed and the
sun's elevation."""

from __future__ import annotations

from datetime import UTC, datetime

from lykta.cli.demo import _start_ms, street_clock


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def test_a_winter_night_shows_local_time_offset_and_speed() -> None:
    line = street_clock(_ms("2027-01-15T23:42:10+00:00"), 60)
    assert "Sat 2027-01-16 00:42:10 CET (UTC+01:00)" in line
    assert "60×" in line
    assert "sun -" in line  # deep night


def test_the_two_half_past_twos_of_the_autumn_night_are_told_apart() -> None:
    first = street_clock(_ms("2027-10-31T00:30:00+00:00"), 300)
    second = street_clock(_ms("2027-10-31T01:30:00+00:00"), 300)
    assert "02:30:00 CEST (UTC+02:00)" in first
    assert "02:30:00 CET (UTC+01:00)" in second


def test_spring_forward_skips_the_hour_and_noon_has_the_sun_up() -> None:
    before = street_clock(_start_ms("2027-03-28T01:59:59") or 0, 60)
    after = street_clock((_start_ms("2027-03-28T01:59:59") or 0) + 1000, 60)
    assert "01:59:59 CET" in before and "03:00:00 CEST" in after
    noon = street_clock(int(datetime(2027, 6, 21, 10, tzinfo=UTC).timestamp() * 1000), 1)
    assert "12:00:00 CEST" in noon and "real time" in noon and "sun +" in noon
