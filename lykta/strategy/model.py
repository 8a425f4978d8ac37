"""The strategy file model (pydantic) and loading with precise error locations.

``load_strategy(path)`` reads a TOML strategy (and the inventory file it names), validates
everything and either returns a :class:`Strategy` or raises :class:`StrategyError` listing
*all* problems, each as ``file: key.path: reason``, e.g.
``strategy.toml: zones.parkvagen.safety_floor: P7 is not an EN 13201 class``.
The format is documented in ``docs/strategy.md``.
"""

from __future__ import annotations

import csv
import enum
import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from lykta.strategy.adaptive import MAX_STEP
from lykta.strategy.calendar import WEEKDAYS, special_night_name
from lykta.strategy.dali_curve import FADE_TIMES_S
from lykta.strategy.en13201 import LightingClass

MAX_FADE_S = FADE_TIMES_S[-1]
_M = TypeVar("_M", bound=BaseModel)
MAX_TOML_BYTES = 8 * 1024 * 1024


def _parse_class(v: Any) -> LightingClass:
    if isinstance(v, LightingClass):
        return v
    if not isinstance(v, str):
        raise ValueError(f'{v!r} is not an EN 13201 class (write e.g. "P3")')
    return LightingClass.parse(v)


Class = Annotated[LightingClass, PlainValidator(_parse_class), PlainSerializer(str)]


@dataclass(frozen=True, slots=True)
class Level:
    """A plain light output in percent of the luminaire's full output; 0 is off
    (*nattsläckning*). The alternative to an EN 13201 class in a zone's schedule."""

    percent: float

    @property
    def off(self) -> bool:
        """Whether this switches the luminaire off."""
        return self.percent == 0

    def __str__(self) -> str:
        return "off" if self.off else f"{self.percent:g}%"


_LEVEL_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")


def _parse_setting(v: Any) -> LightingClass | Level:
    if isinstance(v, LightingClass | Level):
        return v
    if isinstance(v, bool) or not isinstance(v, str):
        raise ValueError(f'{v!r} is not a class, a level or off (write "P3", "30%" or "off")')
    text = v.strip().lower()
    if text == "off":
        return Level(0.0)
    if m := _LEVEL_RE.match(text):
        pct = float(m.group(1))
        if not 0 <= pct <= 100:
            raise ValueError(f"{v!r}: a level is 0–100 %")
        return Level(pct)
    try:
        return LightingClass.parse(v)
    except ValueError:
        raise ValueError(
            f'{v} is not an EN 13201 class, a level ("30%") or "off"'
        ) from None


Setting = Annotated[
    LightingClass | Level, PlainValidator(_parse_setting), PlainSerializer(str)
]
"""What a zone does in a period: an EN 13201 class, a plain level (``"30%"``) or ``"off"``."""
def _fade(v: float) -> float:
    if not 0 <= v <= MAX_FADE_S:
        raise ValueError(
            f"{v:g} s is outside 0–{MAX_FADE_S:.1f} s (the longest DALI fade is {MAX_FADE_S:.1f} s)"
        )
    return v


FadeSeconds = Annotated[float, AfterValidator(_fade)]

_EVENT_RE = re.compile(r"^(dusk|dawn)\s*(?:([+-])\s*(\d+)\s*(?:min)?)?$")
_CLOCK_RE = re.compile(r"^(\d{1,2}):(\d{2})$")


@dataclass(frozen=True, slots=True)
class EventTime:
    """When a period starts: ``dusk``/``dawn`` (switch-on/off) plus minutes, or a local time."""

    anchor: Literal["dusk", "dawn", "clock"]
    offset_min: int = 0
    clock: time | None = None

    @classmethod
    def parse(cls, text: Any) -> EventTime:
        """Parse ``"dusk"``, ``"dusk+30"``, ``"dawn-45"`` or ``"22:30"``."""
        if isinstance(text, EventTime):
            return text
        s = str(text).strip().lower()
        if m := _EVENT_RE.match(s):
            off = int(m.group(3) or 0) * (-1 if m.group(2) == "-" else 1)
            return cls(m.group(1), off)  # type: ignore[arg-type]
        if (m := _CLOCK_RE.match(s)) and int(m.group(1)) < 24 and int(m.group(2)) < 60:
            return cls("clock", 0, time(int(m.group(1)), int(m.group(2))))
        raise ValueError(
            f'{text!r} is not a period start: write "dusk", "dusk+30", "dawn-45" or "HH:MM"'
        )

    def __str__(self) -> str:
        if self.anchor == "clock":
            assert self.clock is not None
            return self.clock.strftime("%H:%M")
        return self.anchor + (f"{self.offset_min:+d}" if self.offset_min else "")


Start = Annotated[EventTime, PlainValidator(EventTime.parse), PlainSerializer(str)]


class _Model(BaseModel):
    # allow_inf_nan=False: a TOML ``nan`` reads "Input should be a finite number", not "≤ 90"
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


class Site(_Model):
    """Where the strategy applies."""

    name: str
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    timezone: str

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone (e.g. Europe/Stockholm)") from None
        return v


class LuxSwitching(_Model):
    """Switch by a lux sensor instead of the sun, with hysteresis."""

    sensor: str
    on_below_lx: float = Field(gt=0)
    off_above_lx: float = Field(gt=0)

    @model_validator(mode="after")
    def _hysteresis(self) -> LuxSwitching:
        if self.off_above_lx <= self.on_below_lx:
            raise ValueError("off_above_lx must be above on_below_lx (hysteresis)")
        return self


