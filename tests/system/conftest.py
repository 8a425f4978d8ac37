"""Fixtures for system tests: a controller ingesting one test's site into one test's DB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controller.influx_config import InfluxConfig
from controller.influx_writer import InfluxWriter
from controller.ingest import Ingest
from lykta.config import MqttConfig
from lykta.stack import StackInfo, influx_query


@pytest.fixture
def mqtt_cfg(stack: StackInfo) -> MqttConfig:
    return MqttConfig(host=stack.mqtt_host, port=stack.mqtt_port)


@pytest.fixture
async def ingest(
    stack: StackInfo, mqtt_cfg: MqttConfig, influx_db: str, site_id: str, tmp_path: Path
) -> AsyncIterator[Ingest]:
    writer = InfluxWriter(
        InfluxConfig(url=stack.influx_url, database=influx_db, flush_interval_s=0.2),
        spool_dir=tmp_path / "controller-spool",
    )
    async with writer, Ingest(mqtt_cfg, site_id, writer, ack_interval_s=0.05) as ing:
        await ing.wait_connected()
        yield ing


def query(stack: StackInfo, db: str, q: str) -> list[dict]:
    """InfluxQL -> the result's series (empty list when there are none)."""
    return influx_query(stack.influx_url, q, db)["results"][0].get("series", [])
