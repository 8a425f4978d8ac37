"""The pure evaluator: the target arc level of a luminaire at an instant.

``evaluate(strategy, luminaire_id, at, overrides=..., presence=...) -> Target``: no I/O, no
clock (``at`` is an aware UTC datetime the caller injects). The controller previews and
compiles with it; the gateway executes what it compiles.

Rules, in order:

1. **Lit?** The night's lit windows (sun below the switching elevation, offsets applied), or
   the lux-sensor state when the caller passes ``lux_lit``.
2. **Schedule.** While lit, what the active period of the night's profile sets for the zone:
   an EN 13201 class, a plain level (``"30%"``) or ``"off"``. The night's plan (profile, lit
   windows, events) is the zone's own (:func:`lykta.strategy.schedule.night_plan`).
   **Adaptive** (``[zones.KEY.adaptive]``): with a counted flow, a schedule class of an
   adapting period is stepped down by :mod:`lykta.strategy.adaptive` (never below the floor;
   no flow given: no adaptation — unknown is not zero). Events, overrides and presence boosts
   are not adapted.
3. **Overrides** (highest priority wins: incident > maintenance > event > schedule; among
   equals the first listed): *incident* raises to its class (never lowers), day or night;
   *maintenance* sets a fixed level or ``off``, day or night, presence ignored; *event* replaces
   the schedule's class while lit; calendar events (``[[events]]``) are event overrides.
4. **Presence** raises a boosted luminaire to the zone's boost class while lit (not during
   maintenance).
5. **Safety floor.** While lit the level is never below the zone's safety floor class. The
   only way below is an explicit maintenance ``off`` outside a safety route. A zone without a
   ``safety_floor`` has none (its floor level is 0): plain levels and part-night off.

Class → level: light output = class value / design class value (capped at 100 %), then the
smallest DALI arc level giving at least that output (:func:`dali_curve.arc_level_at_least`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lykta.strategy.adaptive import step_down, zone_steps
from lykta.strategy.dali_curve import arc_level_at_least
from lykta.strategy.en13201 import LightingClass, output_fraction
from lykta.strategy.model import (
    OVERRIDE_PRIORITY,
    Luminaire,
    Override,
    OverrideKind,
    Strategy,
    Zone,
)
from lykta.strategy.presence import PresenceState, boosted
from lykta.strategy.schedule import NightPlan, night_plan
from lykta.strategy.wallclock import night_of, require_utc, zone


@dataclass(frozen=True, slots=True)
class Target:
    """What a luminaire should do at an instant, and why."""

    level: int
    """DALI arc power level (0 = off)."""
    lit: bool
    """Whether the instant is in a lit window (the safety floor applies)."""
    floor_level: int
    """Arc level of the zone's safety floor for this luminaire."""
    lighting_class: LightingClass | None
    """The class the level delivers before the floor (``None``: off or a fixed level)."""
    profile: str
    period: str | None
    source: str
    """``off``, ``schedule``, ``adaptive`` (a schedule class stepped down by traffic),
    ``presence``, ``floor`` or ``<override kind>:<override id>``."""
    fade_up_s: float
    fade_down_s: float
    setting: str | None = None
    """What the level delivers, for people: a class (``"P3"``), a level (``"30%"``), ``"off"``."""


def class_level(design: LightingClass, target: LightingClass) -> int:
    """Arc level at which a luminaire designed for ``design`` delivers ``target``."""
    return _class_levels[design.name][target.name]


def _build_levels() -> dict[str, dict[str, int]]:
    from lykta.strategy.en13201 import MAINTAINED_VALUES

    out: dict[str, dict[str, int]] = {}
    for d in MAINTAINED_VALUES:
        out[d] = {}
        for t in MAINTAINED_VALUES:
            if d[0] == t[0]:
                f = output_fraction(LightingClass(t), LightingClass(d))
                out[d][t] = arc_level_at_least(f * 100.0)
    return out


_class_levels = _build_levels()


def _override_level(levels: dict[str, int], ov: Override, zone_name: str) -> int:
    assert ov.lighting_class is not None
    level = levels.get(ov.lighting_class.name)
    if level is None:
        raise ValueError(
            f"override {ov.id}: class {ov.lighting_class} does not fit zone {zone_name} "
            f"(check it with lykta.strategy.model.override_problems)"
        )
    return level


def applicable_overrides(
    overrides: Sequence[Override], zone_name: str, luminaire_id: str | None, at: datetime
) -> list[Override]:
    """Overrides in force at ``at`` that name the zone or the luminaire, highest priority first."""
    hits = [
        o
        for o in overrides
        if (zone_name in o.zones or (luminaire_id is not None and luminaire_id in o.luminaires))
        and o.active(at)
    ]
    hits.sort(key=lambda o: -OVERRIDE_PRIORITY[o.kind])  # stable: first listed wins ties
    return hits


