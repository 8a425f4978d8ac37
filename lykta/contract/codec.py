"""Encode and strictly decode contract messages (msgspec: fast on the ingest hot path)."""

from __future__ import annotations

import inspect
from types import UnionType
from typing import Any, TypeVar, overload

import msgspec

from lykta.contract.messages import (
    AlarmNotice,
    Command,
    CommandResult,
    Confirm,
    Event,
    State,
    TelemetryBatch,
)
from lykta.contract.program import Program
from lykta.contract.topics import CONTROLLER_ID, ROOT, TopicKind

T = TypeVar("T")
Buffer = bytes | bytearray | memoryview | str  # what msgspec decodes (aiomqtt gives bytes)

PAYLOAD_TYPES: dict[TopicKind, type | UnionType] = {
    TopicKind.STATE: State,
    TopicKind.TELEMETRY: TelemetryBatch,
    TopicKind.EVENT: Event,
    TopicKind.PROGRAM: Program,
    TopicKind.CMD: Command,
    TopicKind.CMD_RES: CommandResult,
    TopicKind.CONFIRM: Confirm,
}

_decoders: dict[Any, msgspec.json.Decoder] = {  # keyed by type or union (Command)
    t: msgspec.json.Decoder(t) for t in PAYLOAD_TYPES.values()
}
_encoder = msgspec.json.Encoder()


class ContractError(ValueError):
    """A payload that does not follow the contract.

    ``field`` is a JSONPath-like location (``$.luminaires[3].level``) or ``$`` when the
    payload is not even JSON; ``reason`` says what is wrong.
    """

    def __init__(self, message_type: str, field: str, reason: str) -> None:
        self.message_type = message_type
        self.field = field
        self.reason = reason
        super().__init__(f"{message_type}: {field}: {reason}")


def encode(message: msgspec.Struct) -> bytes:
    """Serialise a contract message to compact JSON bytes."""
    return _encoder.encode(message)


@overload
def decode(payload: Buffer, message_type: type[T]) -> T: ...
@overload
def decode(payload: Buffer, message_type: UnionType) -> Any: ...  # Command: annotate the result


def decode(payload: Buffer, message_type: Any) -> Any:
    """Decode ``payload`` as ``message_type``; raise :class:`ContractError` on any problem."""
    dec = _decoders.get(message_type)
    if dec is None:
        dec = _decoders[message_type] = msgspec.json.Decoder(message_type)
    try:
        return dec.decode(payload)
    except msgspec.ValidationError as e:
        field, reason = _split(str(e))
        raise ContractError(_name(message_type), field, reason) from None
    except msgspec.DecodeError as e:
        raise ContractError(_name(message_type), "$", f"not valid JSON ({e})") from None
    except RecursionError:  # a free-form field ("detail") nested without end
        raise ContractError(_name(message_type), "$", "nested too deeply") from None


def _name(message_type: Any) -> str:
    return "Command" if message_type is Command else getattr(message_type, "__name__", "message")


def build_command(name: str, args: Any, **fields: Any) -> Command:
    """The command ``name`` with ``args`` (a dict or an args struct) validated against the
    contract's type for that name; raise :class:`ContractError` naming the field."""
    if isinstance(args, msgspec.Struct):
        args = msgspec.to_builtins(args)
    try:
        return msgspec.convert({"name": str(name), "args": args, **fields}, Command)
    except msgspec.ValidationError as e:
        field, reason = _split(str(e))
        raise ContractError("Command", field, reason) from None


def decode_for(kind: TopicKind, payload: Buffer) -> Any:
    """Decode a payload received on a topic of ``kind``."""
    return decode(payload, PAYLOAD_TYPES[kind])


def _split(msg: str) -> tuple[str, str]:
    # msgspec says "Expected `int`, got `str` - at `$.seq`", and for a bad mapping key
    # "... - at `key` in `$.zone_steps`"
    if " - at `" in msg:
        reason, _, where = msg.rpartition(" - at `")
        where = where.rstrip("`")
        if where.startswith("key` in `"):
            return where.removeprefix("key` in `") + " (key)", reason
        return where, reason
    return "$", msg


def schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of every payload, keyed by topic."""
    topics = {f"{ROOT}/{{site}}/{{gateway}}/{k.value}": t for k, t in PAYLOAD_TYPES.items()}
    topics[f"{ROOT}/{{site}}/{CONTROLLER_ID}/{TopicKind.STATE.value}"] = State
    topics[f"{ROOT}/{{site}}/{CONTROLLER_ID}/{TopicKind.EVENT.value}"] = AlarmNotice
    schemas, components = msgspec.json.schema_components(list(topics.values()))
    # msgspec releases differ in how they dedent docstrings; the published schema must not.
    schemas, components = _clean_descriptions(schemas), _clean_descriptions(components)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Lykta wire contract v1",
        "topics": dict(zip(topics, schemas, strict=True)),
        "$defs": components,
    }


def _clean_descriptions(node: Any) -> Any:
    """Every ``description`` in a schema tree, dedented the same way whatever msgspec did."""
    if isinstance(node, dict):
        return {
            k: inspect.cleandoc(v) if k == "description" and isinstance(v, str)
            else _clean_descriptions(v)
            for k, v in node.items()
        }
    if isinstance(node, list | tuple):
        return [_clean_descriptions(v) for v in node]
    return node
