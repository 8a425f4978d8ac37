"""A lamp failure reported by a real GatewayLink raises the right alarm with the right priority,
stored in the registry and InfluxDB and published; it clears when repaired. Gateway offline."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiomqtt

from controller.alarms import AlarmKind
from controller.service import ControllerService
from gateway.link import GatewayLink
from lykta.config import MqttConfig
from lykta.contract import LuminaireReading, TelemetryBatch
from lykta.stack import StackInfo, influx_query
from lykta.strategy import Strategy
from tests.controller.conftest import eventually


def _active(svc: ControllerService, kind: AlarmKind) -> list[dict]:
    return [a for a in svc.registry.alarms(svc.site, active=True) if a["kind"] == kind]


def _batch(ts: int, status: int) -> TelemetryBatch:
    lums = [
        LuminaireReading(id=f"STR-00{i}", ts=ts, level=180, power_w=3.0, energy_wh=10.0,
                         status=status if i == 3 else 0)
        for i in range(1, 5)
    ]  # fmt: skip
    return TelemetryBatch(seq=0, ts=ts, luminaires=lums)


async def test_lamp_failure_raises_and_clears(
    controller: ControllerService,
    norrkoping: Strategy,
    mqtt_cfg: MqttConfig,
    stack: StackInfo,
    influx_db: str,
    tmp_path: Path,
) -> None:
    svc, reg, site = controller, controller.registry, controller.site
    v = reg.add_strategy_version(site, norrkoping, author="t", comment="", now_ms=1)
    await svc.apply(v["id"], "tester")
    notices: list[dict] = []

    async def listen(ready: asyncio.Event) -> None:
        async with aiomqtt.Client(mqtt_cfg.host, mqtt_cfg.port) as c:
            await c.subscribe(f"lykta/v1/{site}/_controller/event", qos=1)
            ready.set()
            async for m in c.messages:
                notices.append(json.loads(m.payload))

    ready = asyncio.Event()
    listener = asyncio.create_task(listen(ready))
    await ready.wait()
    try:
        ts = 1_795_212_000_000  # 2026-11-20 22:00 UTC: dark, so no day-burning
        async with GatewayLink(mqtt_cfg, site, "gw-centrum", tmp_path / "gw") as link:
            await eventually(link.connected.is_set)
            link.send_telemetry(_batch(ts, 0x02))  # lamp failure bit (+ lamp on clear)
            await link.drained()
            await asyncio.sleep(0.3)
            assert _active(svc, AlarmKind.LAMP_FAILURE) == []  # one report is not enough
            link.send_telemetry(_batch(ts + 1000, 0x02))
            await eventually(lambda: _active(svc, AlarmKind.LAMP_FAILURE) != [])
            [a] = _active(svc, AlarmKind.LAMP_FAILURE)
            others = {x["kind"] for x in reg.alarms(site, active=True)} - {"program_drift"}
            assert others == {"lamp_failure"}  # lit at night, power as expected
            assert (a["kind"], a["source"], a["gateway"], a["zone"], a["priority"]) == (
                "lamp_failure",
                "STR-003",
                "gw-centrum",
                "stromstraket",
                1,
            )
            assert "lamp failure" in a["message"]

            # repaired: two good batches clear it
            link.send_telemetry(_batch(ts + 2000, 0))
            link.send_telemetry(_batch(ts + 3000, 0))
            await eventually(lambda: _active(svc, AlarmKind.LAMP_FAILURE) == [])
            [a] = [a for a in reg.alarms(site) if a["kind"] == AlarmKind.LAMP_FAILURE]
            assert a["cleared_ts"] == ts + 3000

            # InfluxDB has the raise and the clear, tagged with the priority
            def stored() -> list:
                q = "SELECT active, priority, source FROM alarm WHERE kind = 'lamp_failure'"
                r = influx_query(stack.influx_url, q, influx_db)
                series = r["results"][0].get("series", [])
                return series[0]["values"] if series else []  # fmt: skip

            await eventually(lambda: len(stored()) == 2)
            assert [(row[1], row[2], row[3]) for row in stored()] == [
                (True, "1", "STR-003"),
                (False, "1", "STR-003"),
            ]
            lamp = [n for n in notices if n["kind"] == "lamp_failure"]
            await eventually(lambda: len([n for n in notices if n["kind"] == "lamp_failure"]) == 2)
            lamp = [n for n in notices if n["kind"] == "lamp_failure"]
            assert [(n["kind"], n["active"], n["priority"]) for n in lamp] == [
                ("lamp_failure", True, 1),
                ("lamp_failure", False, 1),
            ]

            # the cabinet loses its connection: gateway offline (will), then back
            await link.close(graceful=False)
        await eventually(lambda: _active(svc, AlarmKind.GATEWAY_OFFLINE) != [])
        [off] = _active(svc, AlarmKind.GATEWAY_OFFLINE)
        assert (off["source"], off["priority"]) == ("gw-centrum", 1)
        async with GatewayLink(mqtt_cfg, site, "gw-centrum", tmp_path / "gw") as link:
            await eventually(lambda: _active(svc, AlarmKind.GATEWAY_OFFLINE) == [])
            assert [a["message"] for a in reg.alarms(site) if a["kind"] == "gateway_offline"][
                0
            ].endswith("back online (bdseq 1)")
    finally:
        listener.cancel()
