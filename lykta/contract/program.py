"""The ``program`` message: a compiled, versioned, signed control program for one gateway.

Owned by the strategy engine (``lykta.strategy.compile``), which produces it; the gateway
executes it with the same evaluator. (First version; the strategy engine refines it.)
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from lykta.contract.messages import ArcLevel, Base, Ms


class SwitchPoint(Base):
    """From ``ts`` on, the target is ``level``, reached over ``fade_ms``."""

    ts: Ms
    level: ArcLevel
    fade_ms: Annotated[int, msgspec.Meta(ge=0)] = 0


class GroupProgram(Base):
    """Switch points for one DALI group on one bus."""

    bus: str
    group: Annotated[int, msgspec.Meta(ge=0, le=15)]
    zone: str
    floor_level: ArcLevel
    points: list[SwitchPoint]


class Program(Base):
    """Everything a gateway needs to run autonomously from ``valid_from`` to ``valid_until``."""

    version: str
    site: str
    gateway: str
    created_ts: Ms
    valid_from: Ms
    valid_until: Ms
    groups: list[GroupProgram] = []
    signature: str | None = None
