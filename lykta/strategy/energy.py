"""Energy estimate of a strategy per zone and month, against all-on from dusk to dawn.

Power model of a luminaire at light output ``f`` (the DALI curve's output of an arc level):

- lamp on (``f`` > 0): ``driver_loss_w + (rated_power_w − driver_loss_w) × f × clo``, where
  ``clo`` is 1, or with a constant-light-output driver the lifetime average ``(1 + MF) / 2``
  of one that starts at the maintenance factor MF and rises to 100 % at end of life;
- off (level 0, by day or switched off): ``standby_w``.

Those inventory columns default to 0 / none, which is the plain ``rated × output`` model.
The baseline burns every luminaire at 100 % through the site's own lit windows (dusk to dawn
by ``[switching]``) and on standby otherwise. Planned overrides and calendar events count, by
the same evaluator the compiler uses, integrated exactly between the instants where a level can
change. Presence boosts and fades are left out (boosts depend on traffic; a fade lasts
seconds against hours); adaptive classes count only for an assumed steady ``flow_per_h``
(the gateway's real counts vary). A night counts in the month of its evening.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from lykta.strategy.adaptive import zone_steps
from lykta.strategy.dali_curve import arc_level_to_percent
from lykta.strategy.en13201 import LightingClass
from lykta.strategy.evaluator import unit_target
from lykta.strategy.model import Luminaire, Strategy
from lykta.strategy.schedule import change_instants, night_plan
from lykta.strategy.wallclock import night_of
from lykta.strategy.wallclock import zone as time_zone


@dataclass(slots=True)
class ZoneEnergy:
    """Energy of one zone over the period."""

    zone: str
    luminaires: int = 0
    kwh: float = 0.0
    baseline_kwh: float = 0.0
    standby_kwh: float = 0.0
    """The part of ``kwh`` drawn while off (standby)."""
    months: dict[int, float] = field(default_factory=dict)
    """kWh per month (1–12) of the nights' evenings."""

    @property
    def saving_percent(self) -> float:
        """Saving against the baseline, in percent."""
        return 100.0 * (1 - self.kwh / self.baseline_kwh) if self.baseline_kwh else 0.0


@dataclass(slots=True)
class EnergyReport:
    """Energy per zone and in total for the nights ``first`` … ``last``."""

    first: date
    last: date
    lit_hours: float = 0.0
    """Hours in the site's lit windows (dusk to dawn)."""
    zones: dict[str, ZoneEnergy] = field(default_factory=dict)

    @property
    def kwh(self) -> float:
        """Total kWh of the strategy."""
        return sum(z.kwh for z in self.zones.values())

    @property
    def baseline_kwh(self) -> float:
        """Total kWh with every luminaire at 100 % while lit."""
        return sum(z.baseline_kwh for z in self.zones.values())

    @property
    def saving_percent(self) -> float:
        """Total saving against the baseline, in percent."""
        b = self.baseline_kwh
        return 100.0 * (1 - self.kwh / b) if b else 0.0

    def months(self) -> dict[int, float]:
        """Total kWh per month."""
        out: dict[int, float] = defaultdict(float)
        for z in self.zones.values():
            for m, v in z.months.items():
                out[m] += v
        return dict(sorted(out.items()))


def clo_factor(lum: Luminaire) -> float:
    """Lifetime-average share of full lamp power a CLO driver draws (1 without CLO)."""
    mf = lum.clo_maintenance_factor
    return 1.0 if mf is None else (1.0 + mf) / 2.0


def luminaire_power_w(lum: Luminaire, output_percent: float) -> float:
    """Power (W) of ``lum`` at ``output_percent`` (0: off, standby)."""
    if output_percent <= 0:
        return lum.standby_w
    lamp = (lum.rated_power_w - lum.driver_loss_w) * clo_factor(lum)
    return lum.driver_loss_w + lamp * output_percent / 100.0


