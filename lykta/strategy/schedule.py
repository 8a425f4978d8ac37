"""A night's plan for one zone: its profile (the zone's calendar), lit windows (its
switching: the sun, offsets, astro limits or around the clock), period start instants and
calendar events.

Pure and cached per strategy, night and zone. The active period at an instant is the period
with the latest start at or before it; before every start the first declared period applies.
So a period whose clock start falls before dusk (a white night: dusk at 23:30, "late" from
22:00) simply never shows, and an offset start ("dusk+30") leaves the first period in force
until then. ``dusk``/``dawn`` are the zone's switch-on/off; in a zone lit around the clock
they are those of the sun (with the zone's elevation and offsets).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from lykta.strategy.astronomy import lit_windows
from lykta.strategy.calendar import (
    is_public_holiday,
    special_nights_on,
    weekday_name,
)
from lykta.strategy.model import (
    CalendarRule,
    DateRange,
    EffectiveSwitching,
    EventTime,
    Override,
    OverrideKind,
    Strategy,
)
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


def profile_for(strategy: Strategy, night: date, zone_name: str | None = None) -> str | None:
    """The profile ``zone_name`` (default: the shared calendar) runs on ``night``: the first
    matching rule's (``None``: no calendar)."""
    rules = strategy.calendar if zone_name is None else strategy.zone_calendar(zone_name)
    return _first_match(rules, night)


def _first_match(rules: Sequence[CalendarRule], night: date) -> str | None:
    for rule in rules:
        if rule_matches(rule, night):
            return rule.profile
    return None


@dataclass(frozen=True, slots=True)
class NightPlan:
    """Everything about one night of one zone (or of the site: ``zone`` None) except the
    luminaire: profile (calendar), lit windows (switching), period starts and events."""

    night: date
    start: datetime  # local noon, UTC
    end: datetime  # next local noon, UTC
    profile: str
    lit: tuple[tuple[datetime, datetime], ...]
    starts: tuple[datetime, ...]  # period start instants, sorted
    start_periods: tuple[str, ...]  # period name at each of ``starts``
    first_period: str | None
    zone: str | None = None
    events: tuple[Override, ...] = ()
    """The night's calendar events for the zone, as event overrides with start and expiry."""

    def is_lit(self, t: datetime) -> bool:
        """Whether ``t`` lies in a lit window of this night."""
        return any(on <= t < off for on, off in self.lit)

    def period_at(self, t: datetime) -> str | None:
        """The period in force at ``t`` (see the module docstring)."""
        i = bisect_right(self.starts, t)
        return self.start_periods[i - 1] if i else self.first_period

    def boundaries(self) -> list[datetime]:
        """Instants where something may change: lit window edges, period starts in them,
        event starts and ends."""
        out = {x for w in self.lit for x in w}
        out.update(s for s in self.starts if self.is_lit(s))
        out.update(t for e in self.events for t in (e.starts, e.expires) if t is not None)
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


def switched_windows(
    strategy: Strategy, sw: EffectiveSwitching, night: date
) -> tuple[tuple[datetime, datetime], ...]:
    """The lit windows (UTC) of ``night`` under ``sw``: the sun's, then the astro limits;
    the whole night when ``always_lit``."""
    site = strategy.site
    tz = zone(site.timezone)
    start, end = night_bounds(night, tz)
    if sw.always_lit:
        return ((start, end),)
    lit = lit_windows(site.latitude, site.longitude, site.timezone, sw.sun_elevation_deg,
                      sw.on_offset_min, sw.off_offset_min, night)  # fmt: skip
    limits = (sw.on_not_before, sw.on_not_after, sw.off_not_before, sw.off_not_after)
    if not lit or all(x is None for x in limits):
        return lit
    on, off = lit[0][0], lit[-1][1]
    at = [None if x is None else clock_time_in_night(night, x, tz) for x in limits]
    if at[0] is not None:
        on = max(on, at[0])
    if at[1] is not None:
        on = min(on, at[1])
    if at[2] is not None:
        off = max(off, at[2])
    if at[3] is not None:
        off = min(off, at[3])
    on, off = max(on, start), min(off, end)
    if on >= off:
        return ()
    # the first window starts at ``on`` and the last ends at ``off``; others clip to them
    wins = [list(w) for w in lit]
    wins[0][0] = min(wins[0][0], on)
    wins[-1][1] = max(wins[-1][1], off)
    out = [(max(a, on), min(b, off)) for a, b in wins]
    return tuple((a, b) for a, b in out if a < b)


def night_plan(strategy: Strategy, night: date, zone_name: str | None = None) -> NightPlan:
    """The (cached) plan of ``night`` for zone ``zone_name`` (``None``: the site's own
    switching and shared calendar, no events)."""
    key = ("night", night, zone_name)
    plan = strategy._cache.get(key)
    if plan is not None:
        return plan
    site = strategy.site
    tz = zone(site.timezone)
    start, end = night_bounds(night, tz)
    if zone_name is None:
        sw, rules = strategy.site_switching(), strategy.calendar
    else:
        sw, rules = strategy.zone_switching(zone_name), strategy.zone_calendar(zone_name)
    lit = switched_windows(strategy, sw, night)
    # dusk and dawn are the sun's even in a zone lit around the clock (a tunnel's "evening")
    sun = switched_windows(strategy, replace(sw, always_lit=False), night) if sw.always_lit else lit
    profile = _first_match(rules, night)
    periods = strategy.profiles[profile].periods if profile is not None else []
    resolved = sorted(
        ((_resolve(p.start, sun, night, site.timezone, start, end), i, p.name)
         for i, p in enumerate(periods)),
    )  # fmt: skip
    events: list[Override] = []
    if zone_name is not None:
        for ev in strategy.events:
            if zone_name in ev.zones and rule_matches(ev.rule, night):
                a = _resolve(ev.start, sun, night, site.timezone, start, end)
                b = _resolve(ev.end, sun, night, site.timezone, start, end)
                if a < b:
                    events.append(Override(id=ev.id, kind=OverrideKind.EVENT, zones=[zone_name],
                                           lighting_class=ev.lighting_class, starts=a,
                                           expires=b))  # fmt: skip
    plan = NightPlan(
        night=night,
        start=start,
        end=end,
        profile=profile or "-",
        lit=lit,
        starts=tuple(r[0] for r in resolved),
        start_periods=tuple(r[2] for r in resolved),
        first_period=periods[0].name if periods else None,
        zone=zone_name,
        events=tuple(events),
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
    edges, period starts, event and override starts and expiries. Between two of them every
    target is constant, so the compiler samples here and the energy estimate integrates
    segment-wise."""
    out = {start}
    for p in plans:
        out.update(b for b in p.boundaries() if start < b < end)
        out.update(s for s in p.starts if start < s < end)
    for o in overrides:
        out.update(t for t in (o.starts, o.expires) if t is not None and start < t < end)
    return sorted(out)
