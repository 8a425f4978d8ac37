"""Compile a strategy into the program one gateway executes (``lykta.contract.Program``).

``compile_program(strategy, gateway_id, start, hours) -> Program``. Pure: the creation time is
``start`` unless ``created`` is given. Switch points come from the very evaluator that
previews (:func:`lykta.strategy.evaluator.unit_target`), sampled at every instant where
something can change (lit window edges, period starts, planned override starts and expiries),
so between points the level is constant. A rise uses the fade-up time, a fall the fade-down
time; the first point uses the fade-down time (a safe way to take over from any level).

Luminaires that share a DALI group share zone and design class (the loader checks it), so one
list of points per group does; only ungrouped luminaires or those named by an override get
points of their own.

Corridors across cabinets (:func:`corridor_neighbours`): where a presence zone's path runs
through several cabinets, the program names the neighbouring gateways whose corridors can
reach this gateway's luminaires and the neighbours' luminaires near the boundary, so the
gateway computes every corridor over the same path the preview uses.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import date, datetime, timedelta

import msgspec

from lykta.contract.program import (
    AdaptiveRule,
    AdaptiveThreshold,
    GroupProgram,
    LitWindow,
    LuminaireProgram,
    LuxRule,
    NeighbourLuminaire,
    PresenceRule,
    Program,
    SwitchPoint,
    signing_payload,
)
from lykta.strategy.astronomy import utc_ms
from lykta.strategy.en13201 import LightingClass
from lykta.strategy.evaluator import class_level, unit_target
from lykta.strategy.model import Override, Strategy
from lykta.strategy.schedule import NightPlan, change_instants, night_plan, nights_between
from lykta.strategy.wallclock import require_utc

MAX_HOURS = 24 * 14


class CompileError(ValueError):
    """The program cannot be compiled (unknown gateway, bad interval)."""


def _points(
    strategy: Strategy,
    zone: str,
    design: LightingClass,
    luminaire_id: str | None,
    instants: Sequence[datetime],
    plan_at: Sequence[NightPlan],
    overrides: Sequence[Override],
) -> list[SwitchPoint]:
    pts: list[SwitchPoint] = []
    prev: int | None = None
    prev_adapted: list[int] = []
    a = strategy.zones[zone].adaptive
    most = max(s for _, s in a.rules) if a else 0
    for t, plan in zip(instants, plan_at, strict=True):
        tg = unit_target(
            strategy, zone, design, t, luminaire_id=luminaire_id, overrides=overrides, plan=plan
        )
        # the same evaluator, once per step traffic can take the zone down
        adapted = [
            unit_target(strategy, zone, design, t, luminaire_id=luminaire_id,
                        overrides=overrides, plan=plan, adaptive_steps=k).level
            for k in range(1, most + 1)
        ]  # fmt: skip
        if all(x == tg.level for x in adapted):
            adapted = []
        if prev is None:
            fade = tg.fade_down_s
        elif tg.level == prev and adapted == prev_adapted:
            continue
        else:
            fade = tg.fade_up_s if tg.level > prev else tg.fade_down_s
        pts.append(SwitchPoint(ts=utc_ms(t), level=tg.level, fade_ms=round(fade * 1000),
                               adapted=adapted))  # fmt: skip
        prev, prev_adapted = tg.level, adapted
    return pts


Window = tuple[datetime, datetime]


def _intersect(a: Sequence[Window], b: Sequence[Window]) -> list[Window]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _union(a: Sequence[Window], b: Sequence[Window]) -> list[Window]:
    out: list[Window] = []
    for lo, hi in sorted([*a, *b]):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def floor_windows(
    strategy: Strategy, zones: Sequence[str], nights: Sequence[date], start: datetime,
    end: datetime,
) -> list[Window]:  # fmt: skip
    """The program's ``lit`` windows: where **every** zone of the gateway that has a safety
    floor is lit (zones have their own switching), clipped to [start, end).

    The gateway raises every level to its floor inside these windows; outside them a zone's
    own lit time is still at or above its floor through its switch points, so the street and
    the preview agree. With no floored zone, the union of the zones' windows."""
    floored = [z for z in zones if strategy.zones[z].safety_floor is not None]
    combine = _intersect if floored else _union
    out: list[Window] | None = None
    for zn in floored or zones:
        mine = [w for n in nights for w in night_plan(strategy, n, zn).lit]
        out = mine if out is None else combine(out, mine)
    return [(max(a, start), min(b, end)) for a, b in out or [] if a < end and b > start]


