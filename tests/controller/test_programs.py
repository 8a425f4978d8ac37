"""Apply -> every gateway receives a signed program that verifies; rollback; drift."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import msgspec

from controller.alarms import AlarmKind
from controller.service import ControllerService
from gateway.link import GatewayLink
from gateway.program_runner import ProgramRunner
from lykta.config import MqttConfig
from lykta.contract import Program
from lykta.signing import load_public_key, program_hash, verify_program
from lykta.strategy import Strategy
from tests.controller.conftest import eventually


def _variant(strategy: Strategy) -> Strategy:
    """The strategy with the residential streets one class darker in the evening."""
    zones = dict(strategy.zones)
    ek = zones["ektorp"]
    zones["ektorp"] = ek.model_copy(
        update={"classes": {**ek.classes, "evening": ek.classes["night"]}}
    )
    return strategy.model_copy(update={"zones": zones})


async def test_apply_rollback_and_drift(
    controller: ControllerService, norrkoping: Strategy, mqtt_cfg: MqttConfig, tmp_path: Path
) -> None:
    svc, reg, site = controller, controller.registry, controller.site
    received: dict[str, list[Program]] = {}
    links: dict[str, GatewayLink] = {}
    obedient = {"gw-centrum", "gw-ektorp", "gw-saltangen"}  # gw-soderleden keeps its old one
    pub = load_public_key(Path(f"{svc.config.programs.key_file}.pub"))
    # the gateway's own executor checks site, gateway, signature and validity
    runners = {
        gw: ProgramRunner(site=site, gateway=gw, drivers={}, luminaires={},
                          state_dir=tmp_path / f"run-{gw}", public_key=pub,
                          latitude=58.59, longitude=16.19)
        for gw in norrkoping.gateways()
    }  # fmt: skip

    def handler(gw: str):
        async def on_program(program: Program | None, raw: bytes) -> None:
            assert program is not None, raw
            received.setdefault(gw, []).append(program)
            await runners[gw].on_program(program, raw)
            assert runners[gw].program == program, f"{gw} rejected the program"
            if gw in obedient:  # a gateway reports what it runs in its birth
                links[gw].program_hash = runners[gw].program_hash
                links[gw].request_rebirth()

        return on_program

    v1 = reg.add_strategy_version(site, norrkoping, author="test", comment="first", now_ms=1)
    v2 = reg.add_strategy_version(site, _variant(norrkoping), author="test", comment="darker",
                                  now_ms=2)  # fmt: skip
    gateways = norrkoping.gateways()
    async with contextlib.AsyncExitStack() as stack:
        for gw in gateways:
            links[gw] = await stack.enter_async_context(
                GatewayLink(mqtt_cfg, site, gw, tmp_path / gw, on_program=handler(gw))
            )
        for link in links.values():
            await eventually(link.connected.is_set)

        h1 = await svc.apply(v1["id"], "tester")
        assert set(h1) == set(gateways)
        await eventually(lambda: all(len(received.get(g, [])) == 1 for g in gateways))
        for gw in gateways:
            p = received[gw][-1]
            assert p.gateway == gw and p.site == site
            assert verify_program(p, pub), gw
            assert program_hash(p) == h1[gw]
            assert p.valid_until - p.valid_from == 48 * 3600_000
            forged = msgspec.structs.replace(p, valid_until=p.valid_until + 3600_000)
            assert not verify_program(forged, pub)

        h2 = await svc.apply(v2["id"], "tester")
        await eventually(lambda: all(len(received[g]) == 2 for g in gateways))
        assert h2["gw-ektorp"] != h1["gw-ektorp"]
        assert reg.applied_version(site) == v2["id"]

        h3 = await svc.apply(v1["id"], "tester", rollback=True)
        await eventually(lambda: all(len(received[g]) == 3 for g in gateways))
        assert reg.applied_version(site) == v1["id"]
        ek1, ek3 = received["gw-ektorp"][0], received["gw-ektorp"][2]
        assert [g.points for g in ek3.groups] == [g.points for g in ek1.groups] or (
            ek3.valid_from != ek1.valid_from  # compiled at another minute: same levels anyway
            and [[p.level for p in g.points] for g in ek3.groups]
            == [[p.level for p in g.points] for g in ek1.groups]
        )
        assert program_hash(received["gw-ektorp"][2]) == h3["gw-ektorp"]
        actions = [a["action"] for a in reg.audit_log()]
        assert actions[:3] == ["rollback", "apply", "apply"]

        # drift: the obedient gateways report the expected hash, gw-soderleden does not
        await eventually(
            lambda: all(svc.ingest.tracker.status(g).program_hash == h3[g] for g in obedient)
        )
        await svc.tick()
        await eventually(
            lambda: (
                [
                    a["source"]
                    for a in reg.alarms(site, active=True)
                    if a["kind"] == AlarmKind.PROGRAM_DRIFT
                ]
                == ["gw-soderleden"]
            )
        )
        [drift] = [a for a in reg.alarms(site, active=True) if a["kind"] == "program_drift"]
        assert drift["priority"] == 2  # Söderleden's conflict areas
        # it finally reports the right program: the drift alarm clears
        links["gw-soderleden"].program_hash = h3["gw-soderleden"]
        links["gw-soderleden"].request_rebirth()
        await eventually(lambda: not reg.alarms(site, active=True))


async def test_refresh_before_the_window_runs_out(
    controller: ControllerService, norrkoping: Strategy
) -> None:
    svc, reg, site = controller, controller.registry, controller.site
    v = reg.add_strategy_version(site, norrkoping, author="t", comment="", now_ms=1)
    h1 = await svc.apply(v["id"], "tester")
    assert await svc.programs.refresh() == {}  # 48 h left, margin 24 h
    later = time.time() * 1000 + 25 * 3600_000
    svc.programs.clock = lambda: int(later)
    h2 = await svc.programs.refresh()
    assert set(h2) == set(h1) and all(h2[g] != h1[g] for g in h1)
    assert {p["valid_from"] // 60_000 for p in reg.programs(site)} == {int(later) // 60_000}
