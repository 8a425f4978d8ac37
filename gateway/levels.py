"""What every luminaire should do now (pure: no I/O, the clock is an argument).

The order of authority, lowest first: the program (or, without a valid one, the fail-safe
dusk-to-dawn level), presence boosts, overrides (incident raises, maintenance sets). Last, and
whatever came before, the safety floor: while lit, no luminaire goes below its zone's floor.

The rules are the evaluator's (:mod:`lykta.strategy.evaluator`), so the street does what the
preview shows:

- **Lit** means inside one of the program's lit windows, or — when the program switches by a
  lux sensor and the sensor has a state — the sensor says dark.
- **Presence acts only while lit** and never on a luminaire the program has switched off for
  maintenance; a boost lifts to the zone's boost level, it never lowers.
- **The program's own level is the preview's level.** The compiler computed it with the
  evaluator, floors included; the one way below the floor the evaluator allows is a planned
  maintenance *off* outside a safety route, and the gateway keeps that 0. Any other program
  level below the floor while lit (a safety route, or a level that is not 0) is raised to the
  floor: the gateway's own check does not trust the program.
- **Adaptive classes by traffic**: with ``adaptive_steps`` for a zone (from its counted flow,
  :mod:`lykta.strategy.adaptive`), a switch point's ``adapted`` level replaces its level —
  levels the compiler computed with the evaluator, so never below the floor and never above
  the unadapted level. A zone with no steps given (no count: unknown is not zero) runs the
  unadapted level. Presence and overrides then act on it as on any program level.
- **Commanded overrides** (``override`` commands) never take a luminaire below its floor while
  lit; without a valid program they may only raise the fail-safe level.

Levels come with the fade the gear should run to reach them (:class:`Wanted`): a switch point's
``fade_ms``, the presence fade-up, or the presence fade-down when a boost ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from lykta.contract.program import AdaptiveRule, PresenceRule, Program
from lykta.strategy import in_lit_window, lux_program_level, program_target, program_valid

Source = Literal["program", "adaptive", "presence", "override", "fail-safe", "maintenance"]

OVERRIDE_FADE_MS = 1_000
"""Fade of a commanded override's change (an incident raises fast, a maintenance set too)."""
FAIL_SAFE_FADE_MS = 2_000
"""Fade of the fail-safe level's switch on at dusk and off at dawn."""


@dataclass(frozen=True, slots=True)
class ActiveOverride:
    """An override the gateway received as a command, until ``until_ms``.

    ``mode="raise"`` (incident / trygghetsläge) lifts to at least ``level``; ``mode="set"``
    (maintenance, event) sets ``level`` — still never below the floor while lit.
    """

    id: str
    luminaires: frozenset[str]
    level: int
    until_ms: int
    mode: Literal["raise", "set"] = "raise"


@dataclass(frozen=True, slots=True)
class Boost:
    """A presence boost for one luminaire: at least ``level`` until ``until_ms``."""

    level: int
    until_ms: int


@dataclass(frozen=True, slots=True)
class Wanted:
    """One luminaire's level now, the fade to reach it, and why."""

    level: int
    fade_ms: int
    source: Source
    rest_fade_ms: int | None = None
    """The fade time to leave in the gear afterwards: the zone's presence fade-up, so a
    presence boost is a single DAPC (None: the zone has no presence rule)."""


def program_lit(program: Program, now_ms: int, lux_lit: bool | None = None) -> bool:
    """Whether ``program`` has its luminaires lit at ``now_ms`` (its lit windows, or the lux
    sensor's state when the program switches by sensor and the sensor has one)."""
    if program.lux is not None and lux_lit is not None:
        return lux_lit
    return in_lit_window(program, now_ms)


