"""Admission (pure): limits on what comes from outside, and who may report what."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.admission import Admission, Directory, IngestLimits, Rejected
from lykta.contract import (
    CommandResult,
    Event,
    EventKind,
    LuminaireReading,
    MeterReading,
    SensorReading,
    State,
    TelemetryBatch,
)

NOW = 1_800_000_000_000
LIMITS = IngestLimits()
DIRECTORY = Directory.of([("A1", "gwA"), ("A2", "gwA"), ("B1", "gwB")])
OLDEST = NOW - int(LIMITS.max_age_s * 1000)
NEWEST = NOW + int(LIMITS.max_ahead_s * 1000)

good_ts = st.integers(OLDEST, NEWEST)
bad_ts = st.one_of(st.integers(0, OLDEST - 1), st.integers(NEWEST + 1, 2**53),
                   st.sampled_from([0, 9_000_000_000_000_000]))
good_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}", fullmatch=True)
bad_names = st.one_of(st.just(""), st.text(min_size=1, max_size=8).map(lambda s: s + "\n"),
                      st.from_regex(r"[0-9_][A-Za-z0-9_]{0,5}", fullmatch=True),
                      st.just("a b"), st.just("a,b"), st.just("x" * 65))
bad_ids = st.text(min_size=0, max_size=10).flatmap(
    lambda s: st.sampled_from([s + "\n", s + "\\", " " + s, s + "\x00" + s, s + "\r"])
)


@st.composite
def readings(draw: st.DrawFn, gateway: str) -> tuple[object, bool]:
    """A reading for ``gateway`` and whether admission must keep it."""
    kind = draw(st.sampled_from(["lum", "meter", "sensor"]))
    fault = draw(st.sampled_from([None, "ts", "owner", "id", "field"]))
    ts = draw(bad_ts if fault == "ts" else good_ts)
    if kind == "lum":
        mine = [lid for lid, gw in DIRECTORY.owner.items() if gw == gateway]
        others = [lid for lid, gw in DIRECTORY.owner.items() if gw != gateway] + ["Z9"]
        lid = draw(st.sampled_from(others if fault in ("owner", "id", "field") else mine))
        return LuminaireReading(id=lid, ts=ts, level=draw(st.integers(0, 254))), fault is None
    device = draw(bad_ids) if fault in ("id", "owner") else "meter-1"
    values = draw(st.dictionaries(good_names, st.floats(allow_nan=False), max_size=4))
    if fault == "field":
        values[draw(bad_names)] = 1.0
    if kind == "meter":
        return MeterReading(device=device, ts=ts, values=values), fault is None
    return SensorReading(device=device, ts=ts, kind="lux", values=values), fault is None


@settings(max_examples=300, deadline=None)
@given(gateway=st.sampled_from(["gwA", "gwB"]), data=st.data())
def test_a_batch_keeps_exactly_its_admissible_readings(gateway: str, data: st.DataObject) -> None:
    """Invariant: admission keeps every good reading of a batch (in order) and drops every
    bad one with a reason; a batch with nothing to drop comes back as the same object."""
    drawn = data.draw(st.lists(readings(gateway), max_size=12))
    batch = TelemetryBatch(
        seq=1, ts=NOW,
        luminaires=[r for r, _ in drawn if isinstance(r, LuminaireReading)],
        meters=[r for r, _ in drawn if isinstance(r, MeterReading)],
        sensors=[r for r, _ in drawn if isinstance(r, SensorReading)],
    )  # fmt: skip
    kept, dropped = Admission(LIMITS, DIRECTORY).telemetry(gateway, batch, NOW)
    good = [r for r, ok in drawn if ok]
    got = [*kept.luminaires, *kept.meters, *kept.sensors]
    assert sorted(map(repr, got)) == sorted(map(repr, good))
    assert len(dropped) == len(drawn) - len(good)
    assert all(isinstance(e, Rejected) and e.key for e in dropped)
    if not dropped:
        assert kept is batch


def test_without_a_directory_any_gateway_and_luminaire_is_taken_but_limits_hold() -> None:
    adm = Admission(LIMITS)
    adm.gateway("anything")
    batch = TelemetryBatch(seq=0, ts=NOW, luminaires=[
        LuminaireReading(id="X", ts=NOW, level=1), LuminaireReading(id="Y\n", ts=NOW, level=1),
        LuminaireReading(id="Z", ts=0, level=1)])  # fmt: skip
    kept, dropped = adm.telemetry("anything", batch, NOW)
    assert [r.id for r in kept.luminaires] == ["X"]
    assert sorted(e.key for e in dropped) == ["bad_id", "ts_too_old"]


def test_unknown_gateways_and_foreign_luminaires() -> None:
    adm = Admission(LIMITS, DIRECTORY)
    with pytest.raises(Rejected) as e:
        adm.gateway("gwX")
    assert e.value.key == "unknown_gateway"
    lamp = Event(ts=NOW, kind=EventKind.LAMP_FAILURE, source="A1")
    adm.event("gwA", lamp, NOW)
    with pytest.raises(Rejected) as e:
        adm.event("gwB", lamp, NOW)  # gwB raising lamp_failure on gwA's luminaire
    assert e.value.key == "foreign_luminaire"
    with pytest.raises(Rejected) as e:
        adm.event("gwA", msgspec.structs.replace(lamp, source="nobody"), NOW)
    assert e.value.key == "unknown_luminaire"
    adm.event("gwA", Event(ts=NOW, kind=EventKind.MODBUS_OFFLINE, source="meter-1"), NOW)


def _nested(depth: int) -> object:
    v: object = 1
    for _ in range(depth):
        v = [v]
    return v


@pytest.mark.parametrize(
    ("message", "key"),
    [
        (Event(ts=NOW, kind=EventKind.PRESENCE, source="s", detail={"x": _nested(20)}), "too_deep"),
        (Event(ts=NOW, kind=EventKind.PRESENCE, source="s", detail={"x": "y" * 1_000_000}),
         "string_too_long"),
        (Event(ts=9_000_000_000_000_000, kind=EventKind.PRESENCE, source="s"), "ts_in_future"),
        (Event(ts=0, kind=EventKind.PRESENCE, source="s"), "ts_too_old"),
        (Event(ts=NOW, kind=EventKind.PRESENCE, source="s\n1"), "bad_id"),
        (State(online=True, bdseq=1, version="v" * 5000), "string_too_long"),
        (State(online=True, bdseq=1, ts=NOW + 86_400_000), "ts_in_future"),
        (CommandResult(id="c", ts=NOW, ok=True, data={"d": _nested(9)}), "too_deep"),
    ],
)
def test_free_form_fields_and_timestamps_are_bounded(message: object, key: str) -> None:
    adm = Admission(LIMITS, DIRECTORY)
    check = {Event: lambda m: adm.event("gwA", m, NOW), State: lambda m: adm.state(m, NOW),
             CommandResult: lambda m: adm.command_result(m, NOW)}[type(message)]  # fmt: skip
    with pytest.raises(Rejected) as e:
        check(message)
    assert e.value.key == key


def test_a_retained_birth_may_be_old_and_the_payload_size_is_bounded() -> None:
    adm = Admission(LIMITS, DIRECTORY)
    adm.state(State(online=True, bdseq=1, ts=NOW - 60 * 86_400_000), NOW)  # 60 days: fine
    adm.event("gwA", Event(ts=NOW, kind=EventKind.PRESENCE, source="s",
                           detail={"x": _nested(7)}), NOW)  # fmt: skip
    adm.payload(b"x" * LIMITS.max_payload_bytes)
    with pytest.raises(Rejected) as e:
        adm.payload(b"x" * (LIMITS.max_payload_bytes + 1))
    assert e.value.key == "payload_too_large"
