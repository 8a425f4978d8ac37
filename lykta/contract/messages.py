"""Typed payloads for every topic except ``program`` (see :mod:`lykta.contract.program`).

Timestamps are integers, milliseconds since the epoch, UTC. Unknown fields are rejected: a
gateway and controller that disagree about the contract should find out loudly.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

import msgspec

Ms = Annotated[int, msgspec.Meta(ge=0, description="milliseconds since the epoch, UTC")]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
ArcLevel = Annotated[int, msgspec.Meta(ge=0, le=254, description="DALI arc power level")]

MAX_ADAPTIVE_STEP = 5
"""The most lighting classes traffic can step a zone down (P1 -> P6, the longest EN 13201
series). Defined here, not in :mod:`lykta.strategy.adaptive` (which re-exports it as
``MAX_STEP`` for the strategy model): the strategy imports the contract, never the reverse, so
the wire and the strategy file share this one number."""
AdaptiveStep = Annotated[
    int, msgspec.Meta(ge=0, le=MAX_ADAPTIVE_STEP, description="lighting classes stepped down")
]
MAX_ZONES = 256
"""The most zones one message names (an override's zones, a batch's ``zone_steps``)."""


class Base(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """Common settings of all contract messages."""


class OfflineReason(enum.StrEnum):
    """Why a gateway said it is going offline (absent from a will: the link was lost)."""

    SHUTDOWN = "shutdown"  # a planned stop (systemctl stop, Ctrl-C): not an outage


class State(Base):
    """Birth (``online=True``, published by the gateway) or will/death (``online=False``).

    The birth repeats the ``bdseq`` of the will registered for the same connection, so the
    controller can tell a stale death from a current one (Sparkplug B style). A death the
    gateway publishes itself on a clean stop carries ``reason: "shutdown"``; the broker's will
    (crash, power cut, lost link) carries none.
    """

    online: bool
    bdseq: Annotated[int, msgspec.Meta(ge=0)]
    ts: Ms | None = None
    version: str | None = None
    program_hash: str | None = None
    luminaires: Annotated[int, msgspec.Meta(ge=0)] | None = None
    reason: OfflineReason | None = None


class Basis(enum.StrEnum):
    """How a luminaire's ``power_w`` and ``energy_wh`` were obtained."""

    MEASURED = "measured"  # read from the gear (D4i memory bank 202) or a meter
    ESTIMATED = "estimated"  # computed (e.g. rated power x level); never judged by alarms


class LuminaireReading(Base):
    """One luminaire's state at ``ts``.

    ``power_w`` and ``energy_wh`` are absent when nothing measured them (gear without D4i, or
    before the gateway's first D4i read): unknown is not zero. ``basis`` says how the values
    that are present were obtained.
    """

    id: Id
    ts: Ms
    level: ArcLevel
    power_w: Annotated[float, msgspec.Meta(ge=0)] | None = None
    energy_wh: Annotated[float, msgspec.Meta(ge=0)] | None = None
    basis: Basis = Basis.MEASURED
    status: Annotated[int, msgspec.Meta(ge=0, le=255, description="DALI status byte")] = 0
    temperature_c: float | None = None


class MeterReading(Base):
    """Values read from one meter (Modbus) at ``ts``; keys are the profile's field names."""

    device: Id
    ts: Ms
    values: dict[str, float]


class SensorReading(Base):
    """Values from a presence/lux sensor at ``ts``."""

    device: Id
    ts: Ms
    kind: Id
    values: dict[str, float]


class TelemetryBatch(Base):
    """A batch of readings. ``seq`` increases by one per batch per gateway connection life;
    a gap tells the controller it missed something and should ask for a rebirth.

    ``zone_steps``: per zone, the lighting classes the gateway's traffic-adaptive dimming
    steps it down at ``ts`` (:mod:`lykta.strategy.adaptive`); only zones stepped down are
    listed, so absent (or an absent zone) means no step. The controller judges the level the
    zone should have with them."""

    seq: Annotated[int, msgspec.Meta(ge=0)]
    ts: Ms
    luminaires: list[LuminaireReading] = []
    meters: list[MeterReading] = []
    sensors: list[SensorReading] = []
    zone_steps: Annotated[dict[Id, AdaptiveStep], msgspec.Meta(max_length=MAX_ZONES)] = {}

    def reading_count(self) -> int:
        """Number of readings (luminaire + meter + sensor) in this batch."""
        return len(self.luminaires) + len(self.meters) + len(self.sensors)


