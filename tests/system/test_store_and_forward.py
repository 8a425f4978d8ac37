"""Nothing is lost while the broker is away: the gateway spools on disk and replays in order.

Mosquitto 2.0 does not restore shared subscriptions when it restarts; a gateway that sent its
backlog before the controller resubscribed would lose it. The gateway therefore sends only
after a controller answered its birth with ``resume`` — the outage test restarts the broker.
"""

from __future__ import annotations

import time
from pathlib import Path

from controller.ingest import Ingest
from gateway.link import GatewayLink
from lykta.config import MqttConfig
from lykta.contract import LuminaireReading, TelemetryBatch
from lykta.stack import LocalStack, StackInfo
from tests.system.conftest import query
from tests.waiting import eventually

T0 = (int(time.time()) - 3600) * 1000  # within ingest's plausible window (an hour ago)


def batch(i: int) -> TelemetryBatch:
    ts = T0 + i * 1000
    return TelemetryBatch(
        seq=0,
        ts=ts,
        luminaires=[
            LuminaireReading(id=f"L{k}", ts=ts, level=i % 255, power_w=1.0 * k, energy_wh=i)
            for k in range(5)
        ],
    )


async def test_broker_outage_spools_at_the_gateway_and_replays_in_order(
    local_stack: LocalStack,
    stack: StackInfo,
    mqtt_cfg: MqttConfig,
    ingest: Ingest,
    influx_db: str,
    site_id: str,
    tmp_path: Path,
) -> None:
    link = GatewayLink(mqtt_cfg, site_id, "gw-sf", tmp_path / "gw")
    async with link:
        await link.connected.wait()
        for i in range(10):
            link.send_telemetry(batch(i))
        await eventually(lambda: ingest.stats.readings_committed == 50)

        local_stack.stop_service("mosquitto")
        await eventually(lambda: not link.connected.is_set())
        for i in range(10, 40):  # the street goes on while the broker is away
            link.send_telemetry(batch(i))
        assert len(link.outbox) == 30  # on disk, waiting

        local_stack.start_service("mosquitto")
        await eventually(lambda: len(link.outbox) == 0, within_s=60)
        await eventually(lambda: ingest.stats.readings_committed >= 200, within_s=30)

    assert ingest.stats.gaps == 0  # replayed in order, nothing skipped
    assert ingest.tracker.status("gw-sf").last_seq == 39
    series = query(stack, influx_db, "SELECT count(level) FROM luminaire GROUP BY luminaire")
    assert {s["tags"]["luminaire"]: s["values"][0][1] for s in series} == {
        f"L{k}": 40 for k in range(5)
    }


async def test_gateway_restart_keeps_its_unsent_outbox(
    mqtt_cfg: MqttConfig, ingest: Ingest, site_id: str, tmp_path: Path
) -> None:
    dead = MqttConfig(host="127.0.0.1", port=1)  # no broker there: everything stays spooled
    first = GatewayLink(dead, site_id, "gw-rs", tmp_path / "gw")
    async with first:
        for i in range(5):
            first.send_telemetry(batch(i))
    # a new process, same state dir, now with a broker
    async with GatewayLink(mqtt_cfg, site_id, "gw-rs", tmp_path / "gw") as second:
        await eventually(lambda: len(second.outbox) == 0)
        second.send_telemetry(batch(5))
        await eventually(lambda: ingest.stats.readings_committed == 30)
    assert ingest.tracker.status("gw-rs").last_seq == 5 and ingest.stats.gaps == 0
