"""Faults and alarms: pure rules with raise/clear hysteresis (no I/O, no clock).

The :class:`AlarmEngine` is fed what ingest decodes (telemetry batches, gateway births and
deaths, gateway events) and the program distribution's expectations, plus ``tick(now_ms)``
for the rules that fire on silence (a luminaire that stopped answering, program drift). It
returns :class:`AlarmChange` records; the service stores them in the registry, writes them to
InfluxDB (:func:`controller.datamodel.alarm_lines`) and publishes them.

Every alarm is identified by ``(kind, gateway, source)`` — ``source`` is the luminaire, meter
or gateway it is about, ``gateway`` the gateway it belongs to (two cabinets may both have a
``meter-1``) — and has a :class:`Condition` that changes state only with hysteresis:

- a measured value is judged against a :class:`Band` with separate raise and clear thresholds;
  a value between them is no evidence either way, so a value wandering inside the band can never
  make an alarm flap;
- a :class:`Debounce` needs ``raise_after`` consecutive bad observations to raise and
  ``clear_after`` consecutive good ones to clear.

Priority comes from the zone (:func:`zone_priority`): safety routes and exposed places are
priority 1 and are dealt with first.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from controller.datamodel import alarm_lines
from lykta.config import Strict
from lykta.contract import Basis, Event, EventKind, OfflineReason, State, TelemetryBatch
from lykta.strategy.astronomy import from_ms, sun_elevation
from lykta.strategy.dali_curve import arc_level_to_percent
from lykta.strategy.model import Strategy, ZoneKind

# IEC 62386-102 status byte (QUERY STATUS): bit 0 control gear failure, bit 1 lamp failure.
STATUS_GEAR_FAILURE = 0x01
STATUS_LAMP_FAILURE = 0x02


class AlarmKind(enum.StrEnum):
    """What is wrong."""

    LAMP_FAILURE = "lamp_failure"
    NOT_RESPONDING = "luminaire_not_responding"
    GATEWAY_OFFLINE = "gateway_offline"
    DAY_BURNING = "day_burning"
    ENERGY_ANOMALY = "energy_anomaly"
    SUPPLY_LOSS = "supply_loss"
    PROGRAM_DRIFT = "program_drift"
    UNKNOWN_GATEWAY = "unknown_gateway"  # messages from a gateway the registry does not know
    # the broker's ACL file does not grant what the strategy's corridors need (one per site)
    NEIGHBOUR_ACL_STALE = "neighbour_acl_stale"


# -- hysteresis ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Band:
    """Raise/clear thresholds of a measured value.

    ``rising=True``: bad at or above ``raise_at``, good at or below ``clear_at`` (so
    ``clear_at < raise_at``). ``rising=False``: bad at or below ``raise_at``, good at or above
    ``clear_at`` (``clear_at > raise_at``) — e.g. a supply voltage near zero.
    """

    raise_at: float
    clear_at: float
    rising: bool = True

    def __post_init__(self) -> None:
        if (self.clear_at >= self.raise_at) if self.rising else (self.clear_at <= self.raise_at):
            raise ValueError(
                f"band raise_at={self.raise_at} clear_at={self.clear_at}: clear must lie "
                f"{'below' if self.rising else 'above'} raise (hysteresis)"
            )

    def judge(self, value: float) -> bool | None:
        """True (bad), False (good) or None (inside the band: no evidence)."""
        if self.rising:
            if value >= self.raise_at:
                return True
            return False if value <= self.clear_at else None
        if value <= self.raise_at:
            return True
        return False if value >= self.clear_at else None


class Debounce(Strict):
    """Consecutive observations needed to change an alarm's state."""

    raise_after: int = Field(2, ge=1)
    clear_after: int = Field(2, ge=1)


