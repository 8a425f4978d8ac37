"""What InfluxDB holds after the real pipeline runs is what docs/data-model.md says, and the
controller's minute of street safety measures what the street does.

The pipeline: a simulated cabinet (DALI gear, Modbus meter, radar and lux sensor) read by the
real gateway (field reader, program runner, MQTT link) through the session's Mosquitto to the
controller service and the session's InfluxDB 1.x. The zone is the Resecentrum underpass, lit
day and night with a safety floor, so the test means the same at any hour.
"""

from __future__ import annotations

import contextlib
import re
import time
import tomllib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from dali.address import GearShort
from dali.gear.general import DAPC

from controller import datamodel as dm
from controller.alarms import AlarmKind
from controller.service import ControllerService
from fieldsim.cabinet import SimulatedCabinet
from gateway.daemon import Gateway
from gateway.program_runner import PresenceSensor, ProgramRunner
from lykta.config import MqttConfig
from lykta.signing import load_public_key
from lykta.stack import influx_query
from lykta.strategy import evaluate
from lykta.strategy.model import parse_strategy
from tests.controller.conftest import STRATEGY, eventually

DOC = Path(__file__).parents[2] / "docs" / "data-model.md"
LUMINAIRES = 4
ZONE = "resecentrum"
BUS = "cabinet-dali"  # the simulated cabinet's DALI bus
INFLUX_TYPES = {"int": "integer", "float": "float", "bool": "boolean", "string": "string"}


def documented() -> dict[str, dict[str, dict[str, str]]]:
    """measurement -> {"tag": {name: type}, "field": {name: InfluxDB type}} from the doc."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    current = None
    for line in DOC.read_text().splitlines():
        if m := re.match(r"### `(\w+)`", line):
            current = out.setdefault(m[1], {"tag": {}, "field": {}})
        elif line.startswith("## "):
            current = None
        elif current is not None and (m := re.match(r"\| (tag|field) \| (.+?) \| (\w+) \|", line)):
            for name in re.findall(r"`(\w+)`", m[2]):
                current[m[1]][name] = INFLUX_TYPES.get(m[3], m[3])
    return out


def _strategy():
    doc = tomllib.loads(STRATEGY.read_text())
    del doc["inventory"]
    doc["luminaires"] = [
        {"id": f"L{i:02d}", "zone": ZONE, "position_m": 8.0 * i, "gateway": "gw-sim",
         "bus": BUS, "short_address": i, "group": 0, "design_class": "C2",
         "rated_power_w": 40.5}
        for i in range(LUMINAIRES)
    ]  # fmt: skip
    return parse_strategy(doc, "sim-strategy")


@contextlib.asynccontextmanager
async def running_site(
    svc: ControllerService, mqtt_cfg: MqttConfig, tmp_path: Path
) -> AsyncIterator[tuple[SimulatedCabinet, ProgramRunner]]:
    """A cabinet and its gateway running the applied strategy's signed program."""
    v = svc.registry.add_strategy_version(svc.site, _strategy(), author="t", comment="", now_ms=1)
    pub = load_public_key(Path(f"{svc.config.programs.key_file}.pub"))
    async with SimulatedCabinet(luminaires=LUMINAIRES, sensors=1, path_length_m=10.0,
                                pedestrians_per_hour=3_600) as cabinet:  # fmt: skip
        async with cabinet.field_reader(interval_s=0.2, energy_interval_s=0.5) as reader:
            runner = ProgramRunner(
                site=svc.site, gateway="gw-sim", drivers={BUS: reader.drivers[0]},
                luminaires={f"L{i:02d}": BUS for i in range(LUMINAIRES)},
                state_dir=tmp_path / "program", public_key=pub, latitude=58.59,
                longitude=16.19,
                presence_sensors=[PresenceSensor(BUS, 0, ZONE, 5.0)],
            )  # fmt: skip
            gw = Gateway(svc.site, "gw-sim", mqtt_cfg, reader, tmp_path / "gw",
                         telemetry_interval_s=0.2, runner=runner)  # fmt: skip
            async with gw:
                hashes = await svc.apply(v["id"], "tester")
                await eventually(lambda: runner.program_hash == hashes["gw-sim"])
                yield cabinet, runner


def _query(svc: ControllerService, q: str) -> list[dict]:
    r = influx_query(svc.config.influx.url, q, svc.config.influx.database)["results"][0]
    return r.get("series", [])


