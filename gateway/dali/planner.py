"""The DALI level planner (pure): from wanted arc levels per control gear to the fewest frames.

A group command reaches up to 64 gear in one frame, so a schedule step or a presence boost
should cost one frame per (group, level), not one per luminaire. The planner:

- sends nothing to gear already at its wanted level;
- uses one broadcast DAPC when every gear on the bus wants the same level;
- otherwise uses a group DAPC for a group whose *every* member wants the same level (so no
  member is ever set to a level that is not its own), greedily taking the group that settles
  the most changed gear first;
- addresses the remaining gear individually (DAPC to the short address).

Invariant (tested with hypothesis against the simulated bus): after the planned frames every gear
is at its wanted level, gear not mentioned keep theirs, and the plan never has more frames than
gear that change.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import TypeVar

from dali.address import GearBroadcast, GearGroup, GearShort
from dali.command import Command
from dali.gear.general import DAPC, DTR0, SetExtendedFadeTime, SetFadeTime

from lykta.strategy.dali_curve import FADE_TIMES_S

V = TypeVar("V")


@dataclass(frozen=True)
class BusLayout:
    """Who is on a DALI bus: short addresses and the members of each group (0–15)."""

    short_addresses: frozenset[int]
    groups: Mapping[int, frozenset[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for a in self.short_addresses:
            if not 0 <= a <= 63:
                raise ValueError(f"DALI short address {a} outside 0..63")
        for g, members in self.groups.items():
            if not 0 <= g <= 15:
                raise ValueError(f"DALI group {g} outside 0..15")
            unknown = set(members) - self.short_addresses
            if unknown:
                raise ValueError(f"DALI group {g} has members not on the bus: {sorted(unknown)}")

    @classmethod
    def of(
        cls, short_addresses: Set[int], groups: Mapping[int, Set[int]] | None = None
    ) -> BusLayout:
        """Build a layout from plain sets."""
        return cls(
            frozenset(short_addresses), {g: frozenset(m) for g, m in (groups or {}).items() if m}
        )


@dataclass(frozen=True, slots=True)
class LevelFrame:
    """One planned level command: to ``broadcast``, a ``group`` or a ``short_address``."""

    level: int
    group: int | None = None
    short_address: int | None = None

    @property
    def broadcast(self) -> bool:
        """True for a broadcast frame."""
        return self.group is None and self.short_address is None

    def command(self) -> Command:
        """The python-dali DAPC command (level 0 fades down and then switches off, so a
        switch-off is never abrupt)."""
        if self.group is not None:
            address: GearBroadcast | GearGroup | GearShort = GearGroup(self.group)
        elif self.short_address is not None:
            address = GearShort(self.short_address)
        else:
            address = GearBroadcast()
        return DAPC(address, self.level)


def plan_levels(
    layout: BusLayout, current: Mapping[int, int | None], wanted: Mapping[int, int]
) -> list[LevelFrame]:
    """Frames that take the gear in ``wanted`` (short address -> arc level 0–254) there.

    ``current`` is the last known level per short address (None or missing: unknown, so the
    gear is always sent its level).
    """
    for a, level in wanted.items():
        if not 0 <= level <= 254:
            raise ValueError(f"arc level {level} for short address {a} outside 0..254")
    return [
        LevelFrame(level, group=g, short_address=s)
        for level, g, s in plan_addresses(layout, current, wanted)
    ]


def plan_addresses(
    layout: BusLayout, current: Mapping[int, V | None], wanted: Mapping[int, V]
) -> list[tuple[V, int | None, int | None]]:
    """The fewest ``(value, group, short_address)`` targets (both None: broadcast) that give
    every gear in ``wanted`` its value, for any per-gear setting (arc level, fade time).

    A group is used only when every member wants the same value, so no gear is ever given a
    value that is not its own; gear already at their value get nothing.
    """
    for a in wanted:
        if a not in layout.short_addresses:
            raise ValueError(f"DALI short address {a} is not on this bus")
    changed = {a for a, value in wanted.items() if current.get(a) != value}
    if not changed:
        return []
    targets = set(wanted.values())
    if len(targets) == 1 and set(wanted) == set(layout.short_addresses) and len(changed) > 1:
        return [(targets.pop(), None, None)]
    candidates: list[tuple[int, V, frozenset[int]]] = []
    for g, members in sorted(layout.groups.items()):
        if not members <= wanted.keys():
            continue
        values = {wanted[a] for a in members}
        if len(values) == 1:
            candidates.append((g, values.pop(), members))
    out: list[tuple[V, int | None, int | None]] = []
    uncovered = set(changed)
    while True:
        best = max(candidates, key=lambda c: (len(c[2] & uncovered), -c[0]), default=None)
        if best is None or len(best[2] & uncovered) < 2:
            break
        g, value, members = best
        out.append((value, g, None))
        uncovered -= members
        candidates.remove(best)
    out.extend((wanted[a], None, a) for a in sorted(uncovered))
    return out


@dataclass(frozen=True, slots=True)
class FadeSetting:
    """How a gear fades: FADE TIME ``code`` 1–15 (0.5·√2^code s), or code 0 and the EXTENDED
    FADE TIME byte ``extended`` (IEC 62386-102: bits 6:4 multiplier, 3:0 base; 0 = no fade)."""

    code: int
    extended: int = 0

    @property
    def seconds(self) -> float:
        """How long a fade with this setting takes."""
        if self.code:
            return FADE_TIMES_S[self.code]
        mult = (self.extended >> 4) & 0x7
        return 0.0 if mult == 0 else ((self.extended & 0xF) + 1) * _EXTENDED_MULTIPLIER_S[mult]


_EXTENDED_MULTIPLIER_S = {1: 0.1, 2: 1.0, 3: 10.0, 4: 60.0}


def _fade_settings() -> list[FadeSetting]:
    out = [FadeSetting(code) for code in range(1, 16)]
    out += [
        FadeSetting(0, (mult << 4) | base) for mult in _EXTENDED_MULTIPLIER_S for base in range(16)
    ]
    # shortest first; a standard code wins a tie (two frames fewer to set)
    return sorted(out, key=lambda f: (f.seconds, f.code == 0))


_SETTINGS = _fade_settings()
LONGEST_FADE_S = _SETTINGS[-1].seconds
"""16 minutes: the longest fade DALI gear can run by itself (extended fade time)."""


def fade_setting(fade_ms: int) -> FadeSetting:
    """The gear setting for a fade of ``fade_ms``: the shortest DALI fade lasting at least
    that long (a step down is never faster than asked), standard fade time where it fits,
    extended fade time otherwise; capped at :data:`LONGEST_FADE_S`. 0 is no fade."""
    if fade_ms <= 0:
        return FadeSetting(0, 0)
    seconds = fade_ms / 1000
    for f in _SETTINGS:
        if f.seconds >= seconds - 1e-9:
            return f
    return _SETTINGS[-1]


def fade_setting_commands(
    setting: FadeSetting, *, group: int | None = None, short_address: int | None = None
) -> list[Command]:
    """DTR0 + SET FADE TIME (and, for code 0, DTR0 + SET EXTENDED FADE TIME) for a gear, a
    group or (neither given) all gear. Configuration commands: the transport sends them twice.
    The gear reads its fade time when a fade starts: a running fade is not affected."""
    if group is not None:
        address: GearBroadcast | GearGroup | GearShort = GearGroup(group)
    elif short_address is not None:
        address = GearShort(short_address)
    else:
        address = GearBroadcast()
    commands: list[Command] = [DTR0(setting.code), SetFadeTime(address)]
    if setting.code == 0:
        commands += [DTR0(setting.extended), SetExtendedFadeTime(address)]
    return commands
