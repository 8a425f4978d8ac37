"""What level every luminaire should have now (pure: no I/O, the clock is an argument).

The order of authority, lowest first: the program (or, without a valid one, the fail-safe
dusk-to-dawn level), presence boosts, overrides (incident raises, maintenance sets). Last, and
whatever came before, the safety floor: while lit, no luminaire goes below its zone's floor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from lykta.contract.program import Program
from lykta.strategy import enforce_floor, program_level, program_valid


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


def desired_levels(
    program: Program | None,
    now_ms: int,
    luminaires: Sequence[str],
    *,
    fail_safe_level: int,
    overrides: Sequence[ActiveOverride] = (),
    boosts: Mapping[str, Boost] | None = None,
) -> dict[str, int]:
    """Arc level per luminaire id at ``now_ms``.

    Without a program valid now, every luminaire gets ``fail_safe_level`` (the caller computes
    it from its own astronomical clock), and overrides may only raise it.
    """
    valid = program is not None and program_valid(program, now_ms)
    known = set()
    if valid:
        assert program is not None
        known = {lum.id for lum in program.luminaires}
    out: dict[str, int] = {}
    for lum in luminaires:
        in_program = valid and lum in known
        level = program_level(program, now_ms, luminaire=lum) if in_program else fail_safe_level
        if boosts:
            b = boosts.get(lum)
            if b is not None and b.until_ms > now_ms:
                level = max(level, b.level)
        for ov in overrides:
            if ov.until_ms > now_ms and lum in ov.luminaires:
                level = max(level, ov.level) if ov.mode == "raise" or not in_program else ov.level
        if in_program:
            level = enforce_floor(program, lum, level, now_ms)  # type: ignore[arg-type]
        else:
            level = max(level, fail_safe_level)  # no program: nothing goes below the fail-safe
        out[lum] = max(0, min(254, level))
    return out