def _parse_clock(v: Any) -> time:
    if isinstance(v, time):
        return v
    m = _CLOCK_RE.match(str(v).strip())
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ValueError(f'{v!r} is not a local time (write "HH:MM")')
    return time(int(m.group(1)), int(m.group(2)))


Clock = Annotated[
    time, PlainValidator(_parse_clock), PlainSerializer(lambda t: t.strftime("%H:%M"))
]
"""A local wall-clock time, ``"HH:MM"``; at or after 12:00 the evening, before 12:00 the morning."""


class AstroLimits(_Model):
    """Clock limits on the astronomical switch (TALQ astro clock limits), local times.

    ``on_not_before`` / ``on_not_after`` bound the evening's switch-on, ``off_not_before`` /
    ``off_not_after`` the morning's switch-off (``off_not_before = "07:30"`` keeps a school
    route lit until 07:30). They shape nights that have a lit window; a night without one
    (midnight sun) stays unlit.
    """

    on_not_before: Clock | None = None
    on_not_after: Clock | None = None
    off_not_before: Clock | None = None
    off_not_after: Clock | None = None


class Switching(AstroLimits):
    """When the lights are on: sun below ``sun_elevation_deg``, shifted by the offsets, within
    the astro limits."""

    sun_elevation_deg: float = Field(default=-4.0, ge=-18, le=10)
    on_offset_min: int = Field(default=0, ge=-120, le=120)
    off_offset_min: int = Field(default=0, ge=-120, le=120)
    lux: LuxSwitching | None = None


class ZoneSwitching(AstroLimits):
    """A zone's own switching; a key not given is the site's ``[switching]``.

    ``always_lit = true``: lit day and night (tunnels, underpasses); the floor applies always.
    """

    sun_elevation_deg: float | None = Field(default=None, ge=-18, le=10)
    on_offset_min: int | None = Field(default=None, ge=-120, le=120)
    off_offset_min: int | None = Field(default=None, ge=-120, le=120)
    always_lit: bool = False


@dataclass(frozen=True, slots=True)
class EffectiveSwitching:
    """The switching one zone runs (site settings with the zone's own on top); hashable."""

    sun_elevation_deg: float
    on_offset_min: int
    off_offset_min: int
    on_not_before: time | None = None
    on_not_after: time | None = None
    off_not_before: time | None = None
    off_not_after: time | None = None
    always_lit: bool = False


class Period(_Model):
    """A named part of the night, starting at ``start``."""

    name: str = Field(min_length=1)
    start: Start


class Profile(_Model):
    """The periods of one kind of night (weekday, weekend, festive…)."""

    periods: list[Period] = Field(min_length=1)

    @field_validator("periods")
    @classmethod
    def _unique(cls, v: list[Period]) -> list[Period]:
        names = [p.name for p in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"period names repeat: {', '.join(dup)}")
        starts: dict[str, str] = {}
        for p in v:
            other = starts.setdefault(str(p.start), p.name)
            if other != p.name:
                raise ValueError(
                    f"periods {other!r} and {p.name!r} both start at {p.start} "
                    f"(the later would always win)"
                )
        return v


class DateRange(_Model):
    """Inclusive range of ``MM-DD`` dates (every year) or ``YYYY-MM-DD`` dates; may wrap."""

    start: str = Field(alias="from", pattern=r"^(\d{4}-)?\d{2}-\d{2}$")
    end: str = Field(alias="to", pattern=r"^(\d{4}-)?\d{2}-\d{2}$")

    @field_validator("start", "end")
    @classmethod
    def _real(cls, v: str) -> str:
        # "13-45" or "02-30" match the pattern but never a night: refuse them
        try:
            date.fromisoformat(v if len(v) == 10 else f"2000-{v}")  # 2000: a leap year
        except ValueError:
            raise ValueError(f"{v!r} is not a date (MM-DD or YYYY-MM-DD)") from None
        return v

    @model_validator(mode="after")
    def _same_form(self) -> DateRange:
        if len(self.start) != len(self.end):
            raise ValueError("from and to must both be MM-DD or both be YYYY-MM-DD")
        if len(self.start) == 10 and self.start > self.end:
            raise ValueError(f"from {self.start} is after to {self.end}")
        return self


def _check_weekdays(v: list[str] | None) -> list[str] | None:
    if v is None:
        return v
    bad = [d for d in v if d.lower()[:3] not in WEEKDAYS]
    if bad:
        raise ValueError(f"{', '.join(bad)}: weekdays are {', '.join(WEEKDAYS)}")
    return [d.lower()[:3] for d in v]


def _check_special(v: list[str] | None) -> list[str] | None:
    if v is None:
        return v
    from lykta.strategy.calendar import SPECIAL_NIGHTS

    names = [special_night_name(n) for n in v]
    bad = [n for n, c in zip(v, names, strict=True) if c is None]
    if bad:
        raise ValueError(
            f"unknown special night(s) {', '.join(bad)}; known: {', '.join(SPECIAL_NIGHTS)}"
        )
    return [c for c in names if c]


class CalendarConditions(_Model):
    """The night conditions a calendar rule and an event share; each one given must hold."""

    weekdays: list[str] | None = None
    dates: list[DateRange] | None = None
    public_holiday: bool | None = None
    before_public_holiday: bool | None = None
    special_nights: list[str] | None = None

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, v: list[str] | None) -> list[str] | None:
        return _check_weekdays(v)

    @field_validator("special_nights")
    @classmethod
    def _special(cls, v: list[str] | None) -> list[str] | None:
        return _check_special(v)


