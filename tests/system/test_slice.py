"""The first vertical slice against a real Mosquitto and InfluxDB: gateway -> MQTT ->
controller -> InfluxDB, birth/will, sequence gaps, malformed input."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiomqtt

from controller.ingest import Ingest
from gateway.daemon import FieldReadings, Gateway
from gateway.link import GatewayLink
from lykta.config import MqttConfig
from lykta.contract import LuminaireReading, State, TelemetryBatch, Topic, TopicKind, decode
from lykta.stack import StackInfo
from tests.system.conftest import query
from tests.waiting import eventually


class Luminaires:
    """A field reader with ``n`` luminaires whose readings change every read."""

    def __init__(self, gateway: str, n: int) -> None:
        self.gateway, self.n, self.reads = gateway, n, 0

    def luminaire_count(self) -> int:
        return self.n

    def take_events(self) -> list:
        return []

    async def read(self, now_ms: int) -> FieldReadings:
        self.reads += 1
        return FieldReadings(
            luminaires=[
                LuminaireReading(
                    id=f"{self.gateway}-L{i}",
                    ts=now_ms,
                    level=100 + i,
                    power_w=10.0 + i,
                    energy_wh=float(self.reads),
                    status=0,
                )
                for i in range(self.n)
            ]
        )


async def test_every_published_reading_is_stored_exactly_once(
    stack: StackInfo,
    mqtt_cfg: MqttConfig,
    ingest: Ingest,
    influx_db: str,
    site_id: str,
    tmp_path: Path,
) -> None:
    gws = [
        Gateway(
            site_id,
            f"gw{i}",
            mqtt_cfg,
            Luminaires(f"gw{i}", 20),
            tmp_path / f"gw{i}",
            telemetry_interval_s=0.1,
        )
        for i in range(3)
    ]
    for g in gws:
        await g.__aenter__()
    await eventually(lambda: ingest.tracker.online_count() == 3)
    await asyncio.sleep(2.0)
    for g in gws:
        await g.stop()
    published = {g.id: g.link.stats["published_batches"] for g in gws}
    assert all(n >= 10 for n in published.values()), published
    await eventually(lambda: ingest.stats.readings_committed == 20 * sum(published.values()))
    series = query(
        stack, influx_db, "SELECT count(level) FROM luminaire GROUP BY luminaire, gateway"
    )
    counts = {s["tags"]["luminaire"]: (s["tags"]["gateway"], s["values"][0][1]) for s in series}
    assert len(counts) == 60
    for lum, (gw, n) in counts.items():
        assert n == published[gw], f"{lum}: {n} stored, {published[gw]} published"
    assert ingest.stats.malformed == 0 and ingest.stats.gaps == 0


async def _retained_state(cfg: MqttConfig, site: str, gw: str) -> State:
    async with aiomqtt.Client(cfg.host, cfg.port, protocol=aiomqtt.ProtocolVersion.V5) as c:
        await c.subscribe(str(Topic(site, gw, TopicKind.STATE)), qos=1)
        async with asyncio.timeout(5):
            async for m in c.messages:
                return decode(m.payload, State)
    raise AssertionError("no retained state")


async def test_dropped_connection_goes_offline_by_will_and_rebirth_advances_bdseq(
    mqtt_cfg: MqttConfig, ingest: Ingest, site_id: str, tmp_path: Path
) -> None:
    link = GatewayLink(mqtt_cfg, site_id, "gw-will", tmp_path / "gw")
    await link.__aenter__()
    await link.connected.wait()
    await eventually(lambda: ingest.tracker.status("gw-will").online)
    first_bdseq = ingest.tracker.status("gw-will").bdseq

    await link.close(graceful=False)  # cut the cable: no DISCONNECT, the broker sends the will
    await eventually(lambda: not ingest.tracker.status("gw-will").online)
    retained = await _retained_state(mqtt_cfg, site_id, "gw-will")
    assert retained.online is False and retained.bdseq == first_bdseq

    again = GatewayLink(mqtt_cfg, site_id, "gw-will", tmp_path / "gw")  # same state dir
    async with again:
        await again.connected.wait()
        await eventually(lambda: ingest.tracker.status("gw-will").online)
        assert ingest.tracker.status("gw-will").bdseq == first_bdseq + 1
        retained = await _retained_state(mqtt_cfg, site_id, "gw-will")
        assert retained.online is True and retained.bdseq == first_bdseq + 1


async def test_seq_gap_is_detected_and_answered_with_a_rebirth(
    mqtt_cfg: MqttConfig, ingest: Ingest, site_id: str, tmp_path: Path
) -> None:
    async with GatewayLink(mqtt_cfg, site_id, "gw-gap", tmp_path / "gw") as link:
        await link.connected.wait()
        batch = lambda: TelemetryBatch(seq=0, ts=int(time.time() * 1000))  # noqa: E731
        link.send_telemetry(batch())
        await eventually(lambda: ingest.tracker.status("gw-gap").last_seq == 0)
        link._seq += 3  # noqa: SLF001 - three batches lost on the way
        link.send_telemetry(batch())
        await eventually(lambda: ingest.stats.gaps == 1)
        assert ingest.gap_log[-1].first == 1 and ingest.gap_log[-1].last == 3
        await eventually(lambda: link.stats["births"] == 2)  # the rebirth command was executed


async def test_malformed_payload_is_counted_and_does_not_stop_ingest(
    stack: StackInfo,
    mqtt_cfg: MqttConfig,
    ingest: Ingest,
    influx_db: str,
    site_id: str,
    tmp_path: Path,
) -> None:
    topic = str(Topic(site_id, "gw-bad", TopicKind.TELEMETRY))
    async with aiomqtt.Client(
        mqtt_cfg.host, mqtt_cfg.port, protocol=aiomqtt.ProtocolVersion.V5
    ) as c:
        await c.publish(topic, b"\xff not json", qos=1)
        await c.publish(topic, b'{"seq": -1, "ts": 0}', qos=1)
        await c.publish(str(Topic(site_id, "gw-bad", TopicKind.EVENT)), b"{}", qos=1)
    await eventually(lambda: ingest.stats.malformed == 3)
    async with GatewayLink(mqtt_cfg, site_id, "gw-good", tmp_path / "gw") as link:
        link.send_telemetry(
            TelemetryBatch(
                seq=0,
                ts=int(time.time() * 1000),
                luminaires=[
                    LuminaireReading(
                        id="L1", ts=int(time.time() * 1000), level=254, power_w=40, energy_wh=1
                    )
                ],
            )
        )
        await eventually(lambda: ingest.stats.readings_committed == 1)
    assert query(stack, influx_db, "SELECT level FROM luminaire")[0]["values"][0][1] == 254
    assert "$.seq" in ingest.stats.malformed_reasons
