"""The HTTP API: roles enforced, writes audited, precise 4xx; incident overrides reach the
gateways as commands (real Mosquitto, real GatewayLinks; the app over httpx's ASGI transport)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from controller.registry import Role
from controller.service import ControllerService
from gateway.link import GatewayLink
from gateway.program_runner import ProgramRunner
from lykta.config import MqttConfig
from lykta.contract import Command, CommandResult
from tests.controller.conftest import STRATEGY, eventually

STRATEGY_TOML = STRATEGY.read_text()
INVENTORY_CSV = (STRATEGY.parent / "inventory.csv").read_text()


@pytest.fixture
async def api(controller: ControllerService) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=controller.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://lykta") as client:
        yield client


@pytest.fixture
def tokens(controller: ControllerService) -> dict[Role, dict[str, str]]:
    return {
        role: {"Authorization": f"Bearer {controller.registry.create_token(role.value, role, 1)}"}
        for role in Role
    }


async def _upload(api: httpx.AsyncClient, headers: dict[str, str], comment: str = "") -> dict:
    body = {"strategy_toml": STRATEGY_TOML, "inventory_csv": INVENTORY_CSV, "comment": comment}
    r = await api.post("/api/v1/strategies", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def test_roles_are_enforced(api: httpx.AsyncClient, tokens) -> None:
    viewer, operator, security, admin = (
        tokens[r] for r in (Role.VIEWER, Role.OPERATOR, Role.SECURITY, Role.ADMIN)
    )
    r = await api.get("/api/v1/alarms")
    assert r.status_code == 401 and "missing bearer token" in r.json()["detail"]
    r = await api.get("/api/v1/alarms", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["detail"] == "unknown or revoked token"
    for h in (viewer, operator, admin):
        assert (await api.get("/api/v1/alarms", headers=h)).status_code == 200
    r = await api.get("/api/v1/alarms", headers=security)
    assert r.status_code == 403 and "role security may not do this" in r.json()["detail"]
    # viewer cannot change anything
    body = {"strategy_toml": STRATEGY_TOML, "inventory_csv": INVENTORY_CSV}
    r = await api.post("/api/v1/strategies", json=body, headers=viewer)
    assert r.status_code == 403
    r = await api.post("/api/v1/strategies", json=body, headers=security)
    assert r.status_code == 403
    v = await _upload(api, operator, "first")
    assert v["luminaires"] == 390 and v["author"] == "operator"
    r = await api.post(f"/api/v1/strategies/{v['id']}/apply", headers=viewer)
    assert r.status_code == 403
    r = await api.post(f"/api/v1/strategies/{v['id']}/apply", headers=security)
    assert r.status_code == 403
    # incidents: security may list/create/cancel (needs an applied strategy: 422 before)
    inc = {
        "area": {"zones": ["resecentrum"]},
        "class": "C1",
        "minutes": 30,
        "reason": "police request: incident at the tunnel",
    }
    r = await api.post("/api/v1/incidents", json=inc, headers=security)
    assert r.status_code == 422 and r.json()["detail"] == "no strategy is applied yet"
    assert (await api.get("/api/v1/incidents", headers=security)).status_code == 200
    assert (await api.post("/api/v1/incidents", json=inc, headers=viewer)).status_code == 403
    assert (await api.get("/api/v1/incidents", headers=viewer)).status_code == 200
    # only admin manages tokens and reads the audit log
    r = await api.post("/api/v1/tokens", json={"name": "x", "role": "viewer"}, headers=operator)
    assert r.status_code == 403
    r = await api.post("/api/v1/tokens", json={"name": "grafana", "role": "viewer"}, headers=admin)
    assert r.status_code == 201
    new = {"Authorization": f"Bearer {r.json()['token']}"}
    assert (await api.get("/api/v1/gateways", headers=new)).status_code == 200
    r = await api.post("/api/v1/tokens", json={"name": "grafana", "role": "admin"}, headers=admin)
    assert r.status_code == 409 and "exists already" in r.json()["detail"]
    assert (await api.get("/api/v1/audit", headers=operator)).status_code == 403
    log = (await api.get("/api/v1/audit", headers=admin)).json()
    assert [(e["actor"], e["action"]) for e in log] == [
        ("admin", "token_create"),
        ("operator", "strategy_upload"),
    ]
    # OpenAPI is served
    spec = (await api.get("/openapi.json")).json()
    assert "/api/v1/incidents" in spec["paths"]


async def test_precise_errors(api: httpx.AsyncClient, tokens) -> None:
    op = tokens[Role.OPERATOR]
    bad = STRATEGY_TOML.replace('safety_floor = "P4"', 'safety_floor = "P9"', 1)
    r = await api.post(
        "/api/v1/strategies/check",
        json={"strategy_toml": bad, "inventory_csv": INVENTORY_CSV},
        headers=op,
    )
    assert r.status_code == 422
    assert any("zones.stromstraket.safety_floor" in p for p in r.json()["problems"])
    r = await api.post("/api/v1/strategies", json={"strategy_toml": STRATEGY_TOML}, headers=op)
    # the inventory it names is neither uploaded nor in a configured inventory directory
    assert r.status_code == 422 and "upload it as inventory_csv" in r.json()["problems"][0]
    r = await api.post("/api/v1/strategies", json={"strategy_toml": "x = [", "comment": ""},
                       headers=op)  # fmt: skip
    assert r.status_code == 422 and "not valid TOML" in r.json()["problems"][0]
    nested = "x = " + "[" * 20_000 + "]" * 20_000  # deeper than tomllib's recursion
    for path in ("/api/v1/strategies", "/api/v1/strategies/check"):
        r = await api.post(path, json={"strategy_toml": nested}, headers=op)
        assert r.status_code == 422, r.text
        assert r.json()["problems"] == ["strategy.toml: not valid TOML: nested too deeply"]
    r = await api.post("/api/v1/strategies/42/apply", headers=op)
    assert r.status_code == 404 and "no strategy version 42" in r.json()["detail"]
    r = await api.post("/api/v1/alarms/7/ack", headers=op)
    assert r.status_code == 404 and "no alarm 7" in r.json()["detail"]
    r = await api.post("/api/v1/commands", json={"gateway": "gw/x", "name": "rebirth"}, headers=op)
    assert r.status_code == 422 and "not a valid id" in r.json()["detail"]
    r = await api.post("/api/v1/commands", json={"gateway": "gw-x", "name": "rebirth"}, headers=op)
    assert r.status_code == 404
    r = await api.post("/api/v1/commands", json={"gateway": "gw-x", "name": "reboot"}, headers=op)
    assert r.status_code == 422 and "rebirth" in r.text  # names the commands there are
    r = await api.post("/api/v1/commands", json={"gateway": "gw-x", "nam": "rebirth"}, headers=op)
    assert r.status_code == 422  # pydantic names the unknown and the missing field
    v = await _upload(api, op)
    assert (await api.post(f"/api/v1/strategies/{v['id']}/apply", headers=op)).status_code == 200
    r = await api.post("/api/v1/strategies/rollback", json={"version": v["id"]}, headers=op)
    assert r.status_code == 409 and "already in force" in r.json()["detail"]
    inc = {
        "area": {"zones": ["resecentrum"], "luminaires": ["RES-001"]},
        "class": "C1",
        "reason": "two areas",
    }
    r = await api.post("/api/v1/incidents", json=inc, headers=op)
    assert r.status_code == 422 and "exactly one of" in r.text
    inc = {"area": {"zones": ["resecentrum"]}, "class": "C1", "minutes": 500, "reason": "long"}
    r = await api.post("/api/v1/incidents", json=inc, headers=op)
    assert r.status_code == 422 and r.json()["detail"] == (
        "duration 500 min exceeds the cap of 120 min"
    )
    inc = {"area": {"zones": ["resecentrum"]}, "class": "P1", "reason": "wrong series"}
    r = await api.post("/api/v1/incidents", json=inc, headers=op)
    assert r.status_code == 422 and "P1 does not fit zone resecentrum's C classes" in r.text
    inc = {
        "area": {"latitude": 58.59, "longitude": 16.19, "radius_m": 100},
        "class": "C1",
        "reason": "no positions",
    }
    r = await api.post("/api/v1/incidents", json=inc, headers=op)
    assert r.status_code == 422 and "no luminaire with a known position" in r.json()["detail"]
    r = await api.delete("/api/v1/incidents/nope", headers=op)
    assert r.status_code == 404


async def test_incident_override_reaches_gateways_and_ends(
    controller: ControllerService,
    api: httpx.AsyncClient,
    tokens,
    mqtt_cfg: MqttConfig,
    tmp_path: Path,
) -> None:
    op, sec = tokens[Role.OPERATOR], tokens[Role.SECURITY]
    got: dict[str, list[Command]] = {}

    def handler(gw: str):
        async def on_command(cmd: Command) -> CommandResult:
            got.setdefault(gw, []).append(cmd)
            return CommandResult(id=cmd.id, ts=cmd.issued_ts, ok=True, detail=f"{cmd.name} ok")

        return on_command

    v = await _upload(api, op)
    assert (await api.post(f"/api/v1/strategies/{v['id']}/apply", headers=op)).status_code == 200
    links = [GatewayLink(mqtt_cfg, controller.site, gw, tmp_path / gw, on_command=handler(gw),
                         command_keys=controller.key.public_key())
             for gw in ("gw-centrum", "gw-saltangen")]  # fmt: skip
    for link in links:
        await link.__aenter__()
    try:
        for link in links:
            await eventually(link.connected.is_set)
        await asyncio.sleep(0.2)  # subscriptions in place
        # the trygghetsstråk runs through both cabinets
        inc = {
            "area": {"zones": ["stromstraket"]},
            "class": "P1",
            "minutes": 45,
            "reason": "assault reported near Motala ström",
        }
        r = await api.post("/api/v1/incidents", json=inc, headers=sec)
        assert r.status_code == 201, r.text
        created = r.json()
        assert set(created["gateways"]) == {"gw-centrum", "gw-saltangen"}
        await eventually(lambda: len(got.get("gw-centrum", [])) == 1
                         and len(got.get("gw-saltangen", [])) == 1)  # fmt: skip
        cmd = got["gw-centrum"][0]
        assert cmd.name == "override" and cmd.expires_ts - cmd.issued_ts == 60_000
        args = cmd.args
        assert args.mode == "raise" and args.id == created["id"]
        assert args.until_ms == created["expires_ts"]
        assert args.override.kind == "incident" and args.override.lighting_class == "P1"
        assert args.override.zones == ["stromstraket"]
        assert len(args.luminaires) == 45 and args.level == 254  # P1 on P2 design: full
        # the gateway's executor accepts exactly these args
        runner = ProgramRunner(
            site=controller.site,
            gateway="gw-centrum",
            drivers={},
            luminaires={lid: "dali1" for lid in args.luminaires},
            state_dir=tmp_path / "runner",
            public_key=None,
            latitude=58.59,
            longitude=16.19,
            clock=lambda: cmd.issued_ts,
        )
        res = await runner.on_command(cmd)
        assert res.ok, res.detail
        assert runner.overrides[created["id"]].level == 254
        assert runner.overrides[created["id"]].until_ms == created["expires_ts"]
        # a (re)birth: the controller re-sends the override in force, same id, same expiry
        links[0].request_rebirth()
        await eventually(lambda: len(got["gw-centrum"]) == 2)
        again = got["gw-centrum"][1]
        assert again.name == "override" and again.args.id == created["id"]
        assert again.args.until_ms == created["expires_ts"] and again.id != cmd.id
        # the results come back on cmd/res and are recorded
        await eventually(lambda: controller.registry.command(controller.site, cmd.id)["result_ok"])
        r = await api.get(f"/api/v1/commands/{cmd.id}", headers=op)
        assert r.json()["result_detail"] == "override ok"
        listed = (await api.get("/api/v1/incidents?active=true", headers=sec)).json()
        assert [i["id"] for i in listed] == [created["id"]]
        # security cancels it: every gateway gets cancel_override
        r = await api.delete(f"/api/v1/incidents/{created['id']}", headers=sec)
        assert r.status_code == 200 and r.json()["cancelled_by"] == "security"
        await eventually(
            lambda: [c.name for c in got["gw-saltangen"]] == ["override", "cancel_override"]
        )
        assert got["gw-saltangen"][1].args.id == created["id"]
        r = await api.delete(f"/api/v1/incidents/{created['id']}", headers=sec)
        assert r.status_code == 409 and "already cancelled" in r.json()["detail"]
        assert (await api.get("/api/v1/incidents?active=true", headers=sec)).json() == []
        actions = [e["action"] for e in controller.registry.audit_log()]
        assert actions.count("command") == 5 and "incident_create" in actions  # 1 re-sent
        assert actions[0] == "incident_cancel"
    finally:
        for link in links:
            await link.close()


async def test_read_endpoints(api: httpx.AsyncClient, tokens) -> None:
    op, viewer = tokens[Role.OPERATOR], tokens[Role.VIEWER]
    v1 = await _upload(api, op, "first")
    darker = STRATEGY_TOML.replace(
        'evening = "P4", late = "P4", night = "P6"', 'evening = "P5", late = "P6", night = "P6"'
    )
    assert darker != STRATEGY_TOML
    v2 = (
        await api.post(
            "/api/v1/strategies",
            json={
                "strategy_toml": darker,
                "inventory_csv": INVENTORY_CSV,
                "comment": "darker Ektorp",
            },
            headers=op,
        )
    ).json()
    await api.post(f"/api/v1/strategies/{v1['id']}/apply", headers=op)
    lums = (await api.get("/api/v1/luminaires?zone=resecentrum", headers=viewer)).json()
    assert len(lums) == 16 and lums[0]["priority"] == 1
    gws = (await api.get("/api/v1/gateways", headers=viewer)).json()
    assert [g["id"] for g in gws] == ["gw-centrum", "gw-ektorp", "gw-saltangen", "gw-soderleden"]
    assert gws[0]["expected_program_hash"] and gws[0]["online"] is False
    r = await api.get(f"/api/v1/strategies/{v2['id']}/preview?zone=ektorp&night=2026-12-01",
                      headers=viewer)  # fmt: skip
    rows = r.json()["rows"]
    assert len(rows) == 144 and {"level", "lit", "period"} <= rows[0].keys()
    r = await api.get(f"/api/v1/strategies/{v2['id']}/energy?first=2026-12-01&last=2026-12-07",
                      headers=viewer)  # fmt: skip
    e = r.json()
    assert e["applied"]["version"] == v1["id"] and e["difference_kwh"] < 0
    assert e["zones"]["ektorp"] < e["applied"]["zones"]["ektorp"]
    r = await api.get(f"/api/v1/strategies/{v2['id']}/energy?first=2026-12-07&last=2026-12-01",
                      headers=viewer)  # fmt: skip
    assert r.status_code == 422
    versions = (await api.get("/api/v1/strategies", headers=viewer)).json()
    assert [(x["comment"], x["applied_ts"] is not None) for x in versions] == [
        ("first", True),
        ("darker Ektorp", False),
    ]
    state = (await api.get("/api/v1/state", headers=viewer)).json()
    assert state["site"] and "ingest" in state


async def test_incident_by_radius_around_a_point(
    controller: ControllerService, api: httpx.AsyncClient, tokens
) -> None:
    op, sec = tokens[Role.OPERATOR], tokens[Role.SECURITY]
    v = await _upload(api, op)
    await api.post(f"/api/v1/strategies/{v['id']}/apply", headers=op)
    # the tunnel's luminaires stand 10 m apart going north from 58.5900 N 16.1900 E
    for i in range(1, 17):
        r = await api.put(
            f"/api/v1/luminaires/RES-{i:03d}/position",
            json={"latitude": 58.59 + i * 0.00009, "longitude": 16.19},
            headers=op,
        )
        assert r.status_code == 200, r.text
    r = await api.put("/api/v1/luminaires/NOPE/position", json={"latitude": 1, "longitude": 1},
                      headers=op)  # fmt: skip
    assert r.status_code == 404 and "no luminaire 'NOPE'" in r.json()["detail"]
    r = await api.put("/api/v1/luminaires/RES-001/position", json={"latitude": 1, "longitude": 1},
                      headers=sec)  # fmt: skip
    assert r.status_code == 403
    inc = {
        "area": {"latitude": 58.59, "longitude": 16.19, "radius_m": 35},
        "class": "C1",
        "minutes": 20,
        "reason": "someone followed home",
    }
    r = await api.post("/api/v1/incidents", json=inc, headers=sec)
    assert r.status_code == 201, r.text
    [row] = controller.registry.incidents(controller.site)
    assert row["override"]["luminaires"] == ["RES-001", "RES-002", "RES-003"]
    assert row["reason"] == "someone followed home" and row["actor"] == "security"


async def test_maintenance_override(
    controller: ControllerService,
    api: httpx.AsyncClient,
    tokens,
    mqtt_cfg: MqttConfig,
    tmp_path: Path,
) -> None:
    op, sec, viewer = tokens[Role.OPERATOR], tokens[Role.SECURITY], tokens[Role.VIEWER]
    got: list[Command] = []

    async def on_command(cmd: Command) -> CommandResult:
        got.append(cmd)
        return CommandResult(id=cmd.id, ts=cmd.issued_ts, ok=True)

    v = await _upload(api, op)
    await api.post(f"/api/v1/strategies/{v['id']}/apply", headers=op)
    async with GatewayLink(mqtt_cfg, controller.site, "gw-ektorp", tmp_path / "gw",
                           on_command=on_command,
                           command_keys=controller.key.public_key()) as link:  # fmt: skip
        await eventually(link.connected.is_set)
        await asyncio.sleep(0.2)
        body = {"area": {"luminaires": ["EKT-001", "EKT-002"]}, "level_percent": 30,
                "minutes": 90, "reason": "replacing drivers"}  # fmt: skip
        assert (await api.post("/api/v1/maintenance", json=body, headers=sec)).status_code == 403
        assert (await api.post("/api/v1/maintenance", json=body, headers=viewer)).status_code == 403
        r = await api.post("/api/v1/maintenance", json=body, headers=op)
        assert r.status_code == 201, r.text
        m = r.json()
        await eventually(lambda: len(got) == 1)
        assert got[0].args.mode == "set" and got[0].args.luminaires == ["EKT-001", "EKT-002"]
        assert [x["id"] for x in (await api.get("/api/v1/maintenance", headers=viewer)).json()] == [
            m["id"]
        ]
        assert (await api.get("/api/v1/incidents", headers=viewer)).json() == []
        # security cannot end maintenance through the incident endpoint
        r = await api.delete(f"/api/v1/incidents/{m['id']}", headers=sec)
        assert r.status_code == 404 and f"no incident '{m['id']}'" in r.json()["detail"]
        r = await api.delete(f"/api/v1/maintenance/{m['id']}", headers=op)
        assert r.status_code == 200
        await eventually(lambda: [c.name for c in got] == ["override", "cancel_override"])
        bad = {**body, "off": True}
        r = await api.post("/api/v1/maintenance", json=bad, headers=op)
        assert r.status_code == 422 and "exactly one of class, level_percent, off" in r.text


async def test_broker_down_gives_503_and_nothing_is_applied(
    controller_cfg, norrkoping, tmp_path: Path
) -> None:
    import socket

    from controller.config import ControllerMqttConfig as Mqtt

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nothing listens there once closed
    cfg = controller_cfg.model_copy(update={"mqtt": Mqtt(host="127.0.0.1", port=dead)})
    async with ControllerService(cfg) as svc:  # starts although the broker is away
        reg = svc.registry
        v = reg.add_strategy_version(svc.site, norrkoping, author="t", comment="", now_ms=1)
        token = reg.create_token("op", Role.OPERATOR, 1)
        transport = httpx.ASGITransport(app=svc.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lykta") as api:
            h = {"Authorization": f"Bearer {token}"}
            r = await api.post(f"/api/v1/strategies/{v['id']}/apply", headers=h)
            assert r.status_code == 503 and "MQTT broker unreachable" in r.json()["detail"]
        assert reg.applied_version(svc.site) is None
