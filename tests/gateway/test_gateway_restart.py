"""Commanded state survives a crash: `lykta gateway run` as a real process is killed with
SIGKILL during an incident override; started again it resumes the override with its original
expiry — and the street shows it, though the gear lost its level meanwhile."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fieldsim.dali import GearSpec, SimulatedDaliBus
from firmware_bridge.emulator import Emulator, EmulatorOptions
from firmware_bridge.port import PtyPort
from lykta.config import MqttConfig
from lykta.contract import Topic, TopicKind, build_command, encode
from lykta.signing import public_key_pem, sign_command
from lykta.stack import StackInfo
from tests.gateway.test_gateway_run import _program
from tests.waiting import eventually


def _config(tmp_path: Path, site: str, mqtt_port: int, pty: str) -> Path:
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(
        f"""
site = "{site}"
id = "gw-real"
state_dir = "{tmp_path / "state"}"
telemetry_interval_s = 0.5
public_key_file = "signing.pub"
latitude = 58.59
longitude = 16.19
[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
[[dali]]
name = "dali1"
url = "{pty}"
"""
        + "".join(
            f'\n[[luminaires]]\nid = "L{a}"\nbus = "dali1"\nshort_address = {a}\ngroups = [1]\n'
            for a in range(4)
        )
    )
    return cfg


async def _start(cfg: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lykta.cli.main", "gateway", "run", "--config", str(cfg),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )  # fmt: skip


async def test_kill_9_during_an_incident_override_resumes_it_with_its_expiry(
    stack: StackInfo, mqtt_cfg: MqttConfig, site_id: str, tmp_path: Path
) -> None:
    dali = SimulatedDaliBus([GearSpec(a, frozenset({1})) for a in range(4)], now=time.monotonic)
    key = Ed25519PrivateKey.generate()
    (tmp_path / "signing.pub").write_bytes(public_key_pem(key.public_key()))
    pty = PtyPort()
    procs: list[asyncio.subprocess.Process] = []
    async with Emulator(pty, dali, EmulatorOptions()):
        cfg = _config(tmp_path, site_id, stack.mqtt_port, pty.slave_path)
        now = int(time.time() * 1000)
        until = now + 20_000
        async with aiomqtt.Client(
            mqtt_cfg.host, mqtt_cfg.port, protocol=aiomqtt.ProtocolVersion.V5
        ) as c:
            await c.publish(
                str(Topic(site_id, "gw-real", TopicKind.PROGRAM)),
                encode(_program(site_id, now, key)),
                qos=1,
                retain=True,
            )
            try:
                procs.append(await _start(cfg))
                await eventually(lambda: all(g.actual_level == 170 for g in dali.gear), 30)
                override = sign_command(build_command(
                    "override",
                    {"id": "inc-9", "luminaires": [f"L{a}" for a in range(4)],
                     "level": 230, "until_ms": until},
                    id="c-1", site=site_id, gateway="gw-real", counter=now,
                    issued_ts=now, expires_ts=now + 60_000,
                ), key)  # fmt: skip
                await c.publish(
                    str(Topic(site_id, "gw-real", TopicKind.CMD)), encode(override), qos=1
                )
                await eventually(lambda: all(g.actual_level == 230 for g in dali.gear))
                procs[0].kill()  # SIGKILL: no goodbye, no cleanup
                await procs[0].wait()
                # meanwhile the cabinet contactor cycles: the gear forget the override's level
                dali.contactor(False)
                dali.contactor(True)
                assert all(g.actual_level == 254 for g in dali.gear)  # the fail-safe level
                procs.append(await _start(cfg))
                saved = tmp_path / "state" / "program" / "overrides.json"
                assert [o["until_ms"] for o in json.loads(saved.read_text())] == [until]
                # resumed (nobody re-sent it): the gateway heals the gear to the override
                await eventually(lambda: all(g.actual_level == 230 for g in dali.gear), 30)
                assert time.time() * 1000 < until
                # and it ends at its original expiry, back to the program
                await eventually(lambda: all(g.actual_level == 170 for g in dali.gear), 40)
                assert time.time() * 1000 >= until
            finally:
                for p in procs:
                    if p.returncode is None:
                        p.kill()
                    out = (await asyncio.wait_for(p.communicate(), 30))[0].decode()
                    if p.returncode not in (0, -9):
                        print(out)