class CalendarRule(CalendarConditions):
    """Pick ``profile`` for a night when every condition given holds (none given: always)."""

    profile: str

    @property
    def unconditional(self) -> bool:
        """True when the rule matches every night."""
        return all(
            x is None
            for x in (self.weekdays, self.dates, self.public_holiday,
                      self.before_public_holiday, self.special_nights)
        )  # fmt: skip


class ZoneKind(enum.StrEnum):
    """The kind of place a zone lights (EN 13201 selection follows from it)."""

    MOTORISED_ROAD = "motorised_road"
    CONFLICT_AREA = "conflict_area"
    PEDESTRIAN_CYCLE_PATH = "pedestrian_cycle_path"
    PARK = "park"
    BUS_STOP = "bus_stop"
    EXPOSED_PLACE = "exposed_place"
    RESIDENTIAL_STREET = "residential_street"


class Presence(_Model):
    """The light corridor: a detection lights ``behind``/``ahead`` luminaires to ``boost``."""

    boost: Class
    hold_s: float = Field(ge=0, le=3600)
    ahead: int = Field(default=2, ge=0, le=100)
    behind: int = Field(default=1, ge=0, le=100)
    fade_up_s: FadeSeconds = 1.0
    fade_down_s: FadeSeconds = 32.0


class AdaptiveThreshold(_Model):
    """While the counted flow stays below ``below_per_h`` people per hour, ``step`` classes
    darker."""

    below_per_h: float = Field(gt=0, le=100_000)
    step: int = Field(ge=1, le=MAX_STEP)


class Adaptive(_Model):
    """Adaptive classes by traffic (EN 13201 adaptive lighting), counted by the zone's presence
    sensors over the last ``window_min`` minutes (see :mod:`lykta.strategy.adaptive`)."""

    thresholds: list[AdaptiveThreshold] = Field(min_length=1, max_length=MAX_STEP)
    window_min: int = Field(default=15, ge=1, le=120)
    hysteresis_percent: float = Field(default=20.0, ge=0, le=200)
    periods: list[str] | None = None
    """The periods that adapt (default: every period with a class)."""

    @field_validator("thresholds")
    @classmethod
    def _monotone(cls, v: list[AdaptiveThreshold]) -> list[AdaptiveThreshold]:
        ordered = sorted(v, key=lambda t: -t.below_per_h)
        for a, b in zip(ordered, ordered[1:], strict=False):
            if a.below_per_h == b.below_per_h:
                raise ValueError(f"two thresholds below {a.below_per_h:g}/h")
            if b.step <= a.step:
                raise ValueError(
                    f"below {b.below_per_h:g}/h steps {b.step}, not more than below "
                    f"{a.below_per_h:g}/h ({a.step}): less traffic must step further down"
                )
        return ordered

    @property
    def rules(self) -> list[tuple[float, int]]:
        """``(below_per_h, step)`` pairs, highest threshold first."""
        return [(t.below_per_h, t.step) for t in self.thresholds]

    @property
    def window_ms(self) -> int:
        """The counting window in milliseconds."""
        return self.window_min * 60_000


class Zone(_Model):
    """A zone: what it does per period (class, level or off), safety floor, its calendar and
    switching (default: the site's), ramps, presence behaviour, adaptation to traffic."""

    kind: ZoneKind
    name: str | None = None
    classes: dict[str, Setting]
    safety_floor: Class | None = None
    safety_route: bool = False
    calendar: str | None = None
    switching: ZoneSwitching | None = None
    fade_up_s: FadeSeconds = 2.0
    fade_down_s: FadeSeconds = 45.0
    presence: Presence | None = None
    adaptive: Adaptive | None = None

    @model_validator(mode="after")
    def _floor(self) -> Zone:
        if self.safety_route and self.safety_floor is None:
            raise ValueError("a safety route needs a safety_floor")
        return self

    def adapts(self, period: str | None) -> bool:
        """Whether the class of ``period`` adapts to traffic."""
        a = self.adaptive
        if a is None or period is None or not isinstance(self.classes.get(period), LightingClass):
            return False
        return a.periods is None or period in a.periods

    @property
    def series(self) -> str | None:
        """The EN 13201 series of the zone's classes (``None``: plain levels only)."""
        if self.safety_floor is not None:
            return self.safety_floor.series
        for c in self.classes.values():
            if isinstance(c, LightingClass):
                return c.series
        return self.presence.boost.series if self.presence else None


class Luminaire(_Model):
    """One luminaire: where it stands, how it is addressed, what it delivers at 100 %."""

    id: str = Field(min_length=1, max_length=128)
    zone: str
    position_m: float = Field(ge=0)
    gateway: str = Field(min_length=1)
    bus: str = Field(min_length=1)
    short_address: int = Field(ge=0, le=63)
    group: int | None = Field(default=None, ge=0, le=15)
    design_class: Class
    rated_power_w: float = Field(gt=0, le=2000)
    standby_w: float = Field(default=0.0, ge=0, le=50)
    """Power drawn while off (driver and DALI interface powered)."""
    driver_loss_w: float = Field(default=0.0, ge=0, le=500)
    """The part of ``rated_power_w`` the driver loses whenever the lamp is on, at any level."""
    clo_maintenance_factor: float | None = Field(default=None, gt=0.3, le=1)
    """Constant light output: the driver starts at this share of full power and rises to 100 %
    at end of life; energy counts the lifetime average."""
    latitude: float | None = Field(default=None, ge=-90, le=90)
    """Where it stands on the map, WGS 84 degrees (the dashboards' Map); optional."""
    longitude: float | None = Field(default=None, ge=-180, le=180)

    @model_validator(mode="after")
    def _losses(self) -> Luminaire:
        if self.driver_loss_w >= self.rated_power_w:
            raise ValueError("driver_loss_w must be below rated_power_w (it is part of it)")
        return self