def corridor_neighbours(
    strategy: Strategy, gateway_id: str, zone: str
) -> tuple[list[str], list[NeighbourLuminaire]]:
    """The other gateways on ``zone``'s path whose luminaires one corridor can share with
    ``gateway_id``'s (at most ``ahead + behind`` path places apart), and the other gateways'
    luminaires within ``ahead + behind + 1`` places of one of ``gateway_id``'s.

    The second list is what the gateway needs to compute any corridor over its own luminaires
    exactly as over the whole path (nearest luminaire, clipping at the path's ends): a corridor
    centred farther away than ``max(ahead, behind)`` places cannot reach its luminaires."""
    rule = strategy.zones[zone].presence
    path = strategy.zone_path(zone)
    mine = [i for i, lum in enumerate(path) if lum.gateway == gateway_id]
    if rule is None or not mine:
        return [], []
    reach = rule.ahead + rule.behind
    gateways: set[str] = set()
    near: list[NeighbourLuminaire] = []
    for j, lum in enumerate(path):
        if lum.gateway == gateway_id:
            continue
        k = bisect_left(mine, j)
        dist = min(abs(mine[x] - j) for x in (k - 1, k) if 0 <= x < len(mine))
        if dist <= reach:
            gateways.add(lum.gateway)
        if dist <= reach + 1:
            near.append(NeighbourLuminaire(
                id=lum.id, gateway=lum.gateway, zone=zone, position_m=lum.position_m
            ))  # fmt: skip
    return sorted(gateways), near


def presence_neighbours(strategy: Strategy) -> dict[str, list[str]]:
    """Per gateway, the gateways whose ``presence`` events it reads (those named in its
    programs' presence rules): the broker ACL grants exactly these ``event`` topics."""
    out: dict[str, list[str]] = {}
    for gw in strategy.gateways():
        zones = sorted({lum.zone for lum in strategy.luminaires if lum.gateway == gw})
        got = sorted({n for zn in zones for n in corridor_neighbours(strategy, gw, zn)[0]})
        if got:
            out[gw] = got
    return out


