"""The calendar: which profile a night runs, from weekdays, dates, holidays and special nights.

A night is named by its evening's local date (see :mod:`lykta.strategy.wallclock`). Rules are
tried in order and the first one whose conditions all hold picks the night's profile.

Swedish public holidays come from ``holidays`` (``holidays.Sweden``). Named special nights are
the evenings the city lights differently; their dates are computed here, one table:
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from functools import lru_cache

import holidays
from dateutil.easter import easter

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _midsommarafton(year: int) -> date:
    # the Friday between 19 and 25 June
    d = date(year, 6, 19)
    return d + timedelta(days=(4 - d.weekday()) % 7)


def _alla_helgons_afton(year: int) -> date:
    # Alla helgons dag is the Saturday between 31 October and 6 November; its eve the Friday
    d = date(year, 10, 31)
    return d + timedelta(days=(5 - d.weekday()) % 7) - timedelta(days=1)


SPECIAL_NIGHTS: dict[str, Callable[[int], date]] = {
    "trettondagsafton": lambda y: date(y, 1, 5),
    "paskafton": lambda y: easter(y) - timedelta(days=1),
    "valborgsmassoafton": lambda y: date(y, 4, 30),
    "nationaldagen": lambda y: date(y, 6, 6),
    "midsommarafton": _midsommarafton,
    "alla_helgons_afton": _alla_helgons_afton,
    # Lucia processions walk before dawn on 13 December: the night that ends that morning
    "luciadagen": lambda y: date(y, 12, 12),
    "julafton": lambda y: date(y, 12, 24),
    "nyarsafton": lambda y: date(y, 12, 31),
}
"""Special nights by ASCII name; the value gives the evening's date in a year."""

_ALIASES = {
    "påskafton": "paskafton",
    "valborgsmässoafton": "valborgsmassoafton",
    "nyårsafton": "nyarsafton",
    "alla helgons afton": "alla_helgons_afton",
    "luciamorgon": "luciadagen",
}


def special_night_name(name: str) -> str | None:
    """The canonical name of a special night (Swedish spelling accepted), or ``None``."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    return key if key in SPECIAL_NIGHTS else None


@lru_cache(maxsize=256)
def _public_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.Sweden(years=year))


def is_public_holiday(d: date) -> bool:
    """Whether ``d`` is a Swedish public holiday (helgdag; Sundays as such do not count)."""
    return d in _public_holidays(d.year)


def special_nights_on(night: date) -> frozenset[str]:
    """The special nights whose evening is ``night``."""
    return frozenset(n for n, f in SPECIAL_NIGHTS.items() if f(night.year) == night)


def weekday_name(d: date) -> str:
    """``"mon"`` … ``"sun"``."""
    return WEEKDAYS[d.weekday()]
