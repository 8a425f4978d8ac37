"""The wire contract between gateways and controllers: topics, message types, codec.

This package is the single source of truth for what crosses MQTT. Both roles import it;
nothing else defines a topic string or a payload field.
"""

from lykta.contract.codec import ContractError, decode, encode, schema
from lykta.contract.messages import (
    AlarmNotice,
    Basis,
    Command,
    CommandName,
    CommandResult,
    Confirm,
    Event,
    EventKind,
    LuminaireReading,
    MeterReading,
    SensorReading,
    State,
    TelemetryBatch,
)
from lykta.contract.program import Program
from lykta.contract.topics import Topic, TopicError, TopicKind

__all__ = [
    "AlarmNotice",
    "Basis",
    "Command",
    "CommandName",
    "CommandResult",
    "Confirm",
    "ContractError",
    "Event",
    "EventKind",
    "LuminaireReading",
    "MeterReading",
    "Program",
    "SensorReading",
    "State",
    "TelemetryBatch",
    "Topic",
    "TopicError",
    "TopicKind",
    "decode",
    "encode",
    "schema",
]
