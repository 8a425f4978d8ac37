"""End to end on the field simulator: a simulated cabinet, the real gateway (field reader,
program runner, MQTT link) and the controller. The gateway takes the signed program (no drift);
a lamp failing in the simulator raises lamp_failure with priority 1 (a trygghetsstråk) and the
repair clears it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from controller.alarms import AlarmKind
from controller.service import ControllerService
from fieldsim.cabinet import SimulatedCabinet
from gateway.daemon import Gateway
from gateway.program_runner import ProgramRunner
from lykta.config import MqttConfig
from lykta.signing import load_public_key
from lykta.strategy.model import parse_strategy
from tests.controller.conftest import STRATEGY, eventually

LUMINAIRES = 6


def _strategy():
    """Norrköping's strategy with the cabinet's luminaires on the trygghetsstråk."""
    doc = tomllib.loads(STRATEGY.read_text())
    del doc["inventory"]
    doc["luminaires"] = [
        {"id": f"L{i:02d}", "zone": "stromstraket", "position_m": 25.0 * i, "gateway": "gw-sim",
         "bus": "dali1", "short_address": i, "group": 0, "design_class": "P2",
         "rated_power_w": 40.0}
        for i in range(LUMINAIRES)
    ]  # fmt: skip
    return parse_strategy(doc, "sim-strategy")


def _active(svc: ControllerService, kind: AlarmKind) -> list[dict]:
    return [a for a in svc.registry.alarms(svc.site, active=True) if a["kind"] == kind]


async def test_simulated_lamp_failure_end_to_end(
    controller: ControllerService, mqtt_cfg: MqttConfig, tmp_path: Path
) -> None:
    svc = controller
    v = svc.registry.add_strategy_version(svc.site, _strategy(), author="t", comment="", now_ms=1)
    pub = load_public_key(Path(f"{svc.config.programs.key_file}.pub"))
    async with SimulatedCabinet(luminaires=LUMINAIRES, sensors=1) as cabinet:
        reader = cabinet.field_reader(interval_s=0.2)
        async with reader:
            runner = ProgramRunner(
                site=svc.site, gateway="gw-sim", drivers={"dali1": reader.drivers[0]},
                luminaires={f"L{i:02d}": "dali1" for i in range(LUMINAIRES)},
                state_dir=tmp_path / "program", public_key=pub, latitude=58.59,
                longitude=16.19,
            )  # fmt: skip
            gw = Gateway(svc.site, "gw-sim", mqtt_cfg, reader, tmp_path / "gw",
                         telemetry_interval_s=0.2, runner=runner)  # fmt: skip
            async with gw:
                hashes = await svc.apply(v["id"], "tester")
                # the gateway verifies and runs it, and reports its hash: no drift
                await eventually(lambda: runner.program_hash == hashes["gw-sim"])
                await eventually(
                    lambda: svc.ingest.tracker.status("gw-sim").program_hash == hashes["gw-sim"]
                )
                await svc.tick()
                # a birth from before the program arrived may have raised drift; the birth with
                # the hash clears it (alarm changes reach the registry through a queue)
                await eventually(lambda: _active(svc, AlarmKind.PROGRAM_DRIFT) == [])

                cabinet.dali_bus.by_short_address(3).set_lamp_failure(True)
                await eventually(lambda: _active(svc, AlarmKind.LAMP_FAILURE) != [])
                [a] = _active(svc, AlarmKind.LAMP_FAILURE)
                assert (a["source"], a["gateway"], a["zone"], a["priority"]) == (
                    "L03", "gw-sim", "stromstraket", 1)  # fmt: skip

                cabinet.dali_bus.by_short_address(3).set_lamp_failure(False)
                await eventually(lambda: _active(svc, AlarmKind.LAMP_FAILURE) == [])
                [done] = [x for x in svc.registry.alarms(svc.site) if x["kind"] == "lamp_failure"]
                assert done["cleared_ts"] is not None
