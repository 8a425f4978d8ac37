"""Nothing is lost across restarts, end to end (issue #10): gateways keep every batch until a
controller confirms it stored, so no controller crash, retired controller or broker that lost
its state can strand a reading. Counted in InfluxDB per gateway and seq against what the
gateways sent."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from lykta.config import MqttConfig
from lykta.stack import LocalStack, StackInfo
from tests.system.confirmflow import ControllerProcess, Load, controller_toml, stored_seqs
from tests.waiting import eventually

GATEWAYS = ["gw-a", "gw-b", "gw-c"]


def _complete(stack: StackInfo, db: str, load: Load) -> None:
    stored = stored_seqs(stack, db)
    for gw, n in load.sent.items():
        missing = set(range(n)) - stored.get(gw, set())
        assert not missing, f"{gw}: {len(missing)} of {n} batches not stored, e.g. {min(missing)}"


async def _drained(load: Load, within_s: float = 60) -> None:
    await eventually(lambda: load.waiting() == 0, within_s=within_s)


async def test_controller_killed_and_terminated_five_times_under_load_loses_nothing(
    stack: StackInfo, mqtt_cfg: MqttConfig, influx_db: str, site_id: str, tmp_path: Path
) -> None:
    cfg = controller_toml(tmp_path / "ctl.toml", stack, site_id, influx_db)
    ctl = ControllerProcess(cfg)
    with ctl:
        async with Load(mqtt_cfg, site_id, GATEWAYS, tmp_path / "gw") as load:
            await eventually(lambda: load.confirms() > 0, within_s=30)
            for i in range(5):
                await asyncio.sleep(0.7)  # under load: batches in every stage of their way
                sig = signal.SIGKILL if i % 2 == 0 else signal.SIGTERM
                code = ctl.stop(sig)
                assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 0), ctl.tail()
                await asyncio.sleep(0.3)  # the gateways go on meanwhile
                before = load.confirms()
                ctl.start()  # the same state dir: the same identity and session
                await eventually(lambda b=before: load.confirms() > b, within_s=30)
            await load.stop()
            await _drained(load)
        ctl.stop()
    assert sum(load.sent.values()) > 300
    _complete(stack, influx_db, load)


async def test_two_controllers_one_killed_for_good_nothing_lost(
    stack: StackInfo, mqtt_cfg: MqttConfig, influx_db: str, site_id: str, tmp_path: Path
) -> None:
    # The dead controller's session stays in the shared group (and gets its share) until it
    # expires; the gateways re-send what it never confirmed, the survivor stores it.
    a = ControllerProcess(controller_toml(tmp_path / "a.toml", stack, site_id, influx_db,
                                          session_expiry_s=3))  # fmt: skip
    b = ControllerProcess(controller_toml(tmp_path / "b.toml", stack, site_id, influx_db,
                                          session_expiry_s=3))  # fmt: skip
    with a, b:
        async with Load(mqtt_cfg, site_id, GATEWAYS, tmp_path / "gw") as load:
            await eventually(lambda: load.confirms() > 10, within_s=30)
            await asyncio.sleep(1.0)
            a.stop(signal.SIGKILL)  # never restarted
            await asyncio.sleep(2.0)
            await load.stop()
            await _drained(load)
        b.stop()
    _complete(stack, influx_db, load)


async def test_broker_killed_and_restarted_without_its_persistence_loses_nothing(
    local_stack: LocalStack,
    stack: StackInfo,
    mqtt_cfg: MqttConfig,
    influx_db: str,
    site_id: str,
    tmp_path: Path,
) -> None:
    # Everything the broker held (queued messages, sessions, retained births) is gone; only
    # the gateways' outboxes remember what is not yet confirmed.
    ctl = ControllerProcess(controller_toml(tmp_path / "ctl.toml", stack, site_id, influx_db))
    with ctl:
        async with Load(mqtt_cfg, site_id, GATEWAYS, tmp_path / "gw") as load:
            await eventually(lambda: load.confirms() > 10, within_s=30)
            await asyncio.sleep(0.5)
            os.kill(stack.mqtt.pid, signal.SIGKILL)
            local_stack.stop_service("mosquitto")  # waits until it is gone
            Path(stack.mqtt.config).with_name("mosquitto.db").unlink(missing_ok=True)
            await asyncio.sleep(0.5)  # the street goes on: batches pile up in the outboxes
            local_stack.start_service("mosquitto")
            before = load.confirms()
            await eventually(lambda: load.confirms() > before, within_s=60)
            await asyncio.sleep(0.5)
            await load.stop()
            await _drained(load)
        ctl.stop()
    _complete(stack, influx_db, load)
