"""Calendar rules: weekdays, holidays, special nights; first match wins."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from lykta.strategy.calendar import SPECIAL_NIGHTS, is_public_holiday, special_nights_on
from lykta.strategy.schedule import profile_for

from .conftest import mini_doc


@settings(deadline=None)  # holidays builds a year's table on first use: a cold call is slow
@given(st.integers(1953, 2100))  # the Friday rule since 1953
def test_midsommarafton_is_the_friday_19_to_25_june(year: int) -> None:
    d = SPECIAL_NIGHTS["midsommarafton"](year)
    assert d.weekday() == 4 and d.month == 6 and 19 <= d.day <= 25
    assert is_public_holiday(date(year, d.month, d.day + 1))  # midsommardagen


def test_special_nights() -> None:
    assert special_nights_on(date(2026, 12, 31)) == {"nyarsafton"}
    assert special_nights_on(date(2026, 4, 30)) == {"valborgsmassoafton"}
    assert special_nights_on(date(2026, 12, 12)) == {"luciadagen"}  # the night before Lucia morning
    assert special_nights_on(date(2026, 4, 4)) == {"paskafton"}
    assert special_nights_on(date(2026, 11, 25)) == frozenset()


def test_norrkoping_profiles(norrkoping) -> None:
    assert profile_for(norrkoping, date(2026, 11, 25)) == "weekday"  # Wednesday
    assert profile_for(norrkoping, date(2026, 11, 27)) == "weekend"  # Friday
    assert profile_for(norrkoping, date(2026, 5, 13)) == "weekend"  # eve of Kristi himmelsfärd
    assert profile_for(norrkoping, date(2026, 12, 31)) == "festive"  # Thursday, nyårsafton
    assert profile_for(norrkoping, date(2026, 6, 19)) == "festive"  # Friday, but festive first


def test_date_ranges_wrap_the_year() -> None:
    from lykta.strategy import parse_strategy

    doc = mini_doc()
    doc["profiles"]["winter"] = doc["profiles"]["weekday"]
    doc["calendar"].insert(0, {"profile": "winter", "dates": [{"from": "12-01", "to": "01-15"}]})
    s = parse_strategy(doc)
    assert profile_for(s, date(2026, 12, 24)) == "winter"
    assert profile_for(s, date(2027, 1, 10)) == "winter"
    assert profile_for(s, date(2027, 1, 16)) == "weekday"