class OverrideKind(enum.StrEnum):
    """Override kinds, highest priority first."""

    INCIDENT = "incident"
    MAINTENANCE = "maintenance"
    EVENT = "event"


OVERRIDE_PRIORITY = {OverrideKind.INCIDENT: 3, OverrideKind.MAINTENANCE: 2, OverrideKind.EVENT: 1}


class Override(_Model):
    """A temporary change for some zones or luminaires, with an expiry.

    - ``incident`` (trygghetsläge): raise to ``lighting_class`` (never lowers), day or night;
    - ``maintenance``: a fixed ``level_percent``, or ``off`` (never in a safety route while
      lit; never below the safety floor otherwise), day or night;
    - ``event``: ``lighting_class`` instead of the schedule while lit.
    """

    id: str = Field(min_length=1)
    kind: OverrideKind
    zones: list[str] = []
    luminaires: list[str] = []
    lighting_class: Class | None = Field(default=None, alias="class")
    level_percent: float | None = Field(default=None, ge=0, le=100)
    off: bool = False
    starts: datetime | None = None
    expires: datetime

    @field_validator("starts", "expires")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("needs a time zone offset, e.g. 2026-12-31T18:00:00+01:00")
        return v

    @model_validator(mode="after")
    def _what(self) -> Override:
        if not self.zones and not self.luminaires:
            raise ValueError("names no zones and no luminaires")
        if self.kind in (OverrideKind.INCIDENT, OverrideKind.EVENT):
            if self.lighting_class is None:
                raise ValueError(f"an {self.kind} override needs a class")
            if self.off or self.level_percent is not None:
                raise ValueError(f"an {self.kind} override sets a class, not off/level_percent")
        elif (self.lighting_class is None) + (self.level_percent is None) + (not self.off) != 2:
            raise ValueError(
                "a maintenance override needs exactly one of class, level_percent, off"
            )
        if self.starts is not None and self.starts >= self.expires:
            raise ValueError("starts must be before expires")
        return self

    def active(self, t: datetime) -> bool:
        """Whether the override is in force at ``t`` (aware)."""
        return (self.starts is None or self.starts <= t) and t < self.expires


class Event(CalendarConditions):
    """A planned or recurring event (a Saturday market in December, a football match): on the
    nights its calendar conditions hold, ``zones`` run ``class`` from ``from`` to ``to``
    (local; ``dusk``/``dawn`` with offsets allowed), with the priority of an event override.
    With no condition it happens every night; ``dates`` with ``YYYY-MM-DD`` make it one-off."""

    id: str = Field(min_length=1)
    zones: list[str] = Field(min_length=1)
    lighting_class: Class = Field(alias="class")
    start: Start = Field(alias="from")
    end: Start = Field(alias="to")

    @property
    def rule(self) -> CalendarRule:
        """The event's conditions as a calendar rule (its profile name unused)."""
        return CalendarRule(profile="", weekdays=self.weekdays, dates=self.dates,
                            public_holiday=self.public_holiday,
                            before_public_holiday=self.before_public_holiday,
                            special_nights=self.special_nights)  # fmt: skip


