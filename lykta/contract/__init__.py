"""The wire contract between gateways and controllers: topics, message types, codec.

This package is the single source of truth for what crosses MQTT. Both roles import it;
nothing else defines a topic string or a payload field.
"""

from lykta.contract.codec import ContractError, build_command, decode, encode, schema
from lykta.contract.messages import (
    COMMAND_TYPES,
    AlarmNotice,
    Basis,
    CancelOverrideArgs,
    Command,
    CommandBase,
    CommandName,
    CommandResult,
    Confirm,
    Event,
    EventKind,
    LuminaireReading,
    MeterReading,
    OfflineReason,
    OverrideArgs,
    RebirthArgs,
    ResumeArgs,
    SensorReading,
    State,
    TelemetryBatch,
)
from lykta.contract.program import Program
from lykta.contract.topics import Topic, TopicError, TopicKind

__all__ = [
    "COMMAND_TYPES",
    "AlarmNotice",
    "Basis",
    "CancelOverrideArgs",
    "Command",
    "CommandBase",
    "CommandName",
    "CommandResult",
    "Confirm",
    "ContractError",
    "Event",
    "EventKind",
    "LuminaireReading",
    "MeterReading",
    "OfflineReason",
    "OverrideArgs",
    "Program",
    "RebirthArgs",
    "ResumeArgs",
    "SensorReading",
    "State",
    "TelemetryBatch",
    "Topic",
    "TopicError",
    "TopicKind",
    "build_command",
    "decode",
    "encode",
    "schema",
]
