"""Execute a compiled :class:`~lykta.contract.Program` at an instant: pure functions for the
gateway daemon (it injects ``now_ms``, milliseconds since the epoch, UTC).

- :func:`program_valid` — inside ``[valid_from, valid_until)``? If not, run
  :func:`lykta.strategy.safe_default_level`.
- :func:`program_target` — the active switch point (level to command, fade) of a group or
  luminaire; :func:`program_level` — the level it is at, part-way through a fade included.
- :func:`in_lit_window`, :func:`enforce_floor` — the gateway's own floor check on any level it
  is about to command (schedule, presence, override or operator command).
- :func:`presence_corridor` — the luminaires a detection lights, and their boost levels;
  :func:`presence_reach` — those of neighbouring gateways in the same corridor.
- :func:`lux_program_level` — the level when the program switches by a lux sensor.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from lykta.contract.program import LuminaireProgram, NeighbourLuminaire, Program, SwitchPoint
from lykta.strategy.presence import corridor
from lykta.strategy.ramp import level_during_fade


class ProgramNotValid(ValueError):
    """The program does not cover the instant asked about (expired or not yet valid)."""


@dataclass(slots=True)
class _Index:
    groups: dict[tuple[str, int], list[SwitchPoint]]
    luminaires: dict[str, LuminaireProgram]
    paths: dict[str, list[LuminaireProgram | NeighbourLuminaire]]
    """Per zone, own and neighbouring luminaires along the path (position, then id)."""
    positions: dict[str, list[float]]
    lit_from: list[int]
    lit_until: list[int]


_indexes: dict[int, tuple[Program, _Index]] = {}


def _index(p: Program) -> _Index:
    got = _indexes.get(id(p))
    if got is not None and got[0] is p:
        return got[1]
    paths: dict[str, list[LuminaireProgram | NeighbourLuminaire]] = {}
    along: list[LuminaireProgram | NeighbourLuminaire] = [*p.luminaires, *p.neighbours]
    for lum in along:
        paths.setdefault(lum.zone, []).append(lum)
    for path in paths.values():
        path.sort(key=lambda x: (x.position_m, x.id))  # the order of Strategy.zone_path
    idx = _Index(
        groups={(g.bus, g.group): g.points for g in p.groups},
        luminaires={lum.id: lum for lum in p.luminaires},
        paths=paths,
        positions={zn: [x.position_m for x in path] for zn, path in paths.items()},
        lit_from=[w.from_ts for w in p.lit],
        lit_until=[w.until_ts for w in p.lit],
    )
    if len(_indexes) >= 16:
        _indexes.clear()
    _indexes[id(p)] = (p, idx)
    return idx


def program_valid(program: Program, now_ms: int) -> bool:
    """Whether ``now_ms`` lies in ``[valid_from, valid_until)``."""
    return program.valid_from <= now_ms < program.valid_until


def _points(program: Program, luminaire: str | None, group: tuple[str, int] | None):
    idx = _index(program)
    if luminaire is not None:
        lum = idx.luminaires.get(luminaire)
        if lum is None:
            raise KeyError(f"program {program.version} for {program.gateway} has no {luminaire!r}")
        if lum.points or lum.group is None:
            return lum.points
        group = (lum.bus, lum.group)
    if group is None:
        raise ValueError("name a luminaire or a (bus, group)")
    pts = idx.groups.get(group)
    if pts is None:
        raise KeyError(f"program {program.version} for {program.gateway} has no group {group}")
    return pts


def _active(points: list[SwitchPoint], now_ms: int) -> int:
    i = bisect_right([p.ts for p in points], now_ms) - 1
    return max(i, 0)


def program_target(
    program: Program,
    now_ms: int,
    *,
    luminaire: str | None = None,
    group: tuple[str, int] | None = None,
) -> SwitchPoint:
    """The switch point in force at ``now_ms`` for a luminaire id or a ``(bus, group)``.

    Raises :class:`ProgramNotValid` outside the program's validity.
    """
    if not program_valid(program, now_ms):
        raise ProgramNotValid(
            f"program {program.version} for {program.gateway} is valid "
            f"{program.valid_from}..{program.valid_until} ms, not at {now_ms}"
        )
    pts = _points(program, luminaire, group)
    return pts[_active(pts, now_ms)]


def program_level(
    program: Program,
    now_ms: int,
    *,
    luminaire: str | None = None,
    group: tuple[str, int] | None = None,
) -> int:
    """The arc level a luminaire or ``(bus, group)`` is at ``now_ms``, mid-fade included."""
    if not program_valid(program, now_ms):
        raise ProgramNotValid(f"program {program.version} is not valid at {now_ms}")
    pts = _points(program, luminaire, group)
    i = _active(pts, now_ms)
    cur = pts[i]
    prev = pts[i - 1].level if i > 0 else cur.level
    return level_during_fade(prev, cur.level, cur.fade_ms, now_ms - cur.ts)


def lux_program_level(
    program: Program,
    now_ms: int,
    lux_lit: bool,
    *,
    luminaire: str | None = None,
    group: tuple[str, int] | None = None,
) -> int:
    """The level when the program has a lux rule and the sensor's state is ``lux_lit``
    (from :func:`lykta.strategy.lux_switch`).

    Sensor says light: off. Sensor says dark inside a lit window: the program's level. Dark
    outside every window (a dark winter afternoon, a late grey dawn): the level at the edge of
    the nearest window — the evening's first step or the morning's last — never below the
    floor; with no window at all (midnight sun), the floor.
    """
    if not lux_lit:
        return 0
    level = program_level(program, now_ms, luminaire=luminaire, group=group)
    if in_lit_window(program, now_ms):
        return level
    floor = _floor_of(program, luminaire, group)
    if not program.lit:
        return floor
    nearest = min(
        program.lit, key=lambda w: min(abs(w.from_ts - now_ms), abs(w.until_ts - 1 - now_ms))
    )
    edge = nearest.from_ts if nearest.from_ts > now_ms else nearest.until_ts - 1
    edge = min(max(edge, program.valid_from), program.valid_until - 1)
    return max(floor, program_target(program, edge, luminaire=luminaire, group=group).level)


def _floor_of(program: Program, luminaire: str | None, group: tuple[str, int] | None) -> int:
    if luminaire is not None:
        return _index(program).luminaires[luminaire].floor_level
    g = next((g for g in program.groups if (g.bus, g.group) == group), None)
    if g is None:
        raise KeyError(f"program {program.version} for {program.gateway} has no group {group}")
    return g.floor_level


def in_lit_window(program: Program, now_ms: int) -> bool:
    """Whether ``now_ms`` is in one of the program's lit windows (safety floors apply)."""
    idx = _index(program)
    i = bisect_right(idx.lit_from, now_ms) - 1
    return i >= 0 and now_ms < idx.lit_until[i]