class Strategy(_Model):
    """A validated lighting strategy. Build it with :func:`load_strategy`."""

    site: Site
    switching: Switching = Switching()
    profiles: dict[str, Profile] = Field(min_length=1)
    calendar: list[CalendarRule] = []
    calendars: dict[str, list[CalendarRule]] = {}
    zones: dict[str, Zone] = Field(min_length=1)
    inventory: str | None = None
    luminaires: list[Luminaire] = []
    overrides: list[Override] = []
    events: list[Event] = []

    def zone_calendar(self, zone: str) -> list[CalendarRule]:
        """The calendar rules ``zone`` runs (its named calendar, else the shared one)."""
        name = self.zones[zone].calendar
        return self.calendar if name is None else self.calendars[name]

    def zone_switching(self, zone: str) -> EffectiveSwitching:
        """The switching ``zone`` runs: the site's with the zone's own keys on top."""
        key = ("switching", zone)
        got = self._cache.get(key)
        if got is None:
            sw, own = self.switching, self.zones[zone].switching
            fields = {
                k: getattr(sw, k)
                for k in ("sun_elevation_deg", "on_offset_min", "off_offset_min",
                          "on_not_before", "on_not_after", "off_not_before", "off_not_after")
            }  # fmt: skip
            if own is not None:
                fields.update(
                    {k: getattr(own, k) for k in fields if getattr(own, k) is not None}
                )
                fields["always_lit"] = own.always_lit
            got = self._cache[key] = EffectiveSwitching(**fields)
        return got

    def site_switching(self) -> EffectiveSwitching:
        """The site's own switching (what "all-on dusk to dawn" means)."""
        sw = self.switching
        return EffectiveSwitching(
            sw.sun_elevation_deg, sw.on_offset_min, sw.off_offset_min, sw.on_not_before,
            sw.on_not_after, sw.off_not_before, sw.off_not_after,
        )  # fmt: skip

    _index: dict[str, Luminaire] = PrivateAttr(default_factory=dict)
    _cache: dict[Any, Any] = PrivateAttr(default_factory=dict)
    _warnings: list[Problem] = PrivateAttr(default_factory=list)

    @property
    def warnings(self) -> list[Problem]:
        """What loads but does not run as it reads (e.g. a class below the safety floor)."""
        return list(self._warnings)

    def model_post_init(self, context: Any, /) -> None:
        """Index luminaires by id."""
        self._index.update((lum.id, lum) for lum in self.luminaires)

    def model_copy(
        self, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> Strategy:
        """A copy with ``update`` applied; its caches start empty (night plans depend on the
        zones' calendars, switching and events, which an update may change)."""
        c = super().model_copy(update=update, deep=deep)
        private = c.__pydantic_private__
        assert private is not None
        private["_cache"], private["_index"] = {}, {}
        private["_warnings"] = list(self._warnings)
        c.model_post_init(None)
        return c

    def luminaire(self, luminaire_id: str) -> Luminaire:
        """The luminaire with ``luminaire_id``; ``KeyError`` naming it otherwise."""
        try:
            return self._index[luminaire_id]
        except KeyError:
            raise KeyError(f"no luminaire {luminaire_id!r} in strategy {self.site.name}") from None

    def zone_path(self, zone: str) -> list[Luminaire]:
        """The zone's luminaires ordered along its path (position, then id)."""
        key = ("path", zone)
        if key not in self._cache:
            lums = [lum for lum in self.luminaires if lum.zone == zone]
            self._cache[key] = sorted(lums, key=lambda lum: (lum.position_m, lum.id))
        return self._cache[key]

    def gateways(self) -> list[str]:
        """Gateway ids in the inventory, sorted."""
        return sorted({lum.gateway for lum in self.luminaires})

    def with_overrides(self, overrides: Iterable[Override]) -> Strategy:
        """A copy whose planned overrides are replaced by ``overrides``."""
        return self.model_copy(update={"overrides": list(overrides)})


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in a strategy: the file, the key path and the reason."""

    file: str
    path: str
    reason: str

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.path}: {self.reason}"
            if self.path
            else f"{self.file}: {self.reason}"
        )


class StrategyError(ValueError):
    """A strategy that cannot be used; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        n = len(problems)
        super().__init__(
            f"{n} problem{'s' * (n != 1)} in strategy:\n" + "\n".join(map(str, problems))
        )


def _loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _reason(err: ErrorDetails) -> str:
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if err["type"] == "extra_forbidden":
        return "unknown key"
    return msg


def _pydantic_problems(file: str, e: ValidationError, prefix: str = "") -> list[Problem]:
    out = []
    for err in e.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        path = _loc(loc)
        if prefix:
            path = prefix + ("." + path if path and not path.startswith("[") else path)
        out.append(Problem(file, path, _reason(err)))
    return out


INVENTORY_FIELDS = tuple(Luminaire.model_fields)
REQUIRED_COLUMNS = tuple(n for n, f in Luminaire.model_fields.items() if f.is_required())


def decode_text(data: bytes) -> str:
    """UTF-8 text (a BOM, as Excel writes, is dropped); ``ValueError`` saying where it is not."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        kind = "binary" if b"\0" in data[:4096] else "not UTF-8 text"
        raise ValueError(
            f"line {line}: {kind} (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "save the file as UTF-8"
        ) from None


def _read_inventory(
    path: Path, display: str
) -> tuple[list[dict[str, Any]], list[str], list[Problem]]:
    """Rows (as dicts), their locations, and problems reading the file itself."""
    try:
        text = decode_text(path.read_bytes())
    except OSError as e:
        return [], [], [Problem(display, "", f"cannot read inventory: {e.strerror}")]
    except ValueError as e:
        return [], [], [Problem(display, "", str(e))]
    if path.suffix.lower() in (".geojson", ".json"):
        try:
            doc = json.loads(text)
            feats = doc["features"]
            rows = [dict(f["properties"]) for f in feats]
        except (ValueError, KeyError, TypeError) as e:
            return [], [], [Problem(display, "", f"not a GeoJSON FeatureCollection ({e})")]
        return rows, [f"features[{i}].properties" for i in range(len(rows))], []
    lines = text.splitlines()
    header = lines[0] if lines else ""
    # Excel in a Swedish locale saves "CSV" with semicolons: take the separator the header uses
    delimiter = max(",;\t", key=header.count)
    reader = csv.DictReader(lines, delimiter=delimiter)
    names = [n.strip() for n in reader.fieldnames or []]
    reader.fieldnames = names
    missing = [f for f in INVENTORY_FIELDS if f in REQUIRED_COLUMNS and f not in names]
    if missing:
        return [], [], [Problem(display, "line 1", f"missing column(s): {', '.join(missing)} "
                                f"(header: {header[:80]!r}; separate columns by , or ;)")]
    rows = []
    for row in reader:
        rows.append({k: v for k, v in row.items() if k is not None and v not in ("", None)})
    return rows, [f"line {i + 2}" for i in range(len(rows))], []


def _cross_check(
    s: Strategy, file: str, where: dict[int, tuple[str, str]], invalid: frozenset[str] = frozenset()
) -> list[Problem]:
    """References between sections; ``where[i]`` locates luminaire i (file, path).

    ``invalid`` names zones and profiles that exist but failed validation (already reported):
    references to them are not reported again as missing.
    """
    out: list[Problem] = []

    def lum_loc(i: int, key: str) -> tuple[str, str]:
        f, p = where.get(i, (file, f"luminaires[{i}]"))
        return f, f"{p}.{key}" if not p.startswith("line") else f"{p}: {key}"

    calendars = {"calendar": s.calendar} | {f"calendars.{k}": v for k, v in s.calendars.items()}
    for where_c, rules in calendars.items():
        for i, rule in enumerate(rules):
            if rule.profile not in s.profiles and rule.profile not in invalid:
                out.append(Problem(file, f"{where_c}[{i}].profile", f"no profile {rule.profile!r}"))
        if rules and not rules[-1].unconditional:
            out.append(Problem(file, f"{where_c}[{len(rules) - 1}]",
                               "the last rule must have no conditions, so every night has a "
                               "profile"))  # fmt: skip
    lux = s.switching.lux is not None
    for zname, z in s.zones.items():
        if z.calendar is not None and z.calendar not in s.calendars:
            if z.calendar not in invalid:
                out.append(Problem(file, f"zones.{zname}.calendar", f"no calendar {z.calendar!r}"
                                   f" (known: {', '.join(s.calendars) or 'none'})"))  # fmt: skip
            continue
        rules = s.calendar if z.calendar is None else s.calendars[z.calendar]
        if z.calendar is None and not s.calendar and "calendar" not in invalid:
            out.append(Problem(file, f"zones.{zname}", "no calendar: add [[calendar]] rules or "
                               "name one of [calendars] with calendar = NAME"))  # fmt: skip
        if lux and z.switching is not None:
            out.append(Problem(file, f"zones.{zname}.switching", "not possible with lux "
                               "switching ([switching.lux]): the sensor switches every "
                               "zone"))  # fmt: skip
        users: dict[str, str] = {}
        for rule in rules:
            prof = s.profiles.get(rule.profile)
            for per in prof.periods if prof else []:
                users.setdefault(per.name, rule.profile)
        for period, prof_name in users.items():
            if period not in z.classes:
                out.append(Problem(file, f"zones.{zname}.classes",
                                   f"no class for period {period!r} (used by profile "
                                   f"{prof_name!r})"))  # fmt: skip
        out += _adaptive_problems(file, zname, z)
        series = z.series
        named: list[tuple[str, LightingClass | Level]] = [
            (f"classes.{k}", c) for k, c in z.classes.items()
        ]
        if z.presence:
            named.append(("presence.boost", z.presence.boost))
        for key, c in named:
            if isinstance(c, LightingClass) and c.series != series:
                what = (
                    f"the safety floor {z.safety_floor}" if z.safety_floor else "its other classes"
                )
                out.append(Problem(file, f"zones.{zname}.{key}",
                                   f"{c} is not in the {series} series of {what}"))  # fmt: skip
    for i, ev in enumerate(s.events):
        for zn in ev.zones:
            zz = s.zones.get(zn)
            if zz is None:
                if zn not in invalid:
                    out.append(Problem(file, f"events[{i}].zones", f"no zone {zn!r}"))
            elif (ser := zone_series(s, zn)) is not None and ev.lighting_class.series != ser:
                out.append(Problem(file, f"events[{i}].class", f"{ev.lighting_class} does not "
                                   f"fit zone {zn}'s {ser} classes"))  # fmt: skip
    seen_ids: dict[str, int] = {}
    addresses: dict[tuple[str, str, int], str] = {}
    groups: dict[tuple[str, str, int], tuple[str, str, str]] = {}
    for i, lum in enumerate(s.luminaires):
        if lum.id in seen_ids:
            out.append(Problem(*lum_loc(i, "id"), f"duplicate luminaire id {lum.id!r}"))
        seen_ids[lum.id] = i
        lum_zone = s.zones.get(lum.zone)
        if lum_zone is None:
            if lum.zone not in invalid:
                out.append(Problem(*lum_loc(i, "zone"), f"no zone {lum.zone!r}"))
        elif lum_zone.series is not None and lum.design_class.series != lum_zone.series:
            out.append(
                Problem(
                    *lum_loc(i, "design_class"),
                    f"{lum.design_class} cannot deliver zone {lum.zone}'s {lum_zone.series} "
                    "classes",
                )
            )
        addr = (lum.gateway, lum.bus, lum.short_address)
        if addr in addresses:
            out.append(
                Problem(
                    *lum_loc(i, "short_address"),
                    f"{lum.short_address} on {lum.gateway}/{lum.bus} is also "
                    f"luminaire {addresses[addr]!r}",
                )
            )
        addresses.setdefault(addr, lum.id)
        if lum.group is not None:
            g = (lum.gateway, lum.bus, lum.group)
            mine = (lum.zone, str(lum.design_class), lum.id)
            first = groups.setdefault(g, mine)
            if first[:2] != mine[:2]:
                out.append(
                    Problem(
                        *lum_loc(i, "group"),
                        f"group {lum.group} on {lum.gateway}/{lum.bus} mixes zone/design "
                        f"class {mine[0]}/{mine[1]} with {first[0]}/{first[1]} "
                        f"(luminaire {first[2]!r}); one group, one zone and class",
                    )
                )
    return out


def _adaptive_problems(file: str, zname: str, z: Zone) -> list[Problem]:
    """An adaptive rule needs periods with EN 13201 classes to step down."""
    a = z.adaptive
    if a is None:
        return []
    classed = [k for k, c in z.classes.items() if isinstance(c, LightingClass)]
    path = f"zones.{zname}.adaptive"
    if a.periods is None:
        if classed:
            return []
        return [Problem(file, path, "no period has an EN 13201 class to step down")]
    out = []
    for i, p in enumerate(a.periods):
        if p not in z.classes:
            out.append(Problem(file, f"{path}.periods[{i}]", f"no period {p!r} in classes "
                               f"(periods: {', '.join(z.classes)})"))  # fmt: skip
        elif p not in classed:
            out.append(Problem(file, f"{path}.periods[{i}]", f"{p} sets a level, not a class: "
                               "adaptation steps EN 13201 classes"))  # fmt: skip
    return out


def _reference_problems(
    s: Strategy, doc: dict[str, Any], file: str, invalid: frozenset[str]
) -> list[Problem]:
    """References from calendar rules and overrides, valid or not, so that one run of ``check``
    reports a broken override's unknown zone next to its own error."""
    out: list[Problem] = []
    rules = doc.get("calendar")
    for i, raw in enumerate(rules if isinstance(rules, list) else []):
        if _valid(CalendarRule, raw) is None and isinstance(raw, dict):
            name = raw.get("profile")
            if isinstance(name, str) and name not in s.profiles and name not in invalid:
                out.append(Problem(file, f"calendar[{i}].profile", f"no profile {name!r}"))
    ovs = doc.get("overrides")
    for i, raw in enumerate(ovs if isinstance(ovs, list) else []):
        path = f"overrides[{i}]"
        ov = _valid(Override, raw)
        if ov is not None:
            out += override_problems(s, ov, file, path, invalid)
            continue
        if not isinstance(raw, dict):
            continue
        zones, lums = raw.get("zones"), raw.get("luminaires")
        for z in zones if isinstance(zones, list) else []:
            if isinstance(z, str) and z not in s.zones and z not in invalid:
                out.append(Problem(file, f"{path}.zones", f"no zone {z!r}"))
        for lid in lums if isinstance(lums, list) else []:
            if isinstance(lid, str) and lid not in s._index:
                out.append(Problem(file, f"{path}.luminaires", f"no luminaire {lid!r}"))
    return out


def _advice(s: Strategy, file: str) -> list[Problem]:
    """Warnings: the strategy runs, but not as it reads (the floor or the design class wins)."""
    from lykta.strategy.dali_curve import arc_level_at_least
    from lykta.strategy.evaluator import class_level

    out: list[Problem] = []
    designs: dict[str, dict[str, list[str]]] = {}
    for lum in s.luminaires:
        designs.setdefault(lum.zone, {}).setdefault(lum.design_class.name, []).append(lum.id)
    for zname, z in s.zones.items():
        named: list[tuple[str, LightingClass | Level]] = [
            (f"zones.{zname}.classes.{k}", c) for k, c in z.classes.items()
        ]
        if z.presence:
            named.append((f"zones.{zname}.presence.boost", z.presence.boost))
        named += [(f"events[{i}].class", ev.lighting_class)
                  for i, ev in enumerate(s.events) if zname in ev.zones]  # fmt: skip
        if z.adaptive is not None and z.safety_route:
            out.append(Problem(file, f"zones.{zname}.adaptive", "a safety route that dims when "
                               "few people walk it: that is when they feel least safe (the "
                               "floor still holds)"))  # fmt: skip
        floor = z.safety_floor
        for key, c in named:
            if isinstance(c, Level):
                if floor is None:
                    continue
                if c.off:
                    out.append(Problem(file, key, f"off in a zone with safety floor {floor}: "
                                       "the floor applies while lit (no floor: part-night "
                                       "off)"))  # fmt: skip
                    continue
                for d, ids in sorted(designs.get(zname, {}).items()):
                    if d[0] == floor.series and arc_level_at_least(c.percent) < class_level(
                        LightingClass(d), floor
                    ):
                        out.append(Problem(file, key, f"{c} is below the safety floor {floor} "
                                           f"of {len(ids)} {d} luminaire(s): the floor applies "
                                           "while lit"))  # fmt: skip
                continue
            if c.series != zone_series(s, zname):
                continue  # an error already
            if floor is not None and c.value < floor.value:
                out.append(Problem(file, key, f"{c} is below the safety floor {floor}: "
                                   f"the floor applies while lit"))  # fmt: skip
            for d, ids in sorted(designs.get(zname, {}).items()):
                if d[0] == c.series and c.value > LightingClass(d).value:
                    out.append(Problem(
                        file, key, f"{c} is brighter than design class {d} of {len(ids)} "
                        f"luminaire(s) (e.g. {ids[0]}): at 100 % they give {d}"))  # fmt: skip
    return out


def zone_series(strategy: Strategy, zone: str) -> str | None:
    """The EN 13201 series a zone's luminaires deliver: its classes', else its design classes'
    (``None``: plain levels and no luminaires)."""
    z = strategy.zones[zone]
    if z.series is not None:
        return z.series
    lum = next((x for x in strategy.luminaires if x.zone == zone), None)
    return lum.design_class.series if lum else None


def override_problems(
    strategy: Strategy,
    ov: Override,
    file: str = "<override>",
    path: str = "override",
    invalid: frozenset[str] = frozenset(),
) -> list[Problem]:
    """Problems of an override against ``strategy``: unknown zones/luminaires, a class of
    another series than a zone it names. The controller checks runtime overrides with this."""
    out: list[Problem] = []
    zones = list(ov.zones)
    for z in ov.zones:
        if z not in strategy.zones:
            if z not in invalid:
                out.append(Problem(file, f"{path}.zones", f"no zone {z!r}"))
            zones.remove(z)
    for lid in ov.luminaires:
        lum = strategy._index.get(lid)
        if lum is None:
            out.append(Problem(file, f"{path}.luminaires", f"no luminaire {lid!r}"))
        else:
            zones.append(lum.zone)
    if ov.lighting_class is not None:
        for z in dict.fromkeys(zones):
            series = zone_series(strategy, z)
            if series is not None and ov.lighting_class.series != series:
                out.append(Problem(file, f"{path}.class", f"{ov.lighting_class} does not fit zone "
                                   f"{z}'s {series} classes"))  # fmt: skip
    return out


def _valid(model: type[_M], value: Any) -> _M | None:
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def _list(x: Any) -> list[Any]:
    return list(x) if isinstance(x, list) else []


def _partial(doc: dict[str, Any]) -> tuple[Strategy, frozenset[str]]:
    """A strategy of the entries that validate on their own (its problems are reported
    elsewhere), and the names of zones and profiles that do not."""
    invalid: set[str] = set()

    def entries(model: type[_M], section: Any) -> dict[str, _M]:
        out = {}
        for k, v in (section if isinstance(section, dict) else {}).items():
            m = _valid(model, v)
            if m is None:
                invalid.add(k)
            else:
                out[k] = m
        return out

    profiles = entries(Profile, doc.get("profiles"))
    zones = entries(Zone, doc.get("zones"))
    rules = [_valid(CalendarRule, r) for r in _list(doc.get("calendar"))]
    if not all(rules):
        invalid.add("calendar")
    calendars: dict[str, list[CalendarRule]] = {}
    raw_cals = doc.get("calendars")
    for name, raw in (raw_cals if isinstance(raw_cals, dict) else {}).items():
        got = [_valid(CalendarRule, r) for r in _list(raw)]
        if all(got) and got:
            calendars[name] = [r for r in got if r is not None]
        else:
            invalid.add(name)
    overrides = [_valid(Override, o) for o in _list(doc.get("overrides"))]
    events = [_valid(Event, e) for e in _list(doc.get("events"))]
    site = _valid(Site, doc.get("site")) or Site.model_construct(
        name="?", latitude=0.0, longitude=0.0, timezone="UTC"
    )
    strategy = Strategy.model_construct(
        site=site,
        switching=Switching(),
        profiles=profiles,
        calendar=[r for r in rules if r is not None] if all(rules) else [],
        calendars=calendars,
        zones=zones,
        events=[e for e in events if e is not None] if all(events) else [],
        inventory=None,
        luminaires=[],
        overrides=[o for o in overrides if o is not None],
    )
    return strategy, frozenset(invalid)


def parse_strategy(
    doc: dict[str, Any], file: str = "<strategy>", base: Path | None = None
) -> Strategy:
    """Validate a strategy document (already parsed TOML); see :func:`load_strategy`."""
    problems: list[Problem] = []
    doc = dict(doc)
    where: dict[int, tuple[str, str]] = {}
    inline = _list(doc.get("luminaires"))
    if doc.get("luminaires") is not None and not isinstance(doc.get("luminaires"), list):
        problems.append(Problem(file, "luminaires", "must be an array of tables ([[luminaires]])"))
    for i in range(len(inline)):
        where[i] = (file, f"luminaires[{i}]")
    inv_name = doc.get("inventory")
    lum_problems: list[Problem] = []
    if isinstance(inv_name, str):
        inv_path = (base or Path(".")) / inv_name
        rows, locs, read_problems = _read_inventory(inv_path, inv_name)
        problems += read_problems
        for row, loc in zip(rows, locs, strict=True):
            where[len(inline)] = (inv_name, loc)
            inline.append(row)
    doc["luminaires"] = []
    # Validate luminaires one by one so each problem names its own file and row.
    good: list[Luminaire] = []
    good_where: dict[int, tuple[str, str]] = {}
    for i, row in enumerate(inline):
        try:
            lum = Luminaire.model_validate(row)
        except ValidationError as e:
            f, p = where[i]
            for pr in _pydantic_problems(f, e):
                if not pr.path:
                    path = p
                else:
                    path = f"{p}: {pr.path}" if p.startswith("line") else f"{p}.{pr.path}"
                lum_problems.append(Problem(f, path, pr.reason))
            continue
        good_where[len(good)] = where[i]
        good.append(lum)
    invalid: frozenset[str] = frozenset()
    try:
        strategy = Strategy.model_validate(doc)
    except ValidationError as e:
        problems += _pydantic_problems(file, e)
        # Keep going with what did validate, so one run reports the references too.
        strategy, invalid = _partial(doc)
    strategy = strategy.model_copy(update={"luminaires": good})
    strategy.model_post_init(None)
    problems += lum_problems
    problems += _cross_check(strategy, file, good_where, invalid)
    problems += _reference_problems(strategy, doc, file, invalid)
    if problems:
        raise StrategyError(problems)
    strategy._warnings.extend(_advice(strategy, file))
    return strategy


def load_strategy(path: str | Path) -> Strategy:
    """Load and validate the strategy file at ``path`` (TOML) and the inventory it names.

    Raises :class:`StrategyError` listing every problem (file, key path, reason).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise StrategyError([Problem(str(p), "", f"cannot read: {e.strerror}")]) from None
    return parse_strategy(parse_toml(data, str(p)), p.name, p.parent)


def parse_toml(data: bytes, file: str = "<strategy>") -> dict[str, Any]:
    """The TOML document in ``data``; :class:`StrategyError` (never a traceback) otherwise."""
    if len(data) > MAX_TOML_BYTES:
        raise StrategyError([Problem(file, "", f"{len(data)} bytes is too large for a strategy")])
    try:
        return tomllib.loads(decode_text(data))
    except tomllib.TOMLDecodeError as e:
        raise StrategyError([Problem(file, "", f"not valid TOML: {e}")]) from None
    except RecursionError:
        raise StrategyError([Problem(file, "", "not valid TOML: nested too deeply")]) from None
    except ValueError as e:
        raise StrategyError([Problem(file, "", str(e))]) from None