def unit_target(
    strategy: Strategy,
    zone_name: str,
    design: LightingClass,
    at: datetime,
    *,
    luminaire_id: str | None = None,
    overrides: Sequence[Override] = (),
    boost: bool = False,
    lux_lit: bool | None = None,
    plan: NightPlan | None = None,
    adaptive_steps: int = 0,
) -> Target:
    """The target for any luminaire of ``zone_name`` with ``design`` class at UTC ``at``.

    ``boost`` says whether presence holds this luminaire at boost; ``adaptive_steps`` how many
    classes traffic steps the schedule down (0: none; only in a zone and period that adapt,
    see :func:`lykta.strategy.adaptive.next_steps`). This is the core of :func:`evaluate`;
    the compiler calls it once per DALI group instead of per luminaire.
    """
    z: Zone = strategy.zones[zone_name]
    if plan is None:
        plan = night_plan(strategy, night_of(at, zone(strategy.site.timezone)), zone_name)
    lit = plan.is_lit(at) if lux_lit is None else lux_lit
    levels = _class_levels[design.name]
    floor = levels[z.safety_floor.name] if z.safety_floor is not None else 0
    period = plan.period_at(at) if lit else None
    setting = z.classes[period] if period is not None else None
    cls: LightingClass | None = None
    source = "schedule" if lit else "off"
    if isinstance(setting, LightingClass):
        if adaptive_steps > 0 and z.adapts(period):
            stepped = step_down(setting, adaptive_steps, z.safety_floor)
            if stepped != setting:
                setting, source = stepped, "adaptive"
        cls, level = setting, levels[setting.name]
    elif setting is not None:  # a plain level; 0 % is off (no floor: part-night switch-off)
        level = arc_level_at_least(setting.percent) if setting.percent > 0 else 0
    else:
        level = 0
    label = str(setting) if setting is not None else None
    up, down = z.fade_up_s, z.fade_down_s
    if plan.events:
        overrides = [*overrides, *plan.events]
    ovs = applicable_overrides(overrides, zone_name, luminaire_id, at) if overrides else []
    top = ovs[0] if ovs else None
    maintenance = top is not None and top.kind is OverrideKind.MAINTENANCE
    if top is not None:
        tag = f"{top.kind}:{top.id}"
        if top.kind is OverrideKind.INCIDENT:
            assert top.lighting_class is not None
            raised = _override_level(levels, top, zone_name)
            if raised > level:
                level, cls, source = raised, top.lighting_class, tag
                label = str(cls)
        elif maintenance:
            source, cls = tag, top.lighting_class
            if top.off:
                level, label = 0, "off"
            elif top.lighting_class is not None:
                level, label = _override_level(levels, top, zone_name), str(top.lighting_class)
            else:
                assert top.level_percent is not None
                level = arc_level_at_least(top.level_percent)
                label = f"{top.level_percent:g}%"
        elif lit:  # event
            assert top.lighting_class is not None
            level, cls, source = _override_level(levels, top, zone_name), top.lighting_class, tag
            label = str(cls)
    if boost and lit and not maintenance and z.presence is not None:
        b = levels[z.presence.boost.name]
        if b > level:
            level, cls, source = b, z.presence.boost, "presence"
            label = str(cls)
            up, down = z.presence.fade_up_s, z.presence.fade_down_s
    if lit and level < floor:
        switched_off = maintenance and top is not None and top.off and not z.safety_route
        if not switched_off:
            level, source = floor, "floor" if not maintenance else source
            label = str(z.safety_floor)
    return Target(level, lit, floor, cls, plan.profile, period, source, up, down, label)


def _path_index(strategy: Strategy, lum: Luminaire) -> tuple[list[float], int]:
    key = ("pathpos", lum.zone)
    got = strategy._cache.get(key)
    if got is None:
        path = strategy.zone_path(lum.zone)
        got = ([x.position_m for x in path], {x.id: i for i, x in enumerate(path)})
        strategy._cache[key] = got
    return got[0], got[1][lum.id]


def evaluate(
    strategy: Strategy,
    luminaire_id: str,
    at: datetime,
    *,
    overrides: Sequence[Override] | None = None,
    presence: PresenceState | None = None,
    lux_lit: bool | None = None,
    flow_per_h: float | None = None,
    adaptive_steps: int | None = None,
) -> Target:
    """Target arc level of luminaire ``luminaire_id`` at the aware instant ``at``.

    ``overrides``: the overrides to consider (default: the strategy's planned ones);
    ``presence``: recent detections per zone; ``lux_lit``: the lux sensor's on/off state when
    switching by sensor (``None``: astronomical); ``flow_per_h``: the zone's counted flow, a
    steady one (people per hour; ``None``: unknown, no adaptation); ``adaptive_steps``: the
    steps a gateway is at after its hysteresis (instead of ``flow_per_h``; the demo compares
    the street with it). Never below the safety floor while lit.
    """
    at = require_utc(at, "evaluation instant")
    lum = strategy.luminaire(luminaire_id)
    z = strategy.zones[lum.zone]
    boost = False
    if presence and z.presence is not None and presence.get(lum.zone):
        positions, idx = _path_index(strategy, lum)
        p = z.presence
        boost = boosted(positions, idx, presence[lum.zone], at, p.ahead, p.behind, p.hold_s)
    return unit_target(
        strategy,
        lum.zone,
        lum.design_class,
        at,
        luminaire_id=lum.id,
        overrides=strategy.overrides if overrides is None else overrides,
        boost=boost,
        lux_lit=lux_lit,
        adaptive_steps=(
            zone_steps(strategy, lum.zone, flow_per_h) if adaptive_steps is None
            else adaptive_steps
        ),
    )
