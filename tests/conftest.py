"""Shared fixtures: one real local stack (Mosquitto + InfluxDB 1.x) per test session.

Each test gets its own InfluxDB database and its own MQTT site id, so tests never see each
other's data even though they share the servers.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from controller.influx_config import InfluxConfig
from controller.influx_writer import InfluxWriter
from controller.ingest import Ingest
from lykta.config import MqttConfig
from lykta.stack import LocalStack, StackInfo, influx_query

# No per-example deadline anywhere: on a shared 2-core machine the first example of a test
# (lazy imports, caches warming) can take 300 ms, and hypothesis then calls a correct test
# flaky. Timing is measured in bench/, not asserted in unit tests.
settings.register_profile("lykta", deadline=None)
settings.load_profile("lykta")

_counter = itertools.count()


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The session's :class:`LocalStack` (for tests that stop and restart a service)."""
    stack = LocalStack(tmp_path_factory.mktemp("stack"))
    stack.up()
    try:
        yield stack
    finally:
        stack.down()


@pytest.fixture
def stack(local_stack: LocalStack) -> StackInfo:
    """Where the session's Mosquitto and InfluxDB answer (restarted if a test stopped one)."""
    info = local_stack.status()
    if info is None:
        info = local_stack.up()
    return info


@pytest.fixture
def influx_db(stack: StackInfo) -> Iterator[str]:
    """A fresh, empty InfluxDB database for this test; dropped afterwards."""
    name = f"t{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    influx_query(stack.influx_url, f'CREATE DATABASE "{name}"')
    yield name
    try:
        influx_query(stack.influx_url, f'DROP DATABASE "{name}"')
    except OSError:
        pass  # InfluxDB stopped by the test and not restarted: the temp dir goes anyway


@pytest.fixture
def site_id() -> str:
    """A unique MQTT site id, so retained messages of other tests are never seen."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A scratch directory for spools and registries."""
    return tmp_path


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
