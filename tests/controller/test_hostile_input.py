"""Nothing from outside stops ingest: hostile payloads on every subscribed topic of a real
broker, while a gateway's telemetry flows, through the whole controller (admission, alarm
engine, writer, InfluxDB). Ingest never stops, every valid reading is stored, nothing invalid
is stored, and every hostile message is counted."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

import paho.mqtt.client as paho
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from controller.alarms import AlarmKind
from controller.service import ControllerService
from lykta.contract import (
    LuminaireReading,
    MeterReading,
    TelemetryBatch,
    Topic,
    TopicKind,
    encode,
)
from lykta.stack import StackInfo, influx_query
from lykta.strategy import Strategy
from tests.controller.conftest import eventually

GOOD = "gw-soderleden"  # the gateway whose telemetry flows
OTHER = "gw-ektorp"  # a known gateway that sends only hostile messages
KINDS = [TopicKind.TELEMETRY, TopicKind.EVENT, TopicKind.STATE, TopicKind.CMD_RES]


def _now() -> int:
    return int(time.time() * 1000)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _event(source: str, **over: object) -> dict:
    return {"ts": _now(), "kind": "presence", "source": source, **over}


def _reading(lid: str, **over: object) -> dict:
    return {"id": lid, "ts": _now(), "level": 200, "power_w": 30.0, "energy_wh": 1.0, **over}


def _batch(*lums: dict, meters: list[dict] | None = None) -> dict:
    return {"seq": 0, "ts": _now(), "luminaires": list(lums), "meters": meters or []}


unknown_ids = st.from_regex(r"gw-x[a-z0-9]{1,6}", fullmatch=True)


@st.composite
def hostile(draw: st.DrawFn, good_lum: str, other_lum: str) -> tuple[str, str, bytes]:
    """(gateway, topic kind, payload) of a message that must be rejected whole or that
    consists only of readings that must be dropped."""
    case = draw(st.sampled_from([
        "bytes", "json", "deep", "ts_future", "ts_zero", "huge_string", "too_large",
        "empty_field", "newline_id", "foreign_reading", "foreign_event", "unknown_gateway",
        "wrong_topic",
    ]))  # fmt: skip
    kind = draw(st.sampled_from(KINDS))
    gw = draw(st.sampled_from([GOOD, OTHER]))
    if case == "bytes":
        return gw, kind, draw(st.binary(min_size=1, max_size=300))
    if case == "json":  # any JSON at all, but never a valid message of this kind
        value = draw(st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
            | st.text(max_size=8),
            lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c,
                                                                max_size=4),
            max_leaves=12,
        ))  # fmt: skip
        if kind is TopicKind.TELEMETRY and isinstance(value, dict):
            value["seq"] = -1  # an all-defaults batch would be valid
        return gw, kind, json.dumps(value).encode()
    if case == "deep":
        depth = draw(st.integers(9, 5000))
        if kind is TopicKind.CMD_RES:
            body = f'{{"id":"c","ts":{_now()},"ok":true,"data":{{"x":{_nested(depth)}}}}}'
        else:
            kind = TopicKind.EVENT
            body = (f'{{"ts":{_now()},"kind":"presence","source":"s",'
                    f'"detail":{{"x":{_nested(depth)}}}}}')  # fmt: skip
        return gw, kind, body.encode()
    if case in ("ts_future", "ts_zero"):
        ts = draw(st.sampled_from([0, 1, 9_000_000_000_000_000,
                                   _now() - 400 * 86_400_000, _now() + 86_400_000]))  # fmt: skip
        if kind is TopicKind.TELEMETRY:
            lid = good_lum if gw == GOOD else other_lum
            return gw, kind, json.dumps(_batch(_reading(lid, ts=ts))).encode()
        if kind is TopicKind.STATE:
            gw = draw(unknown_ids)  # a known gateway's valid birth would be valid
            return gw, kind, json.dumps({"online": True, "bdseq": 1, "ts": ts}).encode()
        return gw, TopicKind.EVENT, json.dumps(_event("s", ts=ts)).encode()
    if case == "huge_string":
        s = "x" * draw(st.sampled_from([2000, 1_000_000]))
        if kind is TopicKind.CMD_RES:
            return gw, kind, json.dumps({"id": "c", "ts": _now(), "ok": False,
                                         "detail": s}).encode()  # fmt: skip
        return gw, TopicKind.EVENT, json.dumps(_event("s", detail={"note": s})).encode()
    if case == "too_large":
        return gw, kind, b" " * (2 << 20)
    if case == "empty_field":
        name = draw(st.sampled_from(["", "a\nb", " ", "_x", "9v", "a=b"]))
        meter = {"device": "meter-1", "ts": _now(), "values": {name: 1.0}}
        return gw, TopicKind.TELEMETRY, json.dumps(_batch(meters=[meter])).encode()
    if case == "newline_id":
        bad = draw(st.sampled_from([good_lum + "\n", "L\n1", "x\\", " L1", "a\r\nb"]))
        if kind is TopicKind.EVENT:
            return gw, kind, json.dumps(_event(bad)).encode()
        meter = {"device": bad, "ts": _now(), "values": {"voltage_l1": 230.0}}
        return gw, TopicKind.TELEMETRY, json.dumps(_batch(_reading(bad), meters=[meter])).encode()
    if case == "foreign_reading":  # OTHER reports GOOD's luminaire, or one nobody owns
        lid = draw(st.sampled_from([good_lum, "NOBODY-1"]))
        return OTHER, TopicKind.TELEMETRY, json.dumps(_batch(_reading(lid, status=2))).encode()
    if case == "foreign_event":  # OTHER raising lamp_failure on GOOD's luminaire
        ev = _event(good_lum, kind=draw(st.sampled_from(["lamp_failure", "dali_comm_loss"])))
        return OTHER, TopicKind.EVENT, json.dumps(ev).encode()
    if case == "unknown_gateway":  # perfectly valid messages from a gateway nobody knows
        payload = {
            TopicKind.TELEMETRY: _batch(_reading("U1")),
            TopicKind.EVENT: _event("U1", kind="lamp_failure"),
            TopicKind.STATE: {"online": True, "bdseq": 1, "ts": _now()},
            TopicKind.CMD_RES: {"id": "c", "ts": _now(), "ok": True},
        }[kind]
        return draw(unknown_ids), kind, json.dumps(payload).encode()
    # wrong_topic: a valid message of another kind (an event where telemetry goes, ...)
    other = {TopicKind.TELEMETRY: _event("s"), TopicKind.EVENT: _batch(),
             TopicKind.STATE: _event("s"), TopicKind.CMD_RES: _batch()}[kind]  # fmt: skip
    return gw, kind, json.dumps(other).encode()


def _count(stack: StackInfo, db: str, q: str) -> int:
    res = influx_query(stack.influx_url, q, db=db)["results"][0]
    series = res.get("series", [])
    return int(series[0]["values"][0][1]) if series else 0


async def test_hostile_payloads_never_stop_ingest(
    controller: ControllerService, norrkoping: Strategy, stack: StackInfo, influx_db: str
) -> None:
    svc = controller
    v = svc.registry.add_strategy_version(svc.site, norrkoping, author="t", comment="", now_ms=1)
    await svc.apply(v["id"], "tester")
    good_lums = [lum.id for lum in norrkoping.luminaires if lum.gateway == GOOD][:20]
    other_lum = next(lum.id for lum in norrkoping.luminaires if lum.gateway == OTHER)
    stats = svc.ingest.stats

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"fuzz-{uuid.uuid4().hex[:6]}",
                         protocol=paho.MQTTv5)  # fmt: skip
    client.connect(stack.mqtt_host, stack.mqtt_port)
    client.loop_start()
    stop = threading.Event()
    published = {"batches": 0, "readings": 0}

    def telemetry_flows() -> None:
        """GOOD's valid telemetry all along: luminaire and meter readings, distinct times."""
        seq, last = 0, 0
        while not stop.is_set():
            ts = last = max(_now(), last + 1)
            batch = TelemetryBatch(
                seq=seq, ts=ts,
                luminaires=[LuminaireReading(id=lid, ts=ts, level=180, power_w=20.0,
                                             energy_wh=float(seq)) for lid in good_lums],
                meters=[MeterReading(device="meter-1", ts=ts, values={"voltage_l1": 231.0})],
            )  # fmt: skip
            info = client.publish(str(Topic(svc.site, GOOD, TopicKind.TELEMETRY)), encode(batch),
                                  qos=1)  # fmt: skip
            info.wait_for_publish(10)
            seq += 1
            published["batches"] += 1
            published["readings"] += batch.reading_count()
            time.sleep(0.02)

    sent: list[tuple[str, str]] = []
    unknown: set[str] = set()

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)  # fmt: skip
    @given(msg=hostile(good_lums[0], other_lum))
    def fuzz(msg: tuple[str, str, bytes]) -> None:
        gw, kind, payload = msg
        topic = str(Topic(svc.site, gw, kind))
        counted = stats.malformed + stats.readings_rejected
        client.publish(topic, payload, qos=1).wait_for_publish(10)
        sent.append((gw, kind))
        if gw.startswith("gw-x"):
            unknown.add(gw)
        deadline = time.monotonic() + 20
        # counted means handled: ingest took it, dropped it with a reason and went on
        while stats.malformed + stats.readings_rejected == counted:
            assert time.monotonic() < deadline, f"not counted: {topic} {payload[:200]!r}"
            time.sleep(0.001)

    flow = threading.Thread(target=telemetry_flows)
    flow.start()
    t0 = time.monotonic()
    try:
        await asyncio.to_thread(fuzz)
    finally:
        stop.set()
        await asyncio.to_thread(flow.join)
        client.loop_stop()
        client.disconnect()
    elapsed = time.monotonic() - t0
    print(f"\n{len(sent)} hostile messages in {elapsed:.1f} s "
          f"({len(sent) / elapsed:.0f}/s, each published and counted before the next); "
          f"{published['batches']} valid batches alongside")  # fmt: skip

    await eventually(lambda: stats.readings_committed >= published["readings"], within_s=30)
    await svc.writer.flush()
    db = influx_db
    n_lum = published["batches"] * len(good_lums)
    # every valid reading stored, and nothing else
    where = f"WHERE gateway = '{GOOD}'"
    assert _count(stack, db, f"SELECT count(level) FROM luminaire {where}") == n_lum
    assert _count(stack, db, "SELECT count(level) FROM luminaire") == n_lum
    assert _count(stack, db, "SELECT count(voltage_l1) FROM meter") == published["batches"]
    assert influx_query(stack.influx_url, "SHOW FIELD KEYS FROM meter", db=db)["results"][0][
        "series"][0]["values"] == [["voltage_l1", "float"]]  # fmt: skip
    assert _count(stack, db, "SELECT count(detail) FROM event") == 0
    assert _count(stack, db, "SELECT count(online) FROM gateway_state") == 0
    # the only alarms: one unknown_gateway per id, however many messages it sent
    await eventually(lambda: len(svc.registry.alarms(svc.site, active=True)) >= len(unknown))
    alarms = svc.registry.alarms(svc.site, active=True)
    assert sorted(a["source"] for a in alarms) == sorted(unknown)
    assert {a["kind"] for a in alarms} <= {AlarmKind.UNKNOWN_GATEWAY}