def compile_program(
    strategy: Strategy,
    gateway_id: str,
    start: datetime,
    hours: float,
    *,
    created: datetime | None = None,
    overrides: Sequence[Override] | None = None,
) -> Program:
    """The program for ``gateway_id`` from ``start`` (aware) for ``hours`` hours.

    ``overrides`` replaces the strategy's planned overrides when given. Raises
    :class:`CompileError` for an unknown gateway or an interval outside 0 < hours ≤ 336.
    """
    start = require_utc(start, "program start")
    if not 0 < hours <= MAX_HOURS:
        raise CompileError(f"hours must be in (0, {MAX_HOURS}], got {hours}")
    end = start + timedelta(hours=hours)
    lums = [lum for lum in strategy.luminaires if lum.gateway == gateway_id]
    if not lums:
        known = ", ".join(strategy.gateways()) or "none"
        raise CompileError(
            f"gateway {gateway_id!r} has no luminaires in the strategy (known: {known})"
        )
    ovs = list(strategy.overrides if overrides is None else overrides)
    nights = nights_between(strategy, start, end)
    zones = sorted({lum.zone for lum in lums})
    # each zone runs its own plans (calendar, switching, events): its own sampling instants
    sampling: dict[str, tuple[list[datetime], list[NightPlan]]] = {}
    for zn in zones:
        plans = [night_plan(strategy, n, zn) for n in nights]
        instants = change_instants(plans, ovs, start, end)
        plan_starts = [p.start for p in plans]
        sampling[zn] = (
            instants, [plans[max(0, bisect_right(plan_starts, t) - 1)] for t in instants]
        )
    individually = {lid for o in ovs for lid in o.luminaires}

    cache: dict[tuple[str, str, str | None], list[SwitchPoint]] = {}

    def points(zone: str, design: LightingClass, lid: str | None) -> list[SwitchPoint]:
        key = (zone, design.name, lid)
        if key not in cache:
            instants, plan_at = sampling[zone]
            cache[key] = _points(strategy, zone, design, lid, instants, plan_at, ovs)
        return cache[key]

    groups: dict[tuple[str, int], GroupProgram] = {}
    lprogs: list[LuminaireProgram] = []
    for lum in sorted(lums, key=lambda x: (x.zone, x.position_m, x.id)):
        z = strategy.zones[lum.zone]
        floor = class_level(lum.design_class, z.safety_floor) if z.safety_floor else 0
        boost = class_level(lum.design_class, z.presence.boost) if z.presence else None
        if lum.group is not None and (lum.bus, lum.group) not in groups:
            groups[(lum.bus, lum.group)] = GroupProgram(
                bus=lum.bus,
                group=lum.group,
                zone=lum.zone,
                design_class=lum.design_class.name,
                floor_level=floor,
                boost_level=boost,
                points=points(lum.zone, lum.design_class, None),
            )
        own = lum.group is None or lum.id in individually
        lprogs.append(
            LuminaireProgram(
                id=lum.id,
                bus=lum.bus,
                short_address=lum.short_address,
                group=lum.group,
                zone=lum.zone,
                position_m=lum.position_m,
                floor_level=floor,
                boost_level=boost,
                points=points(lum.zone, lum.design_class, lum.id) if own else [],
            )
        )
    presence: list[PresenceRule] = []
    neighbours: list[NeighbourLuminaire] = []
    for zn in zones:
        p = strategy.zones[zn].presence
        if p is None:
            continue
        gws, near = corridor_neighbours(strategy, gateway_id, zn)
        neighbours += near
        presence.append(
            PresenceRule(
                zone=zn,
                ahead=p.ahead,
                behind=p.behind,
                hold_ms=round(p.hold_s * 1000),
                fade_up_ms=round(p.fade_up_s * 1000),
                fade_down_ms=round(p.fade_down_s * 1000),
                neighbours=gws,
            )
        )
    adaptive = [
        AdaptiveRule(
            zone=zn,
            window_ms=a.window_ms,
            hysteresis_percent=a.hysteresis_percent,
            thresholds=[AdaptiveThreshold(below_per_h=b, step=k) for b, k in a.rules],
            fade_up_ms=round(strategy.zones[zn].fade_up_s * 1000),
            fade_down_ms=round(strategy.zones[zn].fade_down_s * 1000),
        )
        for zn in zones
        if (a := strategy.zones[zn].adaptive) is not None
    ]
    lit = [
        LitWindow(from_ts=utc_ms(on), until_ts=utc_ms(off))
        for on, off in floor_windows(strategy, zones, nights, start, end)
    ]
    site, sw = strategy.site, strategy.switching
    program = Program(
        version="",
        site=site.name,
        gateway=gateway_id,
        created_ts=utc_ms(require_utc(created, "created") if created else start),
        valid_from=utc_ms(start),
        valid_until=utc_ms(end),
        latitude=site.latitude,
        longitude=site.longitude,
        timezone=site.timezone,
        sun_elevation_deg=sw.sun_elevation_deg,
        lux=LuxRule(
            sensor=sw.lux.sensor, on_below_lx=sw.lux.on_below_lx, off_above_lx=sw.lux.off_above_lx
        )
        if sw.lux
        else None,
        safety_routes=[zn for zn in zones if strategy.zones[zn].safety_route],
        lit=lit,
        groups=[groups[k] for k in sorted(groups)],
        luminaires=lprogs,
        presence=presence,
        adaptive=adaptive,
        neighbours=neighbours,
    )
    digest = hashlib.sha256(signing_payload(program)).hexdigest()[:16]
    return msgspec.structs.replace(program, version=digest)