class EventKind(enum.StrEnum):
    """What happened at the gateway."""

    PRESENCE = "presence"
    LAMP_FAILURE = "lamp_failure"
    LAMP_OK = "lamp_ok"
    DALI_COMM_LOSS = "dali_comm_loss"
    DALI_COMM_OK = "dali_comm_ok"
    MODBUS_OFFLINE = "modbus_offline"
    MODBUS_ONLINE = "modbus_online"
    MODBUS_ERROR = "modbus_error"
    PROGRAM_APPLIED = "program_applied"
    PROGRAM_REJECTED = "program_rejected"
    PROGRAM_EXPIRED = "program_expired"  # the gateway runs its fail-safe until a new one
    OVERRIDE_STARTED = "override_started"
    OVERRIDE_ENDED = "override_ended"
    SEQ_GAP = "seq_gap"
    REBIRTH = "rebirth"
    OUTBOX_DROPPED = "outbox_dropped"  # the outbox was full: its oldest telemetry was dropped


class Event(Base):
    """Something that happened, with the where (``source``) and the detail.

    A gateway numbers its events (``seq``, +1 per event, its own counter apart from the
    telemetry ``seq``) so a controller can confirm them (:class:`Confirm`); events made by a
    controller itself carry none."""

    ts: Ms
    kind: EventKind
    source: Id
    detail: dict[str, Any] = {}
    seq: Annotated[int, msgspec.Meta(ge=0)] | None = None


class CommandName(enum.StrEnum):
    """Commands a gateway understands (``Command.name``); see docs/contract.md."""

    REBIRTH = "rebirth"  # publish a fresh birth
    RESUME = "resume"  # a controller is subscribed: send the outbox
    OVERRIDE = "override"  # incident / maintenance / event override
    CANCEL_OVERRIDE = "cancel_override"


MAX_OVERRIDE_LUMINAIRES = 4096  # 64 DALI short addresses × 64 buses: more than a cabinet drives
MAX_OVERRIDE_ZONES = MAX_ZONES
Text = Annotated[str, msgspec.Meta(max_length=1024)]


class RebirthArgs(Base):
    """``rebirth``: the controller saw a ``seq`` gap (``missing_from``..``missing_to``)."""

    missing_from: Annotated[int, msgspec.Meta(ge=0)] | None = None
    missing_to: Annotated[int, msgspec.Meta(ge=0)] | None = None


class ResumeArgs(Base):
    """``resume`` takes no arguments."""


class OverrideInfo(Base, kw_only=True):
    """The operator's override as the controller's strategy states it (for the gateway's log
    and events); the gateway executes the level, luminaires and expiry of :class:`OverrideArgs`."""

    id: Id
    kind: Annotated[str, msgspec.Meta(max_length=32)]
    zones: Annotated[list[Id], msgspec.Meta(max_length=MAX_OVERRIDE_ZONES)] = []
    luminaires: Annotated[list[Id], msgspec.Meta(max_length=MAX_OVERRIDE_LUMINAIRES)] = []
    lighting_class: Annotated[str, msgspec.Meta(max_length=8)] | None = msgspec.field(
        default=None, name="class"
    )
    level_percent: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    off: bool = False
    starts: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    expires: Annotated[str, msgspec.Meta(max_length=64)]


class OverrideArgs(Base, kw_only=True):
    """``override``: hold ``luminaires`` (or every luminaire of ``zone``) at arc ``level`` until
    ``until_ms``; ``raise`` never lowers, ``set`` replaces the schedule (never below a floor)."""

    id: Id | None = None
    level: ArcLevel
    until_ms: Ms
    luminaires: Annotated[list[Id], msgspec.Meta(max_length=MAX_OVERRIDE_LUMINAIRES)] | None = None
    zone: Id | None = None
    mode: Literal["raise", "set"] = "raise"
    override: OverrideInfo | None = None

    def __post_init__(self) -> None:
        if (self.luminaires is None) == (self.zone is None):
            raise ValueError("give either luminaires or zone")