@dataclass(slots=True)
class Condition:
    """The state of one alarm: active or not, and the run of observations against it."""

    active: bool = False
    streak: int = 0
    # Fixed when the alarm is raised, so its clear lands in the same InfluxDB series (zone and
    # priority are tags) even if the site map arrived or changed in between.
    zone: str | None = None
    priority: int | None = None
    raised_ts: int | None = None
    """When it was raised (``None``: restored after a restart, so unknown)."""

    def step(self, verdict: bool | None, debounce: Debounce) -> bool:
        """Apply one observation (True bad, False good, None no evidence); True if the alarm
        was raised or cleared by it. No evidence breaks a run (the run must be consecutive)."""
        if verdict is None or verdict == self.active:
            self.streak = 0
            return False
        self.streak += 1
        if self.streak >= (debounce.raise_after if verdict else debounce.clear_after):
            self.active, self.streak = verdict, 0
            return True
        return False

    def force(self, active: bool) -> bool:
        """Set the state from a decisive report (a gateway event); True if it changed."""
        self.streak = 0
        if self.active == active:
            return False
        self.active = active
        return True


# -- rules ---------------------------------------------------------------------------------


class AlarmRules(Strict):
    """Thresholds and debouncing of every rule (the ``[alarms]`` section of controller.toml)."""

    lamp_failure: Debounce = Debounce(raise_after=2, clear_after=2)
    not_responding_after_s: float = Field(
        180.0, gt=0, description="no reading from a luminaire of an online gateway this long"
    )
    day_burning_sun_deg: float = Field(6.0, description="raise: lit with the sun this high")
    day_burning_clear_deg: float = Field(3.0, description="clear: sun back below this")
    day_burning: Debounce = Debounce(raise_after=3, clear_after=2)
    energy_deviation: float = Field(
        0.5, gt=0, description="raise: |measured / expected - 1| at least this"
    )
    energy_clear_deviation: float = Field(0.2, ge=0, description="clear: deviation back below")
    energy_tolerance_w: float = Field(
        3.0, ge=0, description="absolute slack (standby and driver losses) added to expected"
    )
    energy_min_level: int = Field(
        170, ge=1, le=254, description="judge power only at or above this arc level (~10 %)"
    )
    energy: Debounce = Debounce(raise_after=3, clear_after=3)
    supply_loss_v: float = Field(20.0, ge=0, description="raise: every phase at or below")
    supply_ok_v: float = Field(180.0, gt=0, description="clear: some phase at or above")
    supply: Debounce = Debounce(raise_after=2, clear_after=2)
    drift_grace_s: float = Field(
        120.0, ge=0, description="time a gateway has to report a newly published program"
    )

    def day_band(self) -> Band:
        """Sun elevation band of day-burning."""
        return Band(self.day_burning_sun_deg, self.day_burning_clear_deg)

    def energy_band(self) -> Band:
        """Relative power deviation band of the energy anomaly."""
        return Band(self.energy_deviation, self.energy_clear_deviation)

    def supply_band(self) -> Band:
        """Voltage band of cabinet supply loss (falling: bad near zero)."""
        return Band(self.supply_loss_v, self.supply_ok_v, rising=False)


def zone_priority(kind: ZoneKind | str, safety_route: bool) -> int:
    """1 for safety routes and exposed places, 2 for other places people walk or cross,
    3 for the rest (motorised and residential streets)."""
    kind = ZoneKind(kind)
    if safety_route or kind is ZoneKind.EXPOSED_PLACE:
        return 1
    if kind in (
        ZoneKind.PEDESTRIAN_CYCLE_PATH,
        ZoneKind.PARK,
        ZoneKind.BUS_STOP,
        ZoneKind.CONFLICT_AREA,
    ):
        return 2
    return 3


LOWEST_PRIORITY = 3


@dataclass(frozen=True, slots=True)
class LuminaireInfo:
    """What the alarm rules need to know about a luminaire (from the registry/strategy)."""

    gateway: str
    zone: str
    rated_power_w: float
    priority: int
    always_lit: bool = False
    """Lit day and night on purpose (a tunnel, an underpass): never day-burning."""


@dataclass(slots=True)
class SiteMap:
    """Luminaires, zone priorities and the site's position, for judging readings."""

    latitude: float = 0.0
    longitude: float = 0.0
    luminaires: dict[str, LuminaireInfo] = field(default_factory=dict)
    gateway_priority: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_strategy(cls, strategy: Strategy) -> SiteMap:
        """Build from a validated strategy (inventory + zones)."""
        prio = {name: zone_priority(z.kind, z.safety_route) for name, z in strategy.zones.items()}
        lums = {
            lum.id: LuminaireInfo(
                lum.gateway,
                lum.zone,
                lum.rated_power_w,
                prio[lum.zone],
                strategy.zone_switching(lum.zone).always_lit,
            )
            for lum in strategy.luminaires
        }
        gw: dict[str, int] = {}
        for info in lums.values():
            gw[info.gateway] = min(gw.get(info.gateway, LOWEST_PRIORITY), info.priority)
        return cls(strategy.site.latitude, strategy.site.longitude, lums, gw)


