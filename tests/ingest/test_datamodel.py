"""Contract messages become the lines ``docs/data-model.md`` documents."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from controller import datamodel as dm
from controller.compliance import GatewayMinute, LuminaireMinute, LuminaireState, ZoneMinute
from controller.influx_writer import InfluxConfig, InfluxWriter
from controller.lineprotocol import encode_line
from lykta.contract import (
    Basis,
    Event,
    EventKind,
    LuminaireReading,
    MeterReading,
    SensorReading,
    State,
    TelemetryBatch,
    decode,
    encode,
)
from lykta.stack import StackInfo, influx_query

ids = st.text(st.sampled_from("abcXYZ019 ,=\\\"Öå_-."), min_size=1, max_size=10)
ms = st.integers(0, 2**42)
pos = st.floats(0, 1e6, allow_nan=False)
values = st.dictionaries(ids, st.floats(allow_nan=False, allow_infinity=False), max_size=4)

luminaires = st.builds(
    LuminaireReading,
    id=ids,
    ts=ms,
    level=st.integers(0, 254),
    power_w=st.none() | pos,
    energy_wh=st.none() | pos,
    basis=st.sampled_from(Basis),
    status=st.integers(0, 255),
    temperature_c=st.none() | st.floats(-40, 120),
)
batches = st.builds(
    TelemetryBatch,
    seq=st.integers(0, 1000),
    ts=ms,
    luminaires=st.lists(luminaires, max_size=5),
    meters=st.lists(st.builds(MeterReading, device=ids, ts=ms, values=values), max_size=3),
    sensors=st.lists(
        st.builds(SensorReading, device=ids, ts=ms, kind=ids, values=values), max_size=3
    ),
)


def _documented(site: str, gw: str, b: TelemetryBatch, placement: dict) -> list[str]:
    """The data model as documented, spelled out with the generic encoder."""
    out = []
    for r in b.luminaires:
        zone, group = placement.get(r.id, (None, None))
        tags = {"site": site, "gateway": gw, "luminaire": r.id, "zone": zone, "group": group}
        est = "_estimated" if r.basis == "estimated" else ""
        fields = {
            "level": r.level,
            f"power{est}_w": None if r.power_w is None else float(r.power_w),
            f"energy{est}_wh": None if r.energy_wh is None else float(r.energy_wh),
            "status": r.status,
            "temperature_c": None if r.temperature_c is None else float(r.temperature_c),
        }
        out.append(encode_line("luminaire", tags, fields, r.ts))
    for m in b.meters:
        vals = {k: float(v) for k, v in m.values.items()}  # always floats, never "i"
        out.append(encode_line("meter", {"site": site, "gateway": gw, "device": m.device},
                               vals, m.ts))
    for s in b.sensors:
        tags = {"site": site, "gateway": gw, "device": s.device, "kind": s.kind}
        out.append(encode_line("sensor", tags, {k: float(v) for k, v in s.values.items()},
                               s.ts))
    return [line for line in out if line]


@settings(max_examples=150, deadline=None)
@given(batch=batches, zone=st.none() | ids, group=st.none() | ids)
def test_telemetry_lines_follow_the_documented_model(batch: TelemetryBatch, zone, group):
    # Invariant: the hot path's hand-formatted lines equal the generic encoder applied to the
    # documented tags and fields, with and without registry placement, after a JSON round trip.
    batch = decode(encode(batch), TelemetryBatch)
    placement = {r.id: (zone, group) for r in batch.luminaires[::2]}
    for pl in ({}, placement):
        assert dm.telemetry_lines("norrkoping", "gw-1", batch, placement=pl) == _documented(
            "norrkoping", "gw-1", batch, pl
        )


def test_tags_are_bounded_and_units_are_in_field_names():
    b = TelemetryBatch(
        seq=1,
        ts=5,
        luminaires=[LuminaireReading(id="L1", ts=5, level=254, power_w=40, energy_wh=1.5)],
    )
    (line,) = dm.telemetry_lines("s", "g", b, placement={"L1": ("Östra Promenaden", "3")})
    assert line == (
        "luminaire,gateway=g,group=3,luminaire=L1,site=s,zone=Östra\\ Promenaden "
        "energy_wh=1.5,level=254i,power_w=40,status=0i 5"
    )
    ev = Event(ts=7, kind=EventKind.PRESENCE, source="pir-2", detail={"count": 3})
    assert dm.event_lines("s", "g", ev) == [
        'event,gateway=g,kind=presence,site=s,source=pir-2 detail="{\\"count\\":3}" 7'
    ]
    will = State(online=False, bdseq=4)
    assert dm.state_lines("s", "g", will, received_ms=99) == [
        "gateway_state,gateway=g,site=s bdseq=4i,online=false 99"
    ]
    assert dm.alarm_lines(
        "s", kind="lamp_failure", source="L1", priority=1, active=True, ts=8, zone="z"
    ) == ['alarm,kind=lamp_failure,priority=1,site=s,source=L1,zone=z active=true,message="" 8']


async def test_every_measurement_is_accepted_by_influxdb(stack: StackInfo, influx_db: str):
    b = TelemetryBatch(
        seq=1,
        ts=1_700_000_000_000,
        luminaires=[
            LuminaireReading(id=f"L{i}", ts=1_700_000_000_000 + i, level=200, power_w=31.5,
                             energy_wh=10.0 * i, status=2 if i == 3 else 0, temperature_c=21.5)
            for i in range(10)
        ],
        meters=[MeterReading(device="meter-1", ts=1_700_000_000_000,
                             values={"voltage_v": 231.2, "energy_kwh": 1200.0})],
        sensors=[SensorReading(device="pir-1", ts=1_700_000_000_000, kind="presence",
                               values={"count": 4.0})],
    )
    lines = dm.telemetry_lines("nkpg", "gw 1", b, placement={"L3": ("park", "2")})
    lines += dm.event_lines("nkpg", "gw 1", Event(ts=1_700_000_000_001,
                                                  kind=EventKind.LAMP_FAILURE, source="L3"))
    lines += dm.state_lines("nkpg", "gw 1", State(online=True, bdseq=1, version="0.1"),
                            received_ms=1_700_000_000_002)
    lines += dm.alarm_lines("nkpg", kind="lamp_failure", source="L3", priority=1, active=True,
                            ts=1_700_000_000_003, gateway="gw 1", zone="park", message="lamp")
    lines += dm.zone_minute_lines("nkpg", [ZoneMinute(
        zone="park", ts=1_700_000_000_004, safety_route=True, luminaires=10, lit=True,
        answering=9, not_answering=1, dark=1, failed=1, level_pct=40.0, expected_pct=42.5,
        floor_pct=20.0, presence=3, reactions=2, boosted=8)])  # fmt: skip
    lines += dm.gateway_minute_lines("nkpg", [GatewayMinute(
        gateway="gw 1", ts=1_700_000_000_004, zone="park", online=True, luminaires=10,
        answering=9, readings=120, last_seen_s=0.5, program_ok=True)])  # fmt: skip
    lines += dm.luminaire_minute_lines("nkpg", [LuminaireMinute(
        luminaire="L3", ts=1_700_000_000_004, zone="park", gateway="gw 1",
        state=LuminaireState.FAILED, level_pct=40.0, latitude=58.59, longitude=16.18)])  # fmt: skip
    async with InfluxWriter(InfluxConfig(url=stack.influx_url, database=influx_db)) as w:
        await w.write(lines)
        await w.flush()
        assert w.stats.lines_dropped == 0
    q = influx_query(
        stack.influx_url,
        'SELECT "power_w", "status" FROM "luminaire" WHERE "zone" = \'park\'', influx_db,
    )
    assert q["results"][0]["series"][0]["values"] == [[1_700_000_000_003, 31.5, 2]]
    for m in dm.MEASUREMENTS:
        got = influx_query(stack.influx_url, f'SELECT * FROM "{m}"', influx_db)["results"][0]
        assert got.get("series"), f"nothing stored in {m}"


def test_non_finite_values_are_left_out_like_point_does():
    # Structs built in Python (not decoded from JSON) can hold inf/NaN: those fields are left
    # out, as Point leaves them out, rather than producing a line InfluxDB would refuse.
    inf, nan = float("inf"), float("nan")
    b = TelemetryBatch(
        seq=1,
        ts=1,
        luminaires=[
            LuminaireReading(id="L1", ts=1, level=1, power_w=inf, energy_wh=2, temperature_c=3),
            LuminaireReading(id="L2", ts=2, level=1, power_w=1, energy_wh=2, temperature_c=nan),
        ],
        meters=[MeterReading(device="m", ts=3, values={"a_v": nan, "b_a": 1})],
    )
    assert dm.telemetry_lines("s", "g", b) == _documented("s", "g", b, {})
    assert "inf" not in "".join(dm.telemetry_lines("s", "g", b))