class CancelOverrideArgs(Base):
    """``cancel_override``: end override ``id`` early."""

    id: Id


class CommandBase(Base, tag_field="name", kw_only=True):
    """Fields every command has; the concrete commands below add typed ``args``.

    ``site``, ``gateway`` and ``counter`` are covered by the controller's Ed25519
    ``signature`` (:func:`lykta.signing.sign_command`): the gateway refuses a command for
    another gateway, a ``counter`` it has already accepted, and one past ``expires_ts``.
    ``counter`` increases per gateway at each controller (``max(last + 1, now in ms)``,
    persisted), so it keeps increasing across controller restarts and between controllers.
    Also sent with MQTT message expiry; ``expires_ts`` is checked by the gateway too, so a
    command that sat in a queue is never executed late.
    """

    id: Id
    site: Id
    gateway: Id
    counter: Annotated[int, msgspec.Meta(ge=1, le=2**62)]
    issued_ts: Ms
    expires_ts: Ms
    signature: Annotated[str, msgspec.Meta(max_length=128)] | None = None

    @property
    def name(self) -> CommandName:
        """The command's name (its tag on the wire)."""
        return CommandName(str(type(self).__struct_config__.tag))


class RebirthCommand(CommandBase, tag=CommandName.REBIRTH.value, kw_only=True):
    """Publish a fresh birth."""

    args: RebirthArgs = msgspec.field(default_factory=RebirthArgs)


class ResumeCommand(CommandBase, tag=CommandName.RESUME.value, kw_only=True):
    """A controller has its subscriptions in place: send the outbox."""

    args: ResumeArgs = msgspec.field(default_factory=ResumeArgs)


class OverrideCommand(CommandBase, tag=CommandName.OVERRIDE.value, kw_only=True):
    """Start (or replace) an override."""

    args: OverrideArgs


class CancelOverrideCommand(CommandBase, tag=CommandName.CANCEL_OVERRIDE.value, kw_only=True):
    """End an override early."""

    args: CancelOverrideArgs


Command = RebirthCommand | ResumeCommand | OverrideCommand | CancelOverrideCommand
"""A command to a gateway: a tagged union on ``name`` with typed, bounded ``args``."""

COMMAND_TYPES: dict[CommandName, type[CommandBase]] = {
    CommandName.REBIRTH: RebirthCommand,
    CommandName.RESUME: ResumeCommand,
    CommandName.OVERRIDE: OverrideCommand,
    CommandName.CANCEL_OVERRIDE: CancelOverrideCommand,
}


class CommandResult(Base):
    """The gateway's answer to :class:`Command` ``id``."""

    id: Id
    ts: Ms
    ok: bool
    detail: str = ""
    data: dict[str, Any] = {}


Seq = Annotated[int, msgspec.Meta(ge=0)]
SeqRange = tuple[Seq, Seq]
"""``[first, last]``, inclusive, ``first <= last``."""
MAX_CONFIRM_RANGES = 4096


class Confirm(Base):
    """Published by a controller on a gateway's ``confirm`` topic (QoS 1, not retained): the
    ``seq`` numbers of that gateway's telemetry batches and events that are now durable (in
    InfluxDB or the controller's disk spool). The gateway keeps every batch and event in its
    outbox until one arrives; ranges are coalesced and inclusive."""

    ts: Ms
    telemetry: Annotated[list[SeqRange], msgspec.Meta(max_length=MAX_CONFIRM_RANGES)] = []
    events: Annotated[list[SeqRange], msgspec.Meta(max_length=MAX_CONFIRM_RANGES)] = []
    controller: Id | None = None

    def __post_init__(self) -> None:
        for first, last in (*self.telemetry, *self.events):
            if first > last:
                raise ValueError(f"range [{first}, {last}] has first > last")


class AlarmNotice(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Published by the controller on ``lykta/v1/{site}/_controller/event`` (QoS 1) when an
    alarm is raised or cleared; ``priority`` 1 is most urgent (safety routes, exposed places).
    Every field is always present (no defaults omitted), so subscribers can switch on ``type``."""

    type: str = "alarm"
    kind: str
    source: str
    gateway: str | None
    zone: str | None
    priority: int
    active: bool
    ts: Ms
    message: str