AlarmKey = tuple[AlarmKind, str | None, str]
"""(kind, gateway, source): one alarm."""


@dataclass(frozen=True, slots=True)
class OpenAlarm:
    """An alarm the registry holds open (restored into the engine after a restart)."""

    kind: str
    gateway: str | None
    source: str
    zone: str | None = None
    priority: int | None = None


@dataclass(frozen=True, slots=True)
class AlarmChange:
    """An alarm raised (``active``) or cleared at ``ts``."""

    kind: AlarmKind
    source: str
    gateway: str | None
    zone: str | None
    priority: int
    active: bool
    ts: int
    message: str
    open_s: float | None = None
    """On a clear: how long the alarm was open, s (``None``: unknown, raised before a
    restart)."""

    def lines(self, site: str) -> list[str]:
        """The InfluxDB ``alarm`` line of this change."""
        return alarm_lines(
            site,
            kind=self.kind.value,
            source=self.source,
            priority=self.priority,
            active=self.active,
            ts=self.ts,
            gateway=self.gateway,
            zone=self.zone,
            message=self.message,
            open_s=self.open_s,
        )


def expected_power_w(rated_power_w: float, level: int) -> float:
    """Power a healthy luminaire draws at arc ``level`` (light output tracks power)."""
    return rated_power_w * arc_level_to_percent(level) / 100.0


def supply_voltage(values: dict[str, float]) -> float | None:
    """The highest phase voltage among a meter's ``voltage*`` fields, or None if it has none."""
    volts = [v for k, v in values.items() if k.startswith("voltage") and math.isfinite(v)]
    return max(volts) if volts else None


_FAILURE_BITS = STATUS_LAMP_FAILURE | STATUS_GEAR_FAILURE
_PERCENT = [arc_level_to_percent(level) for level in range(255)]


def _lamp_message(active: bool, status: int) -> str:
    if not active:
        return "lamp working again"
    what = "lamp failure" if status & STATUS_LAMP_FAILURE else "control gear failure"
    return f"DALI status 0x{status:02x}: {what}"


def _day_message(active: bool, level: int, elev: float | None) -> str:
    if not active:
        return "off by day again" if elev is None or level == 0 else "sun low again"
    return f"lit at arc level {level} with the sun {elev:.1f}° above the horizon"


def _energy_message(active: bool, power: float, level: int, expected: float) -> str:
    return f"{power:.1f} W at arc level {level}, expected {expected:.1f} W" + (
        "" if active else " (normal again)"
    )


def _supply_message(active: bool, volts: float) -> str:
    return f"cabinet supply {volts:.0f} V" + ("" if active else " (restored)")


# -- the engine ----------------------------------------------------------------------------


