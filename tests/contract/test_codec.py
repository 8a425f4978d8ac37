"""The wire contract: every message round-trips; garbage always gives a typed error."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lykta.contract import (
    Basis,
    CancelOverrideArgs,
    CommandResult,
    ContractError,
    Event,
    EventKind,
    LuminaireReading,
    MeterReading,
    OverrideArgs,
    RebirthArgs,
    SensorReading,
    State,
    TelemetryBatch,
    Topic,
    TopicError,
    TopicKind,
    decode,
    encode,
    schema,
)
from lykta.contract.codec import PAYLOAD_TYPES, _name, decode_for
from lykta.contract.messages import (
    MAX_ADAPTIVE_STEP,
    MAX_ZONES,
    CancelOverrideCommand,
    OverrideCommand,
    OverrideInfo,
    RebirthCommand,
    ResumeCommand,
)

ms = st.integers(0, 2**50)
ids = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
nonneg = st.floats(0, 1e9, allow_nan=False)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), finite, st.text(max_size=10)
)
json_values = st.recursive(
    json_scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=8,
)

luminaire = st.builds(
    LuminaireReading,
    id=ids,
    ts=ms,
    level=st.integers(0, 254),
    power_w=st.none() | nonneg,
    energy_wh=st.none() | nonneg,
    basis=st.sampled_from(Basis),
    status=st.integers(0, 255),
    temperature_c=st.none() | finite,
)
meter = st.builds(MeterReading, device=ids, ts=ms, values=st.dictionaries(ids, finite, max_size=5))
sensor = st.builds(
    SensorReading, device=ids, ts=ms, kind=ids, values=st.dictionaries(ids, finite, max_size=3)
)
command_fields = {
    "id": ids,
    "site": ids,
    "gateway": ids,
    "counter": st.integers(1, 2**62),
    "issued_ts": ms,
    "expires_ts": ms,
    "signature": st.none() | st.text(max_size=88),
}
lum_ids = st.lists(ids, max_size=5)
override_info = st.builds(
    OverrideInfo, id=ids, kind=st.just("incident"), zones=lum_ids, expires=st.text(max_size=30)
)
override_args = st.one_of(
    st.builds(OverrideArgs, level=st.integers(0, 254), until_ms=ms, luminaires=lum_ids,
              mode=st.sampled_from(["raise", "set"]), id=st.none() | ids),
    st.builds(OverrideArgs, level=st.integers(0, 254), until_ms=ms, zone=ids,
              override=st.none() | override_info),
)  # fmt: skip
commands = st.one_of(
    st.builds(RebirthCommand, args=st.builds(RebirthArgs, missing_from=st.none() | ms,
                                             missing_to=st.none() | ms), **command_fields),
    st.builds(ResumeCommand, **command_fields),
    st.builds(OverrideCommand, args=override_args, **command_fields),
    st.builds(CancelOverrideCommand, args=st.builds(CancelOverrideArgs, id=ids),
              **command_fields),
)
messages = st.one_of(
    st.builds(
        State,
        online=st.booleans(),
        bdseq=st.integers(0, 2**40),
        ts=st.none() | ms,
        version=st.none() | ids,
        program_hash=st.none() | ids,
        luminaires=st.none() | st.integers(0, 10_000),
    ),
    st.builds(
        TelemetryBatch,
        seq=st.integers(0, 2**40),
        ts=ms,
        luminaires=st.lists(luminaire, max_size=5),
        meters=st.lists(meter, max_size=3),
        sensors=st.lists(sensor, max_size=3),
        zone_steps=st.dictionaries(ids, st.integers(0, MAX_ADAPTIVE_STEP), max_size=3),
    ),
    st.builds(
        Event,
        ts=ms,
        kind=st.sampled_from(EventKind),
        source=ids,
        detail=st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    ),
    commands,
    st.builds(
        CommandResult,
        id=ids,
        ts=ms,
        ok=st.booleans(),
        detail=st.text(max_size=20),
        data=st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    ),
)


@settings(max_examples=300, deadline=None)
@given(messages)
def test_every_message_round_trips(message: msgspec.Struct) -> None:
    assert decode(encode(message), type(message)) == message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(list(PAYLOAD_TYPES)))
def test_random_bytes_never_crash_the_decoder(payload: bytes, kind: TopicKind) -> None:
    try:
        decode_for(kind, payload)
    except ContractError as e:
        assert e.field.startswith("$") and e.reason


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from(list(PAYLOAD_TYPES)))
def test_random_json_gives_a_message_or_a_typed_error(value: object, kind: TopicKind) -> None:
    try:
        out = decode_for(kind, json.dumps(value))
    except ContractError as e:
        assert e.message_type == _name(PAYLOAD_TYPES[kind])
        assert e.field.startswith("$")
    else:
        assert isinstance(out, PAYLOAD_TYPES[kind])


def test_error_names_the_field() -> None:
    bad = (
        b'{"seq": 1, "ts": 5, "luminaires": [{"id": "a", "ts": 1, "level": 300,'
        b' "power_w": 1, "energy_wh": 2}]}'
    )
    with pytest.raises(ContractError) as e:
        decode(bad, TelemetryBatch)
    assert e.value.field == "$.luminaires[0].level"
    assert "254" in e.value.reason


def test_zone_steps_are_off_the_wire_when_empty_and_bounded_when_present() -> None:
    """A batch with no zone stepped down is what it was before the field existed; steps
    outside 0..MAX_ADAPTIVE_STEP (the strategy's own limit), a bad zone id or too many zones
    are rejected naming the field."""
    from lykta.strategy.adaptive import MAX_STEP

    assert MAX_STEP == MAX_ADAPTIVE_STEP  # one number for the strategy file and the wire
    assert b"zone_steps" not in encode(TelemetryBatch(seq=1, ts=5))
    assert decode(b'{"seq": 1, "ts": 5}', TelemetryBatch).zone_steps == {}
    ok = {"seq": 1, "ts": 5, "zone_steps": {"ektorp": MAX_ADAPTIVE_STEP}}
    assert decode(json.dumps(ok), TelemetryBatch).zone_steps == {"ektorp": MAX_ADAPTIVE_STEP}
    bad: list[tuple[object, str, str]] = [
        ({"ektorp": -1}, "$.zone_steps[...]", ">= 0"),
        ({"ektorp": MAX_ADAPTIVE_STEP + 1}, "$.zone_steps[...]", f"<= {MAX_ADAPTIVE_STEP}"),
        ({"ektorp": 1.5}, "$.zone_steps[...]", "int"),
        ({"ektorp": True}, "$.zone_steps[...]", "int"),
        ({"": 1}, "$.zone_steps (key)", "length >= 1"),
        ({f"z{i}": 1 for i in range(MAX_ZONES + 1)}, "$.zone_steps", f"<= {MAX_ZONES}"),
        ([["ektorp", 1]], "$.zone_steps", "object"),
    ]
    for steps, where, reason in bad:
        with pytest.raises(ContractError) as e:
            decode(json.dumps({"seq": 1, "ts": 5, "zone_steps": steps}), TelemetryBatch)
        assert (e.value.message_type, e.value.field) == ("TelemetryBatch", where), steps
        assert reason in e.value.reason, (steps, e.value.reason)


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ContractError, match="unknown field"):
        decode(b'{"online": true, "bdseq": 0, "surprise": 1}', State)


@given(st.sampled_from(list(TopicKind)))
def test_topics_round_trip(kind: TopicKind) -> None:
    t = Topic("norrkoping", "gw-01", kind)
    assert Topic.parse(str(t)) == t


@pytest.mark.parametrize(
    "bad",
    [
        "lykta/v1/x",
        "other/v1/a/b/state",
        "lykta/v1/a/b/nope",
        "lykta/v1/a+/b/state",
        "lykta/v1/a/#/state",
    ],
)
def test_bad_topics_are_rejected(bad: str) -> None:
    with pytest.raises(TopicError):
        Topic.parse(bad)


def test_schema_covers_every_topic() -> None:
    s = schema()
    assert len(s["topics"]) == len(PAYLOAD_TYPES) + 2  # + the controller's state and alarms
    assert "TelemetryBatch" in s["$defs"] and "Program" in s["$defs"]


def test_the_published_schema_in_docs_is_current() -> None:
    from pathlib import Path

    published = json.loads(
        (Path(__file__).parents[2] / "docs" / "contract.schema.json").read_text()
    )
    assert published == json.loads(json.dumps(schema())), (
        "docs/contract.schema.json is stale: "
        "run `lykta contract schema -o docs/contract.schema.json`"
    )


@pytest.mark.parametrize("kind", list(TopicKind))
@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_a_deeply_nested_payload_is_a_typed_error(kind: TopicKind, opener: bytes) -> None:
    """Free-form fields (``args``, ``detail``) take any JSON: nesting without end must be a
    ContractError like any other bad payload, not a RecursionError that ends a loop."""
    depth = 100_000
    closer = b"]" if opener == b"[" else b"}"
    nested = opener * depth + b"1" + closer * depth
    for payload in (
        b'{"id":"c","name":"override","issued_ts":1,"expires_ts":2,"args":{"x":' + nested + b"}}",
        b'{"ts":1,"kind":"presence","source":"s","detail":{"x":' + nested + b"}}",
    ):
        with pytest.raises(ContractError):
            decode_for(kind, payload)
