"""Local wall-clock time, daylight saving and the noon-to-noon night.

Strategy times ("22:00") are local wall-clock times in the site's IANA time zone. Two nights a
year the wall clock misbehaves; the rules are:

- **Spring forward** (Europe/Stockholm: 02:00 → 03:00 on the last Sunday of March): a time in
  the gap (02:30) does not exist and happens at the *first instant after it*, the moment the
  clock jumps (03:00 CEST = 01:00 UTC).
- **Fall back** (03:00 → 02:00 on the last Sunday of October): a time in the repeated hour
  (02:30) happens at its *first occurrence* (02:30 CEST = 00:30 UTC).

A *night* is the unit of the calendar: the night of date D runs from local noon on D to local
noon on D + 1, so one evening and the following morning belong together.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

NOON = time(12, 0)


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` for an IANA name (cached)."""
    return ZoneInfo(name)


def require_utc(t: datetime, what: str = "instant") -> datetime:
    """Return ``t`` in UTC; a naive datetime is refused (the clock must say which zone)."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{what} {t.isoformat()} has no time zone; pass an aware UTC datetime")
    return t.astimezone(UTC)


def local_to_utc(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant at which the naive local ``wall`` time happens (DST rules above)."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first  # exists (in the repeated hour fold=0 is the first occurrence)
    # In the spring-forward gap: fold=1 maps before the jump, fold=0 after it. The jump is
    # the first instant whose wall time is at or after ``wall``; find it to the second.
    lo = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = first
    if lo > hi:
        lo, hi = hi, lo
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0) if hi.microsecond else hi


def night_of(t: datetime, tz: ZoneInfo) -> date:
    """The night (its evening's local date) that the UTC instant ``t`` belongs to."""
    local = t.astimezone(tz)
    d = local.date()
    return d - timedelta(days=1) if local.time() < NOON else d


def night_bounds(night: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC start and end of ``night``: local noon on its date to local noon the day after."""
    start = local_to_utc(datetime.combine(night, NOON), tz)
    end = local_to_utc(datetime.combine(night + timedelta(days=1), NOON), tz)
    return start, end


def clock_time_in_night(night: date, at: time, tz: ZoneInfo) -> datetime:
    """UTC instant of local wall time ``at`` within ``night`` (before noon means the morning)."""
    day = night if at >= NOON else night + timedelta(days=1)
    return local_to_utc(datetime.combine(day, at), tz)
