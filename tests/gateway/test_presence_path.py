"""Presence through the production path: a Part 303 occupancy event on the simulated bus, the
field reader's queue, the executor, the DALI driver — timed by an observer on the bus itself,
while the telemetry loop is busy reading every luminaire's state over a bus with real wire
time. The telemetry interval is long, so a reaction that waited for it would fail."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from dali.address import GearGroup, GearShort
from dali.command import Command
from dali.gear.general import DAPC

from fieldsim.cabinet import SimulatedCabinet
from gateway.daemon import Gateway
from gateway.program_runner import PresenceSensor, ProgramRunner
from lykta.cli.demo_site import write_demo_site
from lykta.clock import ScaledClock
from lykta.config import MqttConfig
from lykta.contract import encode
from lykta.signing import sign_program
from lykta.strategy import compile_program, load_strategy, presence_corridor
from tests.waiting import eventually

NIGHT = dt.datetime(2027, 1, 15, 0, 0, tzinfo=dt.UTC)


async def test_presence_reaches_the_bus_without_waiting_for_telemetry(
    mqtt_cfg: MqttConfig, tmp_path: Path
) -> None:
    clock = ScaledClock(int(NIGHT.timestamp() * 1000))
    async with SimulatedCabinet(
        12, sensors=3, pedestrians_per_hour=0, cyclists_per_hour=0, wire_time=True,
        now=clock.seconds,
    ) as cab:  # fmt: skip
        strategy_file, [site] = write_demo_site(tmp_path / "site", [cab], ["gw01"])
        key = Ed25519PrivateKey.generate()
        compiled = compile_program(
            load_strategy(strategy_file), "gw01", NIGHT - dt.timedelta(hours=2), 24
        )
        program = sign_program(msgspec.structs.replace(compiled, site="norrkoping"), key)
        async with cab.field_reader(
            interval_s=5, energy_interval_s=3600, prefix="gw01-L"
        ) as reader:
            driver = reader.drivers[0]
            sensors = [
                PresenceSensor(site.bus, i, site.zone, pos)
                for i, pos in enumerate(cab.path.sensor_positions_m)
            ]
            runner = ProgramRunner(
                site=program.site, gateway="gw01", drivers={site.bus: driver},
                luminaires={lum.id: site.bus for lum in driver.luminaires},
                state_dir=tmp_path / "program", public_key=key.public_key(),
                latitude=58.59, longitude=16.19, presence_sensors=sensors, clock=clock.now_ms,
            )  # fmt: skip
            await runner.on_program(program, encode(program))
            gw = Gateway(
                program.site, "gw01", mqtt_cfg, reader, tmp_path / "gw",
                telemetry_interval_s=60, runner=runner, clock=clock.now_ms,
            )  # fmt: skip
            corridor = {
                lum.short_address
                for lum, _ in presence_corridor(program, site.zone, sensors[1].position_m)
            }
            seen: list[tuple[float, int]] = []

            def observe(frame) -> None:  # noqa: ANN001
                cmd = Command.from_frame(frame)
                if isinstance(cmd, DAPC):
                    dest = cmd.destination
                    if isinstance(dest, GearShort):
                        reached = {dest.address}
                    elif isinstance(dest, GearGroup):
                        reached = set(cab.groups[dest.group])
                    else:
                        reached = set(range(12))
                    seen.extend((time.monotonic(), a) for a in reached)

            async with gw:
                await eventually(lambda: runner.steps > 0 and gw.readings_read > 0, within_s=30)
                await asyncio.sleep(0.2)
                latencies = []
                for _ in range(3):
                    runner.boosts.clear()  # each detection a new reaction: back to schedule first
                    await eventually(
                        lambda: all(runner.sources.get(x) == "program" for x in runner.luminaires)
                    )
                    await asyncio.sleep(0.3)  # the telemetry read of the bus is under way
                    cab.dali_bus.frame_listener = observe
                    seen.clear()
                    t0 = time.monotonic()
                    cab.dali_bus.occupancy_event(1)
                    await eventually(lambda: any(a in corridor for _, a in seen), within_s=5)
                    t1 = next(t for t, a in seen if a in corridor)
                    latencies.append(t1 - t0)
                    await eventually(lambda: "presence" in runner.sources.values())
                    cab.dali_bus.frame_listener = None
                assert gw.healthy() and not gw.failed.is_set()
    # well inside one frame (40.7 ms) plus scheduling on a loaded machine; a reaction that
    # waited for the telemetry loop would take the 60 s interval
    assert max(latencies) < 0.5, latencies
    assert runner.presence_reactions == 3
