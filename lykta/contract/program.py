"""The ``program`` message: a compiled, versioned, signed control program for one gateway.

Produced by :func:`lykta.strategy.compile_program`; executed at the gateway by the pure
functions in :mod:`lykta.strategy.execution` (``program_level``, ``enforce_floor``,
``presence_corridor``). A program is valid from ``valid_from`` (inclusive) to ``valid_until``
(exclusive); outside it, or with a bad signature, the gateway runs the fail-safe
(:func:`lykta.strategy.safe_default_level`).

Shape: per DALI group one list of switch points (a schedule step costs one group frame per
(group, level) change); per luminaire its address, position along its zone's path, safety floor
and presence boost levels, and own switch points only where it does not follow a group
(ungrouped, or named by an override); per presence zone shared with other cabinets the
neighbouring gateways and their luminaires near the boundary (``neighbours``). ``adaptive``
lists the zones whose class steps down by counted traffic; their switch points carry the
stepped levels. ``lit`` lists the lit windows: inside them the gateway never drives a
luminaire below its ``floor_level``. ``version`` is a hash of the content; ``signature``
covers :func:`signing_payload` and is set by the controller.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from lykta.contract.messages import MAX_ADAPTIVE_STEP, ArcLevel, Base, Id, Ms

Duration = Annotated[int, msgspec.Meta(ge=0, description="milliseconds")]


class SwitchPoint(Base, kw_only=True):
    """From ``ts`` on, the target is ``level``, reached over ``fade_ms`` (linear in arc level).

    ``adapted[k - 1]`` is the level when traffic steps the zone down ``k`` classes (see
    :class:`AdaptiveRule`); empty where adaptation changes nothing.
    """

    ts: Ms
    level: ArcLevel
    fade_ms: Duration = 0
    adapted: list[ArcLevel] = []


class GroupProgram(Base, kw_only=True):
    """Switch points for one DALI group on one bus; all members share zone and design class."""

    bus: Id
    group: Annotated[int, msgspec.Meta(ge=0, le=15)]
    zone: Id
    design_class: str
    floor_level: ArcLevel
    boost_level: ArcLevel | None = None
    points: list[SwitchPoint]


class LuminaireProgram(Base, kw_only=True):
    """One luminaire: address, place on its zone's path, floor and boost levels.

    ``points`` is empty when the luminaire follows its group's points.
    """

    id: Id
    bus: Id
    short_address: Annotated[int, msgspec.Meta(ge=0, le=63)]
    group: Annotated[int, msgspec.Meta(ge=0, le=15)] | None = None
    zone: Id
    position_m: float
    floor_level: ArcLevel
    boost_level: ArcLevel | None = None
    points: list[SwitchPoint] = []


class PresenceRule(Base, kw_only=True):
    """The light corridor of one zone (see :mod:`lykta.strategy.presence`).

    ``neighbours``: the other gateways driving part of this zone's path where one corridor can
    hold luminaires of both (at most ``ahead + behind`` path places apart). This gateway reads
    their ``presence`` events and lights its own part of each corridor; the broker ACL lets it
    read exactly those gateways' ``event`` topics (``lykta provision neighbours``)."""

    zone: Id
    ahead: Annotated[int, msgspec.Meta(ge=0)]
    behind: Annotated[int, msgspec.Meta(ge=0)]
    hold_ms: Duration
    fade_up_ms: Duration
    fade_down_ms: Duration
    neighbours: list[Id] = []


class NeighbourLuminaire(Base, kw_only=True):
    """A luminaire another gateway drives on this gateway's corridor path, within reach of a
    corridor that also holds luminaires of this gateway. Corridors are computed over these and
    the gateway's own luminaires together, exactly as the preview computes them over the whole
    path; this gateway never commands it (its own gateway does, from the same event)."""

    id: Id
    gateway: Id
    zone: Id
    position_m: float


class AdaptiveThreshold(Base, kw_only=True):
    """While the zone's counted flow is below ``below_per_h`` people per hour: ``step``
    classes down."""

    below_per_h: Annotated[float, msgspec.Meta(gt=0)]
    step: Annotated[int, msgspec.Meta(ge=1, le=MAX_ADAPTIVE_STEP)]


class AdaptiveRule(Base, kw_only=True):
    """Adaptive classes by traffic for one zone (:mod:`lykta.strategy.adaptive`): the gateway
    counts the zone's presence detections over ``window_ms`` and picks the switch points'
    ``adapted`` levels; no count, no adaptation."""

    zone: Id
    window_ms: Annotated[int, msgspec.Meta(gt=0)]
    hysteresis_percent: Annotated[float, msgspec.Meta(ge=0)]
    thresholds: list[AdaptiveThreshold]
    fade_up_ms: Duration
    fade_down_ms: Duration


class LitWindow(Base, kw_only=True):
    """An interval in which the lights are on and safety floors apply."""

    from_ts: Ms
    until_ts: Ms


class LuxRule(Base, kw_only=True):
    """Switch by lux sensor ``sensor``: on below ``on_below_lx``, off above ``off_above_lx``."""

    sensor: Id
    on_below_lx: float
    off_above_lx: float


class Program(Base, kw_only=True):
    """Everything a gateway needs to run autonomously from ``valid_from`` to ``valid_until``."""

    version: str
    site: str
    gateway: str
    created_ts: Ms
    valid_from: Ms
    valid_until: Ms
    latitude: float = 0.0
    longitude: float = 0.0
    timezone: str = "UTC"
    sun_elevation_deg: float = -4.0
    lux: LuxRule | None = None
    safety_routes: list[str] = []
    lit: list[LitWindow] = []
    groups: list[GroupProgram] = []
    luminaires: list[LuminaireProgram] = []
    presence: list[PresenceRule] = []
    adaptive: list[AdaptiveRule] = []
    neighbours: list[NeighbourLuminaire] = []
    signature: str | None = None


_encoder = msgspec.json.Encoder(order="deterministic")


def signing_payload(program: Program) -> bytes:
    """The bytes a signature covers: the program without ``signature``, deterministic JSON."""
    return _encoder.encode(msgspec.structs.replace(program, signature=None))
