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

from dali.address import GearBroadcast, GearGroup, GearShort
from dali.command import Command
from dali.gear.general import DAPC, DTR0, SetFadeTime


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
        if a not in layout.short_addresses:
            raise ValueError(f"DALI short address {a} is not on this bus")
        if not 0 <= level <= 254:
            raise ValueError(f"arc level {level} for short address {a} outside 0..254")
    changed = {a for a, level in wanted.items() if current.get(a) != level}
    if not changed:
        return []
    targets = set(wanted.values())
    if len(targets) == 1 and set(wanted) == set(layout.short_addresses) and len(changed) > 1:
        return [LevelFrame(targets.pop())]
    candidates: list[tuple[int, int, frozenset[int]]] = []
    for g, members in sorted(layout.groups.items()):
        if not members <= wanted.keys():
            continue
        levels = {wanted[a] for a in members}
        if len(levels) == 1:
            candidates.append((g, levels.pop(), members))
    frames: list[LevelFrame] = []
    uncovered = set(changed)
    while True:
        best = max(candidates, key=lambda c: (len(c[2] & uncovered), -c[0]), default=None)
        if best is None or len(best[2] & uncovered) < 2:
            break
        g, level, members = best
        frames.append(LevelFrame(level, group=g))
        uncovered -= members
        candidates.remove(best)
    frames.extend(LevelFrame(wanted[a], short_address=a) for a in sorted(uncovered))
    return frames


def fade_time_commands(code: int, *, group: int | None = None) -> list[Command]:
    """Set the DALI fade time (code 0–15) of a group or of all gear: DTR0 then SET FADE TIME
    (a configuration command; the transport sends it twice)."""
    if not 0 <= code <= 15:
        raise ValueError(f"fade time code {code} outside 0..15")
    address = GearBroadcast() if group is None else GearGroup(group)
    return [DTR0(code), SetFadeTime(address)]
