"""Fixtures: a controller service on the session's real Mosquitto + InfluxDB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controller.alarms import AlarmRules, Debounce
from controller.config import ApiConfig, ControllerConfig, ProgramsConfig
from controller.influx_config import InfluxConfig
from controller.service import ControllerService
from lykta.config import MqttConfig
from lykta.stack import StackInfo
from lykta.strategy import Strategy, load_strategy
from tests.waiting import eventually  # noqa: F401 - re-exported for the controller tests

STRATEGY = Path(__file__).parents[2] / "config" / "norrkoping" / "strategy.toml"


@pytest.fixture(scope="session")
def norrkoping() -> Strategy:
    return load_strategy(STRATEGY)


@pytest.fixture
def mqtt_cfg(stack: StackInfo) -> MqttConfig:
    return MqttConfig(host=stack.mqtt_host, port=stack.mqtt_port)


@pytest.fixture
def controller_cfg(
    stack: StackInfo, mqtt_cfg: MqttConfig, influx_db: str, site_id: str, tmp_path: Path
) -> ControllerConfig:
    return ControllerConfig(
        site=site_id,
        state_dir=tmp_path / "controller",
        tick_s=300,  # tests call tick() themselves
        mqtt=mqtt_cfg,
        influx=InfluxConfig(url=stack.influx_url, database=influx_db, flush_interval_s=0.1),
        programs=ProgramsConfig(key_file=tmp_path / "keys" / "program.key"),
        alarms=AlarmRules(lamp_failure=Debounce(raise_after=2, clear_after=2), drift_grace_s=0),
        api=ApiConfig(enabled=False, incident_max_minutes=120),
    )


@pytest.fixture
async def controller(controller_cfg: ControllerConfig) -> AsyncIterator[ControllerService]:
    async with ControllerService(controller_cfg) as svc:
        await svc.wait_ready(30)  # generous: the machine is shared and sometimes busy
        yield svc
