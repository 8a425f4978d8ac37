"""State survives a controller restart: open alarms clear instead of being raised twice, the
expected program hashes are known again, acknowledgements and comments stay."""

from __future__ import annotations

import httpx

from controller.alarms import AlarmKind
from controller.config import ControllerConfig
from controller.registry import Role
from controller.service import ControllerService
from lykta.contract import LuminaireReading, State, TelemetryBatch
from lykta.strategy import Strategy
from tests.controller.conftest import eventually

NIGHT = 1_795_212_000_000  # 2026-11-20 22:00 UTC


def _batch(ts: int, status: int) -> TelemetryBatch:
    r = LuminaireReading(id="EKT-007", ts=ts, level=200, power_w=8.0, energy_wh=1, status=status)
    return TelemetryBatch(seq=0, ts=ts, luminaires=[r])


async def test_restart_keeps_alarms_programs_and_acks(
    controller_cfg: ControllerConfig, norrkoping: Strategy
) -> None:
    async with ControllerService(controller_cfg) as svc:
        await svc.wait_ready()
        site, reg = svc.site, svc.registry
        v = reg.add_strategy_version(site, norrkoping, author="t", comment="", now_ms=1)
        hashes = await svc.apply(v["id"], "tester")
        # the ingest hook, fed directly: two failing readings raise
        svc.telemetry("gw-ektorp", _batch(NIGHT, 2))
        svc.telemetry("gw-ektorp", _batch(NIGHT + 1, 2))
        await eventually(lambda: len(reg.alarms(site, active=True)) == 1)
        [alarm] = reg.alarms(site, active=True)
        assert (alarm["kind"], alarm["priority"]) == ("lamp_failure", 3)  # residential street
        token = reg.create_token("op", Role.OPERATOR, 1)
        viewer = reg.create_token("v", Role.VIEWER, 1)
        transport = httpx.ASGITransport(app=svc.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lykta") as api:
            h = {"Authorization": f"Bearer {token}"}
            r = await api.post(f"/api/v1/alarms/{alarm['id']}/ack", headers=h)
            assert r.status_code == 200 and r.json()["acked_by"] == "op"
            r = await api.post(f"/api/v1/alarms/{alarm['id']}/comment",
                               json={"text": "lamp ordered"}, headers=h)  # fmt: skip
            assert r.json()["comment"] == "op: lamp ordered"
            r = await api.post(f"/api/v1/alarms/{alarm['id']}/ack",
                               headers={"Authorization": f"Bearer {viewer}"})  # fmt: skip
            assert r.status_code == 403
            r = await api.post(f"/api/v1/alarms/{alarm['id']}/comment", json={"text": ""},
                               headers=h)  # fmt: skip
            assert r.status_code == 422

    async with ControllerService(controller_cfg) as svc2:
        await svc2.wait_ready()
        # the open alarm and the expected programs are known again
        assert (AlarmKind.LAMP_FAILURE, "gw-ektorp", "EKT-007") in svc2.engine.active()
        assert {g: h for g, (h, _) in svc2.engine.expected_hash.items()} == hashes
        assert svc2.strategy is not None and len(svc2.strategy.luminaires) == 390
        # the same failure again is not a second alarm; repaired, it clears the first one
        svc2.telemetry("gw-ektorp", _batch(NIGHT + 2, 2))
        svc2.telemetry("gw-ektorp", _batch(NIGHT + 3, 0))
        svc2.telemetry("gw-ektorp", _batch(NIGHT + 4, 0))
        await eventually(lambda: svc2.registry.alarms(site, active=True) == [])
        [a] = svc2.registry.alarms(site)
        assert a["acked_by"] == "op" and a["cleared_ts"] == NIGHT + 4
        # drift is judged against the restored expectation
        svc2.state("gw-ektorp", State(online=True, bdseq=3, program_hash=hashes["gw-ektorp"]), True)
        await svc2.tick()
        assert svc2.engine.active() == []


async def test_second_controller_follows_the_applied_strategy(
    controller_cfg: ControllerConfig, norrkoping: Strategy
) -> None:
    shared = controller_cfg.model_copy(update={"registry_url": controller_cfg.registry()})
    other = shared.model_copy(update={"state_dir": controller_cfg.state_dir.parent / "second"})
    async with ControllerService(shared) as a, ControllerService(other) as b:
        await a.wait_ready()
        await b.wait_ready()
        v = a.registry.add_strategy_version(a.site, norrkoping, author="t", comment="", now_ms=1)
        hashes = await a.apply(v["id"], "tester")
        assert b.strategy is None
        await b.tick()
        assert b.strategy is not None and len(b.engine.site_map.luminaires) == 390
        assert {g: h for g, (h, _) in b.engine.expected_hash.items()} == hashes
