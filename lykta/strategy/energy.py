"""Energy estimate of a strategy over a year, per zone, against all-on from dusk to dawn.

Power model: an LED luminaire draws ``rated_power_w × light output`` (the DALI curve gives the
output of an arc level); standby and driver losses are left out. The baseline burns every
luminaire at 100 % through the same lit windows. The strategy's planned overrides count;
presence boosts and fade transitions are left out (boosts depend on traffic; a fade lasts
seconds against hours).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from lykta.strategy.dali_curve import arc_level_to_percent
from lykta.strategy.en13201 import LightingClass
from lykta.strategy.evaluator import unit_target
from lykta.strategy.model import Strategy
from lykta.strategy.schedule import change_instants, night_plan


@dataclass(slots=True)
class ZoneEnergy:
    """Energy of one zone over the period."""

    zone: str
    luminaires: int = 0
    kwh: float = 0.0
    baseline_kwh: float = 0.0

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


def estimate_energy(strategy: Strategy, first: date, last: date) -> EnergyReport:
    """Energy of ``strategy`` for the nights from ``first`` to ``last`` inclusive."""
    units: dict[tuple[str, str], float] = defaultdict(float)  # (zone, design) -> rated W
    report = EnergyReport(first, last)
    for z in strategy.zones:
        report.zones[z] = ZoneEnergy(z)
    for lum in strategy.luminaires:
        units[(lum.zone, lum.design_class.name)] += lum.rated_power_w
        report.zones[lum.zone].luminaires += 1
    night = first
    while night <= last:
        plan = night_plan(strategy, night)
        edges = [*change_instants([plan], strategy.overrides, plan.start, plan.end), plan.end]
        for s, e in zip(edges, edges[1:], strict=False):
            hours = (e - s).total_seconds() / 3600
            lit = plan.is_lit(s)
            if lit:
                report.lit_hours += hours
            for (zone, design), watts in units.items():
                tg = unit_target(
                    strategy, zone, LightingClass(design), s, overrides=strategy.overrides,
                    plan=plan,
                )  # fmt: skip
                ze = report.zones[zone]
                # a maintenance level by day burns energy too: integrate the whole night
                ze.kwh += watts * arc_level_to_percent(tg.level) / 100 * hours / 1000
                if lit:
                    ze.baseline_kwh += watts * hours / 1000
        night += timedelta(days=1)
    return report


def year_energy(strategy: Strategy, year: int) -> EnergyReport:
    """Energy for the nights of ``year`` (1 January to 31 December evenings)."""
    return estimate_energy(strategy, date(year, 1, 1), date(year, 12, 31))