async def test_influxdb_holds_exactly_the_documented_data_model(
    controller: ControllerService, mqtt_cfg: MqttConfig, tmp_path: Path
) -> None:
    svc = controller
    async with running_site(svc, mqtt_cfg, tmp_path) as (cabinet, _runner):
        applied_ns = time.time_ns()  # events before the strategy was applied have no zone yet
        # every kind of point: readings, events, an alarm (a lamp fails), birth, minutes
        await eventually(lambda: svc.ingest.stats.batches > 5)
        cabinet.dali_bus.occupancy_event(0)  # someone walks past the sensor
        await eventually(lambda: svc.ingest.stats.events >= 1, within_s=30,
                         what=lambda: svc.ingest.stats)  # fmt: skip
        cabinet.dali_bus.by_short_address(1).set_lamp_failure(True)
        await eventually(
            lambda: any(a["kind"] == AlarmKind.LAMP_FAILURE
                        for a in svc.registry.alarms(svc.site, active=True))  # fmt: skip
        )
        assert await svc.minutes.close_minute(svc.clock()) > 0
        await svc.writer.flush()
    doc = documented()
    stored = {v[0] for s in _query(svc, "SHOW MEASUREMENTS") for v in s["values"]}
    assert stored == set(doc) == set(dm.MEASUREMENTS)
    for m in sorted(stored):
        tags = {v[0] for s in _query(svc, f'SHOW TAG KEYS FROM "{m}"') for v in s["values"]}
        assert tags <= set(doc[m]["tag"]), f"{m}: undocumented tags {tags - set(doc[m]['tag'])}"
        assert {"site"} <= tags, m
        fields = {v[0]: v[1] for s in _query(svc, f'SHOW FIELD KEYS FROM "{m}"')
                  for v in s["values"]}  # fmt: skip
        for name, kind in fields.items():
            assert name in doc[m]["field"], f"{m}: field {name} ({kind}) is not documented"
            assert doc[m]["field"][name] == kind, f"{m}.{name}: stored {kind}, documented " \
                f"{doc[m]['field'][name]}"  # fmt: skip
    # every zone-owned point carries its zone
    # (events that arrive before the strategy is applied have no zone yet: unknown, left out)
    for m, where in [("luminaire", ""), ("meter", ""), ("sensor", ""), ("gateway_health", ""),
                     ("event", f"WHERE (\"kind\" = 'presence' OR \"kind\" = 'lamp_failure')"
                                   f" AND time > {applied_ns}")]:
        series = _query(svc, f'SELECT count(*) FROM "{m}" {where} GROUP BY "zone"')
        assert series and all(s["tags"]["zone"] == ZONE for s in series), m
    series = _query(svc, 'SELECT count("dark") FROM "zone_compliance" GROUP BY "zone"')
    assert {s["tags"]["zone"] for s in series} == set(svc.strategy.zones)
    # presence events carry the reaction as a number a panel can sum
    [s] = _query(svc, "SELECT sum(\"boosted\") FROM \"event\" WHERE \"kind\" = 'presence'")
    assert s["values"][0][1] > 0


async def test_dark_minutes_are_zero_on_a_healthy_zone_and_counted_below_the_floor(
    controller: ControllerService, mqtt_cfg: MqttConfig, tmp_path: Path
) -> None:
    svc = controller
    async with running_site(svc, mqtt_cfg, tmp_path) as (cabinet, _runner):
        assert svc.strategy is not None
        now = datetime.now(UTC)
        floor = min(evaluate(svc.strategy, f"L{i:02d}", now).floor_level for i in range(LUMINAIRES))
        assert floor and floor > 0
        last = svc.minutes.minutes.last
        await eventually(lambda: len(last) == LUMINAIRES
                         and all(r.level >= floor for r in last.values()))  # fmt: skip
        await eventually(lambda: all(r.ts > svc.clock() - 1000 for r in last.values()))
        healthy = svc.clock()
        zones, gateways = svc.minutes.minutes.close(
            svc.strategy, healthy, online={"gw-sim": True}, program_ok={}
        )
        [z] = [z for z in zones if z.zone == ZONE]
        assert (z.lit, z.dark, z.not_answering, z.answering) == (True, 0, 0, LUMINAIRES)
        assert z.level_pct is not None and z.level_pct >= z.floor_pct
        [g] = gateways
        assert (g.online, g.answering, g.luminaires) == (True, LUMINAIRES, LUMINAIRES)

        # another master on the bus takes two luminaires below the floor (the gateway's
        # program never would): the next minute counts them dark
        for a in (0, 1):
            cabinet.dali_bus.process(DAPC(GearShort(a), floor - 20).frame)
        await eventually(lambda: sum(r.level < floor for r in last.values()) == 2)
        await svc.minutes.close_minute(svc.clock())
        await svc.writer.flush()
    [s] = _query(svc, f"SELECT last(\"dark\"), last(\"lit\") FROM \"zone_compliance\" "
                      f"WHERE \"zone\" = '{ZONE}'")  # fmt: skip
    assert s["values"][0][1:] == [2, 1]