class AlarmEngine:
    """Alarm state of one site. Feed it observations; it returns what was raised/cleared."""

    def __init__(self, rules: AlarmRules | None = None, site_map: SiteMap | None = None) -> None:
        self.rules = rules or AlarmRules()
        self.site_map = site_map or SiteMap()
        self.conditions: dict[AlarmKey, Condition] = {}
        self._sources: set[str] = set()  # sources with any condition (fast healthy path)
        self.last_seen: dict[str, int] = {}  # luminaire -> ts of its last reading
        self.online: dict[str, tuple[bool, int]] = {}  # gateway -> (online, since ms)
        self.reported_hash: dict[str, str | None] = {}
        self.expected_hash: dict[str, tuple[str, int]] = {}  # gateway -> (hash, published ms)
        self.exempt_until: dict[str, int] = {}  # luminaire -> ms (lit on purpose by day)
        self._sun: tuple[int, float] = (-1, 0.0)
        self._day = self.rules.day_band()
        self._energy = self.rules.energy_band()
        self._supply = self.rules.supply_band()

    # -- state -------------------------------------------------------------------------------

    def active(self) -> list[AlarmKey]:
        """Every active alarm as (kind, gateway, source)."""
        return [k for k, c in self.conditions.items() if c.active]

    def restore(self, active: Iterable[OpenAlarm]) -> None:
        """Mark alarms active that the registry holds open (after a restart), so they clear
        instead of being raised a second time, in the series they were raised in."""
        for a in active:
            c = self._cond(AlarmKind(a.kind), a.gateway, a.source)
            c.active, c.zone, c.priority = True, a.zone, a.priority

    def exempt(self, luminaires: Iterable[str], until_ms: int) -> None:
        """Do not judge day-burning of ``luminaires`` until ``until_ms`` (an incident or
        maintenance override lights them by day on purpose)."""
        for lid in luminaires:
            self.exempt_until[lid] = max(until_ms, self.exempt_until.get(lid, 0))

    def _cond(self, kind: AlarmKind, gateway: str | None, source: str) -> Condition:
        c = self.conditions.get((kind, gateway, source))
        if c is None:
            c = self.conditions[(kind, gateway, source)] = Condition()
            self._sources.add(source)
        return c

    def _change(
        self, kind: AlarmKind, source: str, gateway: str | None, ts: int, message: str,
        priority: int | None = None,
    ) -> AlarmChange:  # fmt: skip
        c = self.conditions[(kind, gateway, source)]
        if c.active or c.priority is None:  # a raise (or a clear of one raised elsewhere)
            info = self.site_map.luminaires.get(source)
            c.zone = info.zone if info else None
            if priority is not None:
                c.priority = priority
            elif info is not None:
                c.priority = info.priority
            else:
                gw = gateway or source
                c.priority = self.site_map.gateway_priority.get(gw, LOWEST_PRIORITY)
        open_s = None
        if c.active:
            c.raised_ts = ts
        elif c.raised_ts is not None:
            open_s, c.raised_ts = max(0.0, (ts - c.raised_ts) / 1000), None
        return AlarmChange(kind, source, gateway, c.zone, c.priority, c.active, ts, message,
                           open_s)  # fmt: skip

    def _force(
        self,
        out: list[AlarmChange],
        kind: AlarmKind,
        source: str,
        gateway: str | None,
        active: bool,
        ts: int,
        message: str,
        priority: int | None = None,
    ) -> None:
        if not active and (kind, gateway, source) not in self.conditions:
            return
        if self._cond(kind, gateway, source).force(active):
            out.append(self._change(kind, source, gateway, ts, message, priority))

    def _sun_elevation(self, ts: int) -> float:
        minute = ts // 60_000  # the sun moves < 0.25° a minute: one computation per minute
        if self._sun[0] != minute:
            m = self.site_map
            self._sun = (minute, sun_elevation(m.latitude, m.longitude, from_ms(minute * 60_000)))
        return self._sun[1]

    # -- observations ------------------------------------------------------------------------

    def on_telemetry(self, gateway: str, batch: TelemetryBatch) -> list[AlarmChange]:
        """Judge every reading of a telemetry batch.

        This runs for every reading ingest receives, so a healthy reading of a luminaire with
        no alarm history costs a few comparisons and dict lookups: a condition is only created
        by bad evidence, and messages are only formatted when an alarm changes.
        """
        out: list[AlarmChange] = []
        r = self.rules
        lums = self.site_map.luminaires
        conds = self.conditions
        seen = self.last_seen
        exempt = self.exempt_until
        min_level, tol = r.energy_min_level, r.energy_tolerance_w
        day, energy = self._day, self._energy
        judge = self._judge
        sources = self._sources
        for rd in batch.luminaires:
            lid, ts, level, status = rd.id, rd.ts, rd.level, rd.status
            if seen.get(lid, 0) < ts:
                seen[lid] = ts
            known = lid in sources
            if known and (AlarmKind.NOT_RESPONDING, gateway, lid) in conds:
                self._force(out, AlarmKind.NOT_RESPONDING, lid, gateway, False, ts,
                            "answers again")  # fmt: skip
            failed = bool(status & _FAILURE_BITS)
            # Healthy path first: no bad evidence and no condition -> no call at all.
            if failed or (known and (AlarmKind.LAMP_FAILURE, gateway, lid) in conds):
                judge(out, AlarmKind.LAMP_FAILURE, lid, gateway, failed, r.lamp_failure, ts,
                      _lamp_message, status)  # fmt: skip
            # day-burning: lit while the sun is well above the horizon
            if level > 0 and not failed and exempt.get(lid, 0) <= ts and not (
                (info := lums.get(lid)) is not None and info.always_lit
            ):
                elev = self._sun_elevation(ts)
                if elev > day.clear_at or (
                    known and (AlarmKind.DAY_BURNING, gateway, lid) in conds
                ):
                    judge(out, AlarmKind.DAY_BURNING, lid, gateway, day.judge(elev),
                          r.day_burning, ts, _day_message, level, elev)  # fmt: skip
            elif known and (AlarmKind.DAY_BURNING, gateway, lid) in conds:
                judge(out, AlarmKind.DAY_BURNING, lid, gateway, False, r.day_burning, ts,
                      _day_message, level, None)  # fmt: skip
            # energy anomaly: measured power vs what the level should draw (an absent or
            # estimated power is no evidence either way: the condition stays as it is)
            if (level >= min_level and not failed and rd.power_w is not None
                    and rd.basis is Basis.MEASURED):
                info = lums.get(lid)
                if info is not None:
                    exp = info.rated_power_w * _PERCENT[level] / 100.0
                    dev = max(0.0, abs(rd.power_w - exp) - tol) / exp
                    if dev > energy.clear_at or (
                        known and (AlarmKind.ENERGY_ANOMALY, gateway, lid) in conds
                    ):
                        judge(out, AlarmKind.ENERGY_ANOMALY, lid, gateway, energy.judge(dev),
                              r.energy, ts, _energy_message, rd.power_w, level, exp)  # fmt: skip
        for m in batch.meters:
            volts = supply_voltage(m.values)
            if volts is None:
                continue
            judge(out, AlarmKind.SUPPLY_LOSS, m.device, gateway, self._supply.judge(volts),
                  r.supply, m.ts, _supply_message, volts)  # fmt: skip
        return out

    def _judge(
        self,
        out: list[AlarmChange],
        kind: AlarmKind,
        source: str,
        gateway: str | None,
        verdict: bool | None,
        debounce: Debounce,
        ts: int,
        message: Callable[..., str],
        *args: Any,
    ) -> None:
        """Step the condition of (kind, gateway, source); on a change, record it with
        ``message(active, *args)``. No condition and no bad evidence: nothing to do."""
        c = self.conditions.get((kind, gateway, source))
        if c is None:
            if not verdict:
                return
            c = self._cond(kind, gateway, source)
        if c.step(verdict, debounce):
            out.append(self._change(kind, source, gateway, ts, message(c.active, *args)))

    def on_gateway(self, gateway: str, state: State, online: bool, ts: int) -> list[AlarmChange]:
        """A gateway's (current, not stale) birth or death."""
        out: list[AlarmChange] = []
        self.online[gateway] = (online, ts)
        # A planned stop says so (reason "shutdown"): not an outage, no alarm. An alarm already
        # open (the link was lost before) stays open until the gateway is back.
        if online or state.reason is not OfflineReason.SHUTDOWN:
            self._force(
                out,
                AlarmKind.GATEWAY_OFFLINE,
                gateway,
                gateway,
                not online,
                ts,
                "offline (connection lost)" if not online
                else f"back online (bdseq {state.bdseq})",
            )  # fmt: skip
        if online:
            self.reported_hash[gateway] = state.program_hash
            out += self._drift(gateway, ts)
        return out

    def on_unknown_gateway(self, gateway: str, ts: int) -> list[AlarmChange]:
        """Ingest rejected messages of ``gateway``: not in the registry. One alarm per id."""
        out: list[AlarmChange] = []
        self._force(out, AlarmKind.UNKNOWN_GATEWAY, gateway, gateway, True, ts,
                    "messages from a gateway not in the registry are dropped")  # fmt: skip
        return out

    def known_gateways(self, gateways: Iterable[str], ts: int) -> list[AlarmChange]:
        """Clear ``unknown_gateway`` of gateways the registry now knows."""
        out: list[AlarmChange] = []
        for gw in gateways:
            self._force(out, AlarmKind.UNKNOWN_GATEWAY, gw, gw, False, ts,
                        "now in the registry")  # fmt: skip
        return out

    def on_neighbour_acl(
        self, source: str, problem: str | None, gateways: Iterable[str], ts: int
    ) -> list[AlarmChange]:
        """The broker ACL check's verdict (``problem`` None: it grants what the strategy
        needs). One alarm per ``source`` (the site); it has the highest priority of the
        ``gateways`` whose corridors it stops, as their street is what goes dark."""
        out: list[AlarmChange] = []
        prios = [self.site_map.gateway_priority.get(g, LOWEST_PRIORITY) for g in gateways]
        self._force(out, AlarmKind.NEIGHBOUR_ACL_STALE, source, None, problem is not None, ts,
                    problem or "the broker ACL grants the strategy's presence neighbours again",
                    min(prios, default=LOWEST_PRIORITY))  # fmt: skip
        return out

    def on_event(self, gateway: str, event: Event) -> list[AlarmChange]:
        """Gateway events that decide an alarm (the gateway has debounced them already)."""
        out: list[AlarmChange] = []
        k, src, ts = event.kind, event.source, event.ts
        if k in (EventKind.LAMP_FAILURE, EventKind.LAMP_OK):
            failed = k is EventKind.LAMP_FAILURE
            msg = "lamp failure reported by the gateway" if failed else "lamp working again"
            self._force(out, AlarmKind.LAMP_FAILURE, src, gateway, failed, ts, msg)
        elif k in (EventKind.DALI_COMM_LOSS, EventKind.DALI_COMM_OK) and src in (
            self.site_map.luminaires
        ):
            lost = k is EventKind.DALI_COMM_LOSS
            msg = "no DALI answer" if lost else "answers again"
            self._force(out, AlarmKind.NOT_RESPONDING, src, gateway, lost, ts, msg)
        elif k is EventKind.PROGRAM_APPLIED and isinstance(event.detail.get("hash"), str):
            self.reported_hash[gateway] = event.detail["hash"]
            out += self._drift(gateway, ts)
        elif k is EventKind.PROGRAM_REJECTED:
            exp = self.expected_hash.get(gateway)
            if exp is not None and self.reported_hash.get(gateway) != exp[0]:
                # no need to wait for the grace time: the gateway said no (bad signature,
                # wrong site, expired)
                reason = event.detail.get("reason", "no reason given")
                self._force(out, AlarmKind.PROGRAM_DRIFT, gateway, gateway, True, ts,
                            f"gateway rejected the program: {reason}")  # fmt: skip
        return out

    def expect_program(self, gateway: str, program_hash: str, published_ms: int) -> None:
        """The program distribution published ``program_hash`` to ``gateway``."""
        self.expected_hash[gateway] = (program_hash, published_ms)

    def _drift(self, gateway: str, now_ms: int) -> list[AlarmChange]:
        out: list[AlarmChange] = []
        exp = self.expected_hash.get(gateway)
        online = self.online.get(gateway, (False, 0))[0]
        if exp is None or not online:
            return out
        reported = self.reported_hash.get(gateway)
        if reported == exp[0]:
            self._force(out, AlarmKind.PROGRAM_DRIFT, gateway, gateway, False, now_ms,
                        "runs the expected program")  # fmt: skip
        elif now_ms - exp[1] >= self.rules.drift_grace_s * 1000:
            self._force(
                out,
                AlarmKind.PROGRAM_DRIFT,
                gateway,
                gateway,
                True,
                now_ms,
                f"reports program {(reported or 'none')[:16]}, expected {exp[0][:16]}",
            )
        return out

    def tick(self, now_ms: int) -> list[AlarmChange]:
        """Rules that fire on silence: luminaires not responding, program drift."""
        out: list[AlarmChange] = []
        limit = self.rules.not_responding_after_s * 1000
        known = self.site_map.luminaires
        for lid in known.keys() | self.last_seen.keys():
            info = known.get(lid)
            gw = info.gateway if info else None
            if gw is None:
                continue
            online, since = self.online.get(gw, (False, 0))
            if not online:
                continue  # the gateway-offline alarm covers its luminaires
            seen = max(self.last_seen.get(lid, 0), since)
            if now_ms - seen >= limit:
                self._force(
                    out,
                    AlarmKind.NOT_RESPONDING,
                    lid,
                    gw,
                    True,
                    now_ms,
                    f"no reading for {(now_ms - seen) / 1000:.0f} s",
                )
        for gw in list(self.expected_hash):
            out += self._drift(gw, now_ms)
        return out
