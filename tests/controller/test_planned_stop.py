"""A planned stop is not an outage: a gateway that shuts down cleanly says so
(``reason: "shutdown"``) and the controller records it without a ``gateway_offline`` alarm;
a lost link (the broker's will) still raises one. Real GatewayLink, real Mosquitto."""

from __future__ import annotations

from pathlib import Path

from controller.alarms import AlarmEngine, AlarmKind, AlarmRules, SiteMap
from controller.service import ControllerService
from gateway.link import GatewayLink
from lykta.config import MqttConfig
from lykta.contract import OfflineReason, State
from tests.controller.conftest import eventually


def _offline_alarms(svc: ControllerService) -> list[dict]:
    return [a for a in svc.registry.alarms(svc.site, active=True)
            if a["kind"] == AlarmKind.GATEWAY_OFFLINE]  # fmt: skip


async def test_clean_shutdown_is_recorded_without_an_alarm_and_a_lost_link_raises_one(
    controller: ControllerService, mqtt_cfg: MqttConfig, tmp_path: Path
) -> None:
    svc = controller
    tracker = svc.ingest.tracker
    async with GatewayLink(mqtt_cfg, svc.site, "gw-centrum", tmp_path / "gw") as link:
        await eventually(lambda: tracker.status("gw-centrum").online)
        await link.close(graceful=True)
    await eventually(lambda: not tracker.status("gw-centrum").online)
    assert tracker.status("gw-centrum").offline_reason is OfflineReason.SHUTDOWN
    assert _offline_alarms(svc) == []

    # the same gateway, this time its link is cut: the will has no reason, and that is an alarm
    link = GatewayLink(mqtt_cfg, svc.site, "gw-centrum", tmp_path / "gw")
    async with link:
        await eventually(lambda: tracker.status("gw-centrum").online)
        await link.close(graceful=False)
    await eventually(lambda: _offline_alarms(svc) != [])
    assert tracker.status("gw-centrum").offline_reason is None
    assert [a["source"] for a in _offline_alarms(svc)] == ["gw-centrum"]


def test_an_alarm_open_from_a_lost_link_stays_open_through_a_shutdown_death() -> None:
    eng = AlarmEngine(AlarmRules(), SiteMap())
    stop = State(online=False, bdseq=0, reason=OfflineReason.SHUTDOWN)
    eng.on_gateway("gw1", State(online=True, bdseq=0), True, 1_000)
    assert eng.on_gateway("gw1", stop, False, 2_000) == []  # planned: nothing raised
    eng.on_gateway("gw1", State(online=True, bdseq=1), True, 3_000)
    [raised] = eng.on_gateway("gw1", State(online=False, bdseq=1), False, 4_000)  # the will
    assert raised.active and raised.kind is AlarmKind.GATEWAY_OFFLINE
    assert eng.on_gateway("gw1", stop, False, 5_000) == []  # does not clear it either
    [cleared] = eng.on_gateway("gw1", State(online=True, bdseq=2), True, 6_000)
    assert not cleared.active
