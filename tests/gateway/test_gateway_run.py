"""`lykta gateway run` as a real process: DALI through the firmware-bridge emulator on a
pseudo-terminal, a Modbus TCP meter, the real broker; a signed program arrives and the
luminaires follow it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.commands import CommandIssuer
from controller.ingest import Ingest
from fieldsim.dali import GearSpec, SimulatedDaliBus
from fieldsim.modbus import ModbusTcpSimulator, SimulatedModbusDevice
from firmware_bridge.emulator import Emulator, EmulatorOptions
from firmware_bridge.port import PtyPort
from gateway.modbus.profile import load_profiles
from lykta.config import MqttConfig
from lykta.contract import Topic, TopicKind, encode
from lykta.contract.program import GroupProgram, LitWindow, LuminaireProgram, Program, SwitchPoint
from lykta.signing import public_key_pem, sign_program
from lykta.stack import StackInfo
from tests.waiting import eventually


def _program(site: str, now_ms: int, key: Ed25519PrivateKey) -> Program:
    lums = [
        LuminaireProgram(
            id=f"L{a}",
            bus="dali1",
            short_address=a,
            group=1,
            zone="park",
            position_m=10.0 * a,
            floor_level=120,
        )
        for a in range(4)
    ]
    p = Program(
        version="v-test",
        site=site,
        gateway="gw-real",
        created_ts=now_ms,
        valid_from=now_ms - 60_000,
        valid_until=now_ms + 3_600_000,
        latitude=58.59,
        longitude=16.19,
        timezone="Europe/Stockholm",
        lit=[LitWindow(from_ts=now_ms - 60_000, until_ts=now_ms + 3_600_000)],
        groups=[
            GroupProgram(
                bus="dali1",
                group=1,
                zone="park",
                design_class="P2",
                floor_level=120,
                points=[SwitchPoint(ts=now_ms - 60_000, level=170)],
            )
        ],
        luminaires=lums,
    )
    return sign_program(p, key)


async def test_gateway_process_runs_the_field_and_obeys_a_signed_program(
    stack: StackInfo, mqtt_cfg: MqttConfig, ingest: Ingest, site_id: str, tmp_path: Path
) -> None:
    dali = SimulatedDaliBus([GearSpec(a, frozenset({1})) for a in range(4)], now=time.monotonic)
    meter = SimulatedModbusDevice(
        load_profiles()["eastron_sdm630"],
        1,
        lambda: {"power_w": dali.power_w, "voltage_l1_v": 231.0},
    )
    key = Ed25519PrivateKey.generate()
    (tmp_path / "signing.pub").write_bytes(public_key_pem(key.public_key()))
    ingest.issuer = CommandIssuer(site_id, key, tmp_path / "controller")  # signs its resume
    pty = PtyPort()
    async with Emulator(pty, dali, EmulatorOptions()), ModbusTcpSimulator([meter]) as modbus:
        cfg = tmp_path / "gateway.toml"
        cfg.write_text(
            f"""
site = "{site_id}"
id = "gw-real"
state_dir = "{tmp_path / "state"}"
telemetry_interval_s = 0.5
public_key_file = "signing.pub"
latitude = 58.59
longitude = 16.19
[mqtt]
host = "127.0.0.1"
port = {stack.mqtt_port}
[[dali]]
name = "dali1"
url = "{pty.slave_path}"
[[modbus]]
name = "meter-line"
host = "127.0.0.1"
tcp_port = {modbus.port}
devices = [{{ id = "cabinet-meter", unit = 1, profile = "eastron_sdm630", interval_s = 1 }}]
"""
            + "".join(
                f"""
[[luminaires]]
id = "L{a}"
bus = "dali1"
short_address = {a}
groups = [1]
"""
                for a in range(4)
            )
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "lykta.cli.main",
            "gateway",
            "run",
            "--config",
            str(cfg),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        )

        async def alive_until(cond) -> None:  # noqa: ANN001
            await eventually(lambda: cond() or proc.returncode is not None, within_s=30)
            if proc.returncode is not None:
                out = (await proc.communicate())[0].decode()
                raise AssertionError(f"gateway exited with {proc.returncode}:\n{out}")

        try:
            await alive_until(lambda: ingest.tracker.status("gw-real").online)
            await alive_until(lambda: ingest.stats.readings >= 8)  # luminaires and the meter
            now = int(time.time() * 1000)
            async with aiomqtt.Client(
                mqtt_cfg.host, mqtt_cfg.port, protocol=aiomqtt.ProtocolVersion.V5
            ) as c:
                await c.publish(
                    str(Topic(site_id, "gw-real", TopicKind.PROGRAM)),
                    encode(_program(site_id, now, key)),
                    qos=1,
                    retain=True,
                )
            await eventually(lambda: all(g.actual_level == 170 for g in dali.gear))
            # the birth now reports the program's hash (for drift detection)
            await eventually(lambda: ingest.tracker.status("gw-real").program_hash is not None)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            out = (await asyncio.wait_for(proc.communicate(), 30))[0].decode()
        assert proc.returncode == 0, out
        await eventually(lambda: not ingest.tracker.status("gw-real").online)  # said goodbye