def wanted_levels(
    program: Program | None,
    now_ms: int,
    luminaires: Sequence[str],
    *,
    fail_safe_level: int,
    overrides: Sequence[ActiveOverride] = (),
    boosts: Mapping[str, Boost] | None = None,
    lux_lit: bool | None = None,
    previous: Mapping[str, Source] | None = None,
    adaptive_steps: Mapping[str, int] | None = None,
    commanded: Mapping[str, int] | None = None,
) -> dict[str, Wanted]:
    """What every luminaire in ``luminaires`` should do at ``now_ms`` (see the module
    docstring). ``previous`` is why each luminaire has its present level (so the end of a
    boost fades down over the presence fade-down time); ``adaptive_steps`` the classes traffic
    steps each zone down now (zone -> steps; a zone not in it: none); ``commanded`` the level
    each luminaire was last sent (a step by traffic fades up when it rises)."""
    valid = program is not None and program_valid(program, now_ms)
    lums = {}
    rules: dict[str, PresenceRule] = {}
    adapt: dict[str, AdaptiveRule] = {}
    lit = False
    safety_routes: frozenset[str] = frozenset()
    if valid:
        assert program is not None
        lums = {lum.id: lum for lum in program.luminaires}
        rules = {r.zone: r for r in program.presence}
        adapt = {r.zone: r for r in program.adaptive}
        lit = program_lit(program, now_ms, lux_lit)
        safety_routes = frozenset(program.safety_routes)
    out: dict[str, Wanted] = {}
    for lum_id in luminaires:
        source: Source
        p = lums.get(lum_id)
        if p is None:  # no valid program, or this luminaire is not in it
            level, fade, source = fail_safe_level, FAIL_SAFE_FADE_MS, "fail-safe"
            for ov in overrides:
                if ov.until_ms > now_ms and lum_id in ov.luminaires and ov.level > level:
                    level, fade, source = ov.level, OVERRIDE_FADE_MS, "override"
            out[lum_id] = Wanted(max(0, min(254, level)), fade, source)
            continue
        assert program is not None
        rule = rules.get(p.zone)
        point = program_target(program, now_ms, luminaire=lum_id)
        level, fade = point.level, point.fade_ms
        source = "program"
        if program.lux is not None and lux_lit is not None:
            level = lux_program_level(program, now_ms, lux_lit, luminaire=lum_id)
        steps = adaptive_steps.get(p.zone, 0) if adaptive_steps else 0
        ar = adapt.get(p.zone)
        if steps > 0 and ar is not None and point.adapted and level == point.level:
            stepped = point.adapted[min(steps, len(point.adapted)) - 1]
            if stepped < level:
                level, source = stepped, "adaptive"
        if ar is not None and (source == "adaptive" or (
            previous is not None and previous.get(lum_id) == "adaptive"
        )):
            # a step by traffic: down at the zone's fade-down, back up at its fade-up
            now_at = commanded.get(lum_id) if commanded else None
            fade = ar.fade_up_ms if now_at is not None and level > now_at else ar.fade_down_ms
        maintenance_off = lit and level == 0 and p.zone not in safety_routes
        if maintenance_off:
            source = "maintenance"
        b = boosts.get(lum_id) if boosts else None
        if (
            b is not None
            and b.until_ms > now_ms
            and lit
            and not maintenance_off
            and b.level > level
        ):
            level, fade, source = b.level, rule.fade_up_ms if rule else OVERRIDE_FADE_MS, "presence"
        for ov in overrides:
            if ov.until_ms > now_ms and lum_id in ov.luminaires:
                new = max(level, ov.level) if ov.mode == "raise" else ov.level
                if new != level:
                    level, fade, source = new, OVERRIDE_FADE_MS, "override"
        if lit and level < p.floor_level and not (source == "maintenance" and level == 0):
            level = p.floor_level
        if previous is not None and previous.get(lum_id) == "presence" and source != "presence":
            fade = rule.fade_down_ms if rule else fade
        out[lum_id] = Wanted(
            max(0, min(254, level)), fade, source, rule.fade_up_ms if rule else None
        )
    return out


def desired_levels(
    program: Program | None,
    now_ms: int,
    luminaires: Sequence[str],
    *,
    fail_safe_level: int,
    overrides: Sequence[ActiveOverride] = (),
    boosts: Mapping[str, Boost] | None = None,
    lux_lit: bool | None = None,
    adaptive_steps: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Arc level per luminaire id at ``now_ms`` (:func:`wanted_levels` without the fades)."""
    return {
        k: w.level
        for k, w in wanted_levels(
            program,
            now_ms,
            luminaires,
            fail_safe_level=fail_safe_level,
            overrides=overrides,
            boosts=boosts,
            lux_lit=lux_lit,
            adaptive_steps=adaptive_steps,
        ).items()
    }
