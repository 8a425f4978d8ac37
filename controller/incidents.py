"""Incident overrides ("trygghetsläge") and maintenance overrides: from a request to the
commands gateways execute (pure).

Security staff or police ask for more light at a place for a while: an area (zones, a list of
luminaires, or a radius around a point), an EN 13201 class, a duration (capped by config) and a
reason. The controller turns that into a strategy :class:`~lykta.strategy.Override` of kind
``incident`` (checked against the strategy with ``override_problems``) and, per gateway, one
``override`` command per distinct arc level (luminaires of different design classes need
different levels for the same class). The exact command format is in ``docs/controller.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from lykta.strategy import Override, Strategy, class_level
from lykta.strategy.dali_curve import arc_level_at_least
from lykta.strategy.en13201 import LightingClass
from lykta.strategy.model import override_problems

EARTH_RADIUS_M = 6_371_000.0


class IncidentError(ValueError):
    """An incident request that cannot be carried out (the message says why)."""


@dataclass(frozen=True, slots=True)
class Point:
    """A place and a radius around it (WGS 84 degrees, metres)."""

    latitude: float
    longitude: float
    radius_m: float


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine; plenty for a few hundred metres)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def luminaires_within(
    point: Point, positions: Mapping[str, tuple[float | None, float | None]]
) -> list[str]:
    """Luminaires (id -> (lat, lon), either may be unknown) within ``point.radius_m``."""
    return sorted(
        lid
        for lid, (lat, lon) in positions.items()
        if lat is not None
        and lon is not None
        and distance_m(point.latitude, point.longitude, lat, lon) <= point.radius_m
    )


def incident_override(
    strategy: Strategy,
    incident_id: str,
    *,
    lighting_class: str,
    now_ms: int,
    minutes: int,
    max_minutes: int,
    zones: Iterable[str] = (),
    luminaires: Iterable[str] = (),
) -> Override:
    """The incident override for the request; :class:`IncidentError` if it is not valid."""
    return make_override(
        strategy,
        incident_id,
        "incident",
        now_ms=now_ms,
        minutes=minutes,
        max_minutes=max_minutes,
        zones=zones,
        luminaires=luminaires,
        fields={"class": lighting_class},
    )


def maintenance_override(
    strategy: Strategy,
    override_id: str,
    *,
    now_ms: int,
    minutes: int,
    max_minutes: int,
    zones: Iterable[str] = (),
    luminaires: Iterable[str] = (),
    lighting_class: str | None = None,
    level_percent: float | None = None,
    off: bool = False,
) -> Override:
    """A maintenance override (exactly one of class, level_percent, off); the gateway still
    keeps every luminaire at or above its safety floor while lit."""
    fields: dict[str, Any] = {"off": off}
    if lighting_class is not None:
        fields["class"] = lighting_class
    if level_percent is not None:
        fields["level_percent"] = level_percent
    return make_override(
        strategy,
        override_id,
        "maintenance",
        now_ms=now_ms,
        minutes=minutes,
        max_minutes=max_minutes,
        zones=zones,
        luminaires=luminaires,
        fields=fields,
    )


def make_override(
    strategy: Strategy,
    override_id: str,
    kind: str,
    *,
    now_ms: int,
    minutes: int,
    max_minutes: int,
    zones: Iterable[str],
    luminaires: Iterable[str],
    fields: dict[str, Any],
) -> Override:
    """A strategy :class:`Override` of ``kind`` from now for ``minutes`` (capped), checked
    against ``strategy``; :class:`IncidentError` naming every problem otherwise."""
    if minutes > max_minutes:
        raise IncidentError(f"duration {minutes} min exceeds the cap of {max_minutes} min")
    if minutes < 1:
        raise IncidentError("duration must be at least 1 minute")
    zones, luminaires = list(zones), list(luminaires)
    if not zones and not luminaires:
        raise IncidentError("the area names no zones and no luminaires")
    start = datetime.fromtimestamp(now_ms / 1000, UTC)
    try:
        ov = Override.model_validate(
            {
                "id": override_id,
                "kind": kind,
                "zones": zones,
                "luminaires": luminaires,
                "starts": start,
                "expires": start + timedelta(minutes=minutes),
                **fields,
            }
        )
    except ValidationError as e:
        raise IncidentError(
            "; ".join(
                f"{'.'.join(map(str, err['loc'])) or 'override'}: "
                f"{str(err['msg']).removeprefix('Value error, ')}"
                for err in e.errors()
            )
        ) from None
    problems = override_problems(strategy, ov, kind, kind)
    if problems:
        raise IncidentError("; ".join(f"{p.path}: {p.reason}" for p in problems))
    return ov


def override_level(ov: Override, design: LightingClass) -> int:
    """The arc level ``ov`` asks of a luminaire with ``design`` class."""
    if ov.off:
        return 0
    if ov.lighting_class is not None:
        return class_level(design, ov.lighting_class)
    assert ov.level_percent is not None
    return arc_level_at_least(ov.level_percent)


def override_commands(strategy: Strategy, ov: Override) -> dict[str, list[dict[str, Any]]]:
    """Per gateway, the ``override`` command args that carry out ``ov``.

    One command per (gateway, arc level): ``{"override": <Override JSON>, "id", "level",
    "until_ms", "luminaires", "mode"}``; ``mode`` is ``raise`` for an incident (never lowers)
    and ``set`` otherwise. ``id`` is the override id, suffixed with ``/<level>`` when a gateway
    needs several levels.
    """
    wanted = set(ov.luminaires) | {
        lum.id for z in ov.zones for lum in strategy.luminaires if lum.zone == z
    }
    by_gw: dict[str, dict[int, list[str]]] = {}
    for lum in strategy.luminaires:
        if lum.id in wanted:
            level = override_level(ov, lum.design_class)
            by_gw.setdefault(lum.gateway, {}).setdefault(level, []).append(lum.id)
    doc = ov.model_dump(mode="json", by_alias=True)
    until = int(ov.expires.timestamp() * 1000)
    mode = "raise" if ov.kind == "incident" else "set"
    out: dict[str, list[dict[str, Any]]] = {}
    for gw, levels in sorted(by_gw.items()):
        out[gw] = [
            {
                "override": doc,
                "id": ov.id if len(levels) == 1 else f"{ov.id}/{level}",
                "level": level,
                "until_ms": until,
                "luminaires": sorted(lums),
                "mode": mode,
            }
            for level, lums in sorted(levels.items())
        ]
    return out


def active_override_args(
    strategy: Strategy, rows: Iterable[Mapping[str, Any]], gateway: str
) -> list[dict[str, Any]]:
    """The ``override`` command args for ``gateway`` of the recorded overrides ``rows``
    (``Registry.incidents(active_at=now)``): what the controller re-sends on every birth."""
    out: list[dict[str, Any]] = []
    for row in rows:
        if gateway not in row["gateways"]:
            continue
        try:
            ov = Override.model_validate(row["override"])
        except ValidationError:
            continue  # recorded by an older version; it stays as it was sent
        out += override_commands(strategy, ov).get(gateway, [])
    return out
