"""Typed payloads for every topic except ``program`` (see :mod:`lykta.contract.program`).

Timestamps are integers, milliseconds since the epoch, UTC. Unknown fields are rejected: a
gateway and controller that disagree about the contract should find out loudly.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

import msgspec

Ms = Annotated[int, msgspec.Meta(ge=0, description="milliseconds since the epoch, UTC")]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
ArcLevel = Annotated[int, msgspec.Meta(ge=0, le=254, description="DALI arc power level")]


class Base(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """Common settings of all contract messages."""


class State(Base):
    """Birth (``online=True``, published by the gateway) or will/death (``online=False``).

    The birth repeats the ``bdseq`` of the will registered for the same connection, so the
    controller can tell a stale death from a current one (Sparkplug B style).
    """

    online: bool
    bdseq: Annotated[int, msgspec.Meta(ge=0)]
    ts: Ms | None = None
    version: str | None = None
    program_hash: str | None = None
    luminaires: Annotated[int, msgspec.Meta(ge=0)] | None = None


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
    a gap tells the controller it missed something and should ask for a rebirth."""

    seq: Annotated[int, msgspec.Meta(ge=0)]
    ts: Ms
    luminaires: list[LuminaireReading] = []
    meters: list[MeterReading] = []
    sensors: list[SensorReading] = []

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


class Command(Base):
    """A command to a gateway. Also sent with MQTT message expiry; ``expires_ts`` is checked
    by the gateway too, so a command that sat in a queue is never executed late."""

    id: Id
    name: Id
    issued_ts: Ms
    expires_ts: Ms
    args: dict[str, Any] = {}


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
