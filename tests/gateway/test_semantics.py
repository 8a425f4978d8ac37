"""One semantics on both sides: what the preview (the evaluator) says is what the simulated
street shows — over a night with a planned maintenance switch-off in a zone that is not a
safety route, presence included (docs/strategy.md, "One semantics on both sides")."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lykta.contract import encode
from lykta.signing import sign_program
from lykta.strategy import Detection, Strategy, compile_program, evaluate
from lykta.strategy.model import Override, OverrideKind
from tests.gateway.conftest import GATEWAY, START
from tests.gateway.test_program_runner import runner


def _at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


async def test_preview_and_street_agree_through_a_maintenance_night(
    strategy: Strategy, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    zone = "busshallplatser"  # not a safety route: a planned "off" is allowed there
    assert not strategy.zones[zone].safety_route
    off = Override(
        id="byte-av-armaturer",
        kind=OverrideKind.MAINTENANCE,
        zones=[zone],
        off=True,
        starts=dt.datetime(2026, 12, 10, 20, 0, tzinfo=dt.UTC),
        expires=dt.datetime(2026, 12, 10, 22, 0, tzinfo=dt.UTC),
    )
    overrides = [*strategy.overrides, off]
    program = sign_program(
        compile_program(strategy, GATEWAY, START, 24, overrides=overrides), signing_key
    )
    clock = [int(dt.datetime(2026, 12, 10, 19, 0, tzinfo=dt.UTC).timestamp() * 1000)]
    r, field = runner(program, signing_key, tmp_path, clock, [])
    await r.on_program(program, encode(program))
    sensor = next(iter(r.sensors.values()))
    checked = 0
    # every 20 minutes from 19:00 to 23:00 UTC; settle the gear's fades before comparing
    for step in range(13):
        t = int(dt.datetime(2026, 12, 10, 19, 0, tzinfo=dt.UTC).timestamp() * 1000)
        t += step * 20 * 60_000
        clock[0] = t
        await r.step()
        clock[0] = t + 100_000
        await r.step()
        detections: dict[str, list[Detection]] = {}
        if step % 3 == 1:  # someone walks past a sensor
            r.on_presence(sensor.key, clock[0])
            await r.step()
            detections = {sensor.zone: [Detection(sensor.position_m, _at(clock[0]))]}
        clock[0] += 2_000  # past the presence fade-up
        for lum in program.luminaires:
            preview = evaluate(
                strategy, lum.id, _at(clock[0]), overrides=overrides, presence=detections
            )
            assert field.level(lum.id) == preview.level, (lum.id, _at(clock[0]), preview)
            checked += 1
    assert checked == 13 * len(program.luminaires)
    # the maintenance window really was dark there, and lit elsewhere
    clock[0] = int(dt.datetime(2026, 12, 10, 21, 0, tzinfo=dt.UTC).timestamp() * 1000)
    await r.step()
    clock[0] += 100_000
    assert all(field.level(x.id) == 0 for x in program.luminaires if x.zone == zone)
    assert all(field.level(x.id) > 0 for x in program.luminaires if x.zone != zone)