def baseline_lit(strategy: Strategy, at: datetime) -> bool:
    """Whether the all-on reference burns at UTC instant ``at``: inside the site's lit window
    (dusk to dawn by ``[switching]``), exactly as :func:`estimate_energy`'s baseline."""
    return night_plan(strategy, night_of(at, time_zone(strategy.site.timezone))).is_lit(at)


def baseline_power_w(lum: Luminaire, lit: bool) -> float:
    """Power (W) of ``lum`` in the all-on reference: 100 % while ``lit``, standby otherwise."""
    return luminaire_power_w(lum, 100.0 if lit else 0.0)


@dataclass(slots=True)
class _Unit:
    """Luminaires that always share a target: one zone and design class (or one luminaire
    named by an override); their power is linear in output, so they add up."""

    zone: str
    design: LightingClass
    luminaire: str | None
    standby_w: float = 0.0
    loss_w: float = 0.0
    lamp_w: float = 0.0  # at 100 % output, CLO included

    def watts(self, output_percent: float) -> float:
        if output_percent <= 0:
            return self.standby_w
        return self.loss_w + self.lamp_w * output_percent / 100.0


def estimate_energy(
    strategy: Strategy, first: date, last: date, *, flow_per_h: float | None = None
) -> EnergyReport:
    """Energy of ``strategy`` for the nights from ``first`` to ``last`` inclusive;
    ``flow_per_h``: an assumed steady traffic flow in the zones that adapt to it (``None``:
    no adaptation, as at a gateway without counts)."""
    report = EnergyReport(first, last)
    for z in strategy.zones:
        report.zones[z] = ZoneEnergy(z)
    overrides = strategy.overrides
    named = {lid for o in overrides for lid in o.luminaires}
    units: dict[tuple[str, str, str | None], _Unit] = {}
    for lum in strategy.luminaires:
        key = (lum.zone, lum.design_class.name, lum.id if lum.id in named else None)
        u = units.setdefault(key, _Unit(lum.zone, lum.design_class, key[2]))
        u.standby_w += lum.standby_w
        u.loss_w += lum.driver_loss_w
        u.lamp_w += (lum.rated_power_w - lum.driver_loss_w) * clo_factor(lum)
        report.zones[lum.zone].luminaires += 1
    by_zone: dict[str, list[_Unit]] = defaultdict(list)
    for u in units.values():
        by_zone[u.zone].append(u)
    night = first
    while night <= last:
        site = night_plan(strategy, night)
        report.lit_hours += sum((b - a).total_seconds() for a, b in site.lit) / 3600
        for zone, zunits in by_zone.items():
            plan = night_plan(strategy, night, zone)
            steps = zone_steps(strategy, zone, flow_per_h)
            ze = report.zones[zone]
            edges = [*change_instants([plan, site], overrides, plan.start, plan.end), plan.end]
            kwh = 0.0
            for s, e in zip(edges, edges[1:], strict=False):
                hours = (e - s).total_seconds() / 3600
                base_on = site.is_lit(s)
                for u in zunits:
                    tg = unit_target(strategy, zone, u.design, s, luminaire_id=u.luminaire,
                                     overrides=overrides, plan=plan,
                                     adaptive_steps=steps)  # fmt: skip
                    # the whole night counts: a maintenance level by day burns energy too
                    w = u.watts(arc_level_to_percent(tg.level))
                    kwh += w * hours / 1000
                    if tg.level == 0:
                        ze.standby_kwh += w * hours / 1000
                    ze.baseline_kwh += u.watts(100.0 if base_on else 0.0) * hours / 1000
            ze.kwh += kwh
            ze.months[night.month] = ze.months.get(night.month, 0.0) + kwh
        night += timedelta(days=1)
    return report


def year_energy(strategy: Strategy, year: int, *, flow_per_h: float | None = None) -> EnergyReport:
    """Energy for the nights of ``year`` (1 January to 31 December evenings)."""
    return estimate_energy(strategy, date(year, 1, 1), date(year, 12, 31), flow_per_h=flow_per_h)
