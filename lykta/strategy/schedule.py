"""A night's plan: its profile (calendar), lit windows (astronomy) and period start instants.

Pure and cached per strategy and night. The active period at an instant is the period with the
latest start at or before it; before every start the first declared period applies. So a
period whose clock start falls before dusk (a white night: dusk at 23:30, "late" from 22:00)
simply never shows, and an offset start ("dusk+30") leaves the first period in force until then.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from lykta.strategy.astronomy import lit_windows
from lykta.strategy.calendar import (
    is_public_holiday,
    special_nights_on,
    weekday_name,
)
from lykta.strategy.model import CalendarRule, DateRange, EventTime, Override, Strategy
from lykta.strategy.wallclock import clock_time_in_night, night_bounds, zone


def _in_range(night: date, r: DateRange) -> bool:
    if len(r.start) == 10:  # YYYY-MM-DD
        return date.fromisoformat(r.start) <= night <= date.fromisoformat(r.end)
    md = (night.month, night.day)
    a = (int(r.start[:2]), int(r.start[3:]))
    b = (int(r.end[:2]), int(r.end[3:]))
    return a <= md <= b if a <= b else (md >= a or md <= b)


def rule_matches(rule: CalendarRule, night: date) -> bool:
    """Whether every condition of ``rule`` holds for the night of ``night``."""
    if rule.weekdays is not None and weekday_name(night) not in rule.weekdays:
        return False
    if rule.dates is not None and not any(_in_range(night, r) for r in rule.dates):
        return False
    if rule.public_holiday is not None and is_public_holiday(night) != rule.public_holiday:
        return False
    if rule.before_public_holiday is not None and (
        is_public_holiday(night + timedelta(days=1)) != rule.before_public_holiday
    ):
        return False
    if rule.special_nights is not None and not (
        special_nights_on(night) & set(rule.special_nights)
    ):
        return False
    return True


def profile_for(strategy: Strategy, night: date) -> str:
    """The profile of the first calendar rule matching ``night`` (the last rule always does)."""
    for rule in strategy.calendar:
        if rule_matches(rule, night):
            return rule.profile
    raise AssertionError("validated calendars end with an unconditional rule")


@dataclass(frozen=True, slots=True)
class NightPlan:
    """Everything about one night that does not depend on the zone."""

    night: date
    start: datetime  # local noon, UTC
    end: datetime  # next local noon, UTC
    profile: str
    lit: tuple[tuple[datetime, datetime], ...]
    starts: tuple[datetime, ...]  # period start instants, sorted
    start_periods: tuple[str, ...]  # period name at each of ``starts``
    first_period: str

    def is_lit(self, t: datetime) -> bool:
        """Whether ``t`` lies in a lit window of this night."""
        return any(on <= t < off for on, off in self.lit)

    def period_at(self, t: datetime) -> str:
        """The period in force at ``t`` (see the module docstring)."""
        i = bisect_right(self.starts, t)
        return self.start_periods[i - 1] if i else self.first_period

    def boundaries(self) -> list[datetime]:
        """Instants where something may change: lit window edges and period starts in them."""
        out = {x for w in self.lit for x in w}
        out.update(s for s in self.starts if self.is_lit(s))
        return sorted(out)


def _resolve(et: EventTime, plan_lit: tuple[tuple[datetime, datetime], ...], night: date,
             tzname: str, start: datetime, end: datetime) -> datetime:  # fmt: skip
    if et.anchor == "clock":
        assert et.clock is not None
        return clock_time_in_night(night, et.clock, zone(tzname))
    if not plan_lit:  # never lit: the period never matters; keep it ordered
        base = start if et.anchor == "dusk" else end
    else:
        base = plan_lit[0][0] if et.anchor == "dusk" else plan_lit[-1][1]
    return base + timedelta(minutes=et.offset_min)


def night_plan(strategy: Strategy, night: date) -> NightPlan:
    """The (cached) plan of ``night`` for ``strategy``."""
    key = ("night", night)
    plan = strategy._cache.get(key)
    if plan is not None:
        return plan
    site, sw = strategy.site, strategy.switching
    tz = zone(site.timezone)
    start, end = night_bounds(night, tz)
    lit = lit_windows(site.latitude, site.longitude, site.timezone, sw.sun_elevation_deg,
                      sw.on_offset_min, sw.off_offset_min, night)  # fmt: skip
    profile = profile_for(strategy, night)
    periods = strategy.profiles[profile].periods
    resolved = sorted(
        ((_resolve(p.start, lit, night, site.timezone, start, end), i, p.name)
         for i, p in enumerate(periods)),
    )  # fmt: skip
    plan = NightPlan(
        night=night,
        start=start,
        end=end,
        profile=profile,
        lit=lit,
        starts=tuple(r[0] for r in resolved),
        start_periods=tuple(r[2] for r in resolved),
        first_period=periods[0].name,
    )
    if len(strategy._cache) > 20000:  # a long energy run: keep memory bounded
        strategy._cache.clear()
    strategy._cache[key] = plan
    return plan


def nights_between(strategy: Strategy, start: datetime, end: datetime) -> list[date]:
    """The nights overlapping [start, end)."""
    from lykta.strategy.wallclock import night_of

    tz = zone(strategy.site.timezone)
    first, last = night_of(start, tz), night_of(end - timedelta(microseconds=1), tz)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def change_instants(
    plans: Iterable[NightPlan], overrides: Sequence[Override], start: datetime, end: datetime
) -> list[datetime]:
    """``start`` and every instant in (start, end) where a target may change: lit window
    edges, period starts, override starts and expiries. Between two of them every target is
    constant, so the compiler samples here and the energy estimate integrates segment-wise."""
    out = {start}
    for p in plans:
        out.update(b for b in p.boundaries() if start < b < end)
        out.update(s for s in p.starts if start < s < end)
    for o in overrides:
        out.update(t for t in (o.starts, o.expires) if t is not None and start < t < end)
    return sorted(out)