def enforce_floor(
    program: Program, luminaire: str, level: int, now_ms: int, *, lit: bool | None = None
) -> int:
    """``level`` raised to the luminaire's safety floor while lit; the gateway applies this to
    every level it commands, whatever asked for it. ``lit`` is the lux sensor's state when the
    program switches by sensor (default: the program's lit windows)."""
    if not (in_lit_window(program, now_ms) if lit is None else lit):
        return level
    lum = _index(program).luminaires[luminaire]
    return max(level, lum.floor_level)


def presence_corridor(
    program: Program, zone: str, position_m: float
) -> list[tuple[LuminaireProgram, int]]:
    """This gateway's luminaires a detection at ``position_m`` in ``zone`` lights, with boost
    levels — the detection may be one of a neighbouring gateway's sensors.

    The corridor is computed over the program's path of the zone, neighbouring gateways'
    luminaires near the boundary included, so it is the preview's corridor. Empty when the zone
    has no presence rule in this program. Hold and fades are in ``program.presence``.
    """
    return [
        (x, x.boost_level or x.floor_level)
        for x in _corridor(program, zone, position_m)
        if isinstance(x, LuminaireProgram)
    ]


def presence_reach(program: Program, zone: str, position_m: float) -> list[NeighbourLuminaire]:
    """The neighbouring gateways' luminaires in the corridor of a detection at ``position_m``
    in ``zone``: their gateways light them on this gateway's ``presence`` event."""
    return [x for x in _corridor(program, zone, position_m) if isinstance(x, NeighbourLuminaire)]


def _corridor(
    program: Program, zone: str, position_m: float
) -> list[LuminaireProgram | NeighbourLuminaire]:
    rule = next((r for r in program.presence if r.zone == zone), None)
    idx = _index(program)
    path = idx.paths.get(zone, [])
    if rule is None or not path:
        return []
    return [path[i] for i in corridor(idx.positions[zone], position_m, rule.ahead, rule.behind)]
