"""Supervised loops: a loop of the controller that dies ends the process non-zero (so systemd
restarts it) after retaining ``_controller/state`` offline; a real subprocess on a real broker."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from pathlib import Path

import aiomqtt

from controller.config import ControllerConfig
from controller.service import ControllerService
from lykta.config import MqttConfig
from lykta.contract import State, TelemetryBatch, Topic, TopicKind, decode, encode
from lykta.stack import LocalStack
from tests.controller.conftest import eventually


async def _retained_state(cfg: ControllerConfig) -> State | None:
    topic = str(Topic.controller_state(cfg.site))
    async with aiomqtt.Client(cfg.mqtt.host, cfg.mqtt.port) as c:
        await c.subscribe(topic, qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                async for m in c.messages:
                    if m.retain and isinstance(m.payload, bytes) and m.payload:
                        return decode(m.payload, State)
    return None


async def test_a_failed_ingest_loop_ends_the_process_non_zero_and_retains_offline(
    controller_cfg: ControllerConfig, tmp_path: Path
) -> None:
    """The ingest loop is made to fail for real: its MQTT password file disappears, and the
    broker is made to drop the connection (another client takes over the session), so the
    reconnect raises FileNotFoundError, which no retry can fix."""
    client_id = f"ctl-sup-{uuid.uuid4().hex[:8]}"
    password = tmp_path / "mqtt-password"
    password.write_text("secret\n")
    password.chmod(0o600)  # a password file others can read is refused
    cfg = tmp_path / "controller.toml"
    cfg.write_text(
        f'site = "{controller_cfg.site}"\nstate_dir = "state"\ntick_s = 1\n'
        f'[mqtt]\nhost = "{controller_cfg.mqtt.host}"\nport = {controller_cfg.mqtt.port}\n'
        f'client_id = "{client_id}"\nusername = "lykta-controller"\n'
        f'password_file = "{password}"\n'
        f'[influx]\nurl = "{controller_cfg.influx.url}"\n'
        f'database = "{controller_cfg.influx.database}"\n'
        f'[programs]\nkey_file = "keys/k"\n'
        f"[api]\nenabled = false\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lykta.cli.main", "controller", "run", "-c", str(cfg),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with asyncio.timeout(30):
            while (s := await _retained_state(controller_cfg)) is None or not s.online:
                assert proc.returncode is None, "controller ended before it was up"
                await asyncio.sleep(0.2)
        password.unlink()
        async with aiomqtt.Client(controller_cfg.mqtt.host, controller_cfg.mqtt.port,
                                  identifier=client_id):  # fmt: skip
            pass  # the broker drops the controller's ingest connection (session takeover)
        async with asyncio.timeout(30):
            out, _ = await proc.communicate()
        text = out.decode()
        assert proc.returncode != 0, text[-3000:]
        assert "ingest ended" in text and "FileNotFoundError" in text, text[-3000:]
        state = await _retained_state(controller_cfg)
        # offline, and published by the controller itself (the broker's will carries no ts)
        assert state is not None and not state.online and state.ts is not None, state
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_the_watchdog_is_fed_only_while_ingest_is_connected_and_keeps_up(
    controller: ControllerService, local_stack: LocalStack, mqtt_cfg: MqttConfig
) -> None:
    """healthy() (what feeds WATCHDOG=1) holds while ingest is idle and connected or makes
    progress, and fails while the broker link is down; it holds again once it is back."""
    svc = controller
    assert svc.healthy()  # connected, idle
    async with aiomqtt.Client(mqtt_cfg.host, mqtt_cfg.port) as c:
        batch = TelemetryBatch(seq=0, ts=int(time.time() * 1000))
        await c.publish(str(Topic(svc.site, "gw-x", TopicKind.TELEMETRY)), encode(batch), qos=1)
    await eventually(lambda: svc.ingest.stats.acked >= 1)
    assert svc.healthy()  # progress
    try:
        local_stack.stop_service("mosquitto")
        await eventually(lambda: not svc.ingest.connected.is_set())
        assert not svc.healthy()
    finally:
        local_stack.start_service("mosquitto")
    await svc.wait_ready(30)
    await eventually(svc.healthy)  # what arrived on reconnect is acknowledged
