"""The gateway's program runner on simulated DALI buses: signed programs in, levels out."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fieldsim.dali import GearSpec, SimulatedDaliBus, SimulatedDaliTransport
from gateway.dali.driver import DaliLuminaireDriver, Luminaire
from gateway.levels import desired_levels
from gateway.program_runner import PresenceSensor, ProgramRunner
from lykta.contract import Event, EventKind, build_command, encode
from lykta.contract.program import Program
from lykta.strategy import presence_corridor, program_level

NIGHT = int(dt.datetime(2026, 12, 10, 21, 0, tzinfo=dt.UTC).timestamp() * 1000)
NOON = int(dt.datetime(2026, 12, 11, 10, 30, tzinfo=dt.UTC).timestamp() * 1000)


class Field:
    """Simulated buses carrying exactly the program's luminaires."""

    def __init__(self, program: Program) -> None:
        self.sim: dict[str, SimulatedDaliBus] = {}
        self.drivers: dict[str, DaliLuminaireDriver] = {}
        by_bus: dict[str, list] = {}
        for lum in program.luminaires:
            by_bus.setdefault(lum.bus, []).append(lum)
        for bus, lums in by_bus.items():
            groups = lambda lum: frozenset({lum.group} if lum.group is not None else ())  # noqa: E731
            self.sim[bus] = SimulatedDaliBus(
                [GearSpec(lum.short_address, groups(lum)) for lum in lums], now=time.monotonic
            )
            self.drivers[bus] = DaliLuminaireDriver(
                SimulatedDaliTransport(self.sim[bus], name=bus),
                [Luminaire(lum.id, lum.short_address, groups(lum)) for lum in lums],
            )
        self.where = {lum.id: (lum.bus, lum.short_address) for lum in program.luminaires}

    def level(self, lum_id: str) -> int:
        bus, addr = self.where[lum_id]
        return self.sim[bus].by_short_address(addr).actual_level


def runner(
    program: Program,
    key: Ed25519PrivateKey | None,
    tmp_path: Path,
    clock_ms: list[int],
    events: list[Event],
) -> tuple[ProgramRunner, Field]:
    field = Field(program)
    sensors = (
        [PresenceSensor(program.luminaires[0].bus, 7, program.presence[0].zone, 50.0)]
        if program.presence
        else []
    )
    r = ProgramRunner(
        site=program.site,
        gateway=program.gateway,
        drivers=field.drivers,
        luminaires={lum: bus for lum, (bus, _a) in field.where.items()},
        state_dir=tmp_path,
        public_key=key.public_key() if key else None,
        latitude=program.latitude,
        longitude=program.longitude,
        presence_sensors=sensors,
        emit=events.append,
        clock=lambda: clock_ms[0],
    )
    return r, field


async def test_a_signed_program_drives_every_luminaire_with_group_frames(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    events: list[Event] = []
    r, field = runner(program, signing_key, tmp_path, [NIGHT], events)
    await r.on_program(program, encode(program))
    assert r.mode == "fail-safe" and events[-1].kind == EventKind.PROGRAM_APPLIED
    frames = await r.step()
    assert r.mode == "program"
    for lum in program.luminaires:
        assert field.level(lum.id) == program_level(program, NIGHT, luminaire=lum.id), lum.id
    assert frames < len(program.luminaires) / 3  # group and broadcast frames, not one each
    assert await r.step() == 0  # nothing changed: nothing sent


async def test_a_tampered_program_is_rejected_and_the_fail_safe_lights_the_night(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    events: list[Event] = []
    r, field = runner(program, signing_key, tmp_path, [NIGHT], events)
    g = program.groups[0]
    dimmer = msgspec.structs.replace(
        g, points=[msgspec.structs.replace(p, level=1) for p in g.points]
    )
    tampered = msgspec.structs.replace(program, groups=[dimmer, *program.groups[1:]])
    await r.on_program(tampered, encode(tampered))
    assert events[-1].kind == EventKind.PROGRAM_REJECTED
    assert events[-1].detail["reason"] == "bad signature"
    await r.step()
    assert r.mode == "fail-safe"
    assert all(field.level(lum.id) == 254 for lum in program.luminaires)


async def test_unsigned_or_foreign_programs_are_rejected(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    events: list[Event] = []
    r, _ = runner(program, signing_key, tmp_path, [NIGHT], events)
    other_key = Ed25519PrivateKey.generate()
    from lykta.signing import sign_program

    for bad in (
        msgspec.structs.replace(program, signature=None),
        sign_program(program, other_key),
        sign_program(msgspec.structs.replace(program, gateway="gw-ektorp"), signing_key),
    ):
        await r.on_program(bad, encode(bad))
        assert events[-1].kind == EventKind.PROGRAM_REJECTED
    assert r.program is None
    await r.on_program(None, b"garbage")
    assert events[-1].kind == EventKind.PROGRAM_REJECTED


async def test_fail_safe_is_off_by_day_and_follows_the_gateways_own_sun(
    program: Program, tmp_path: Path
) -> None:
    clock = [NOON]
    r, field = runner(program, None, tmp_path, clock, [])
    await r.step()
    assert all(field.level(lum.id) == 0 for lum in program.luminaires)
    clock[0] = NIGHT
    await r.step()
    assert all(field.level(lum.id) == 254 for lum in program.luminaires)


async def test_incident_override_raises_a_zone_until_it_expires(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    events: list[Event] = []
    clock = [NIGHT]
    r, field = runner(program, signing_key, tmp_path, clock, events)
    await r.on_program(program, encode(program))
    zone = program.luminaires[0].zone
    res = await r.on_command(
        build_command(
            "override",
            {"id": "inc-1", "zone": zone, "level": 254, "until_ms": NIGHT + 600_000},
            id="c1", site=program.site, gateway=program.gateway, counter=1,
            issued_ts=NIGHT, expires_ts=NIGHT + 60_000,
        )
    )
    assert res.ok, res.detail
    await r.step()
    in_zone = [lum.id for lum in program.luminaires if lum.zone == zone]
    assert in_zone and all(field.level(x) == 254 for x in in_zone)
    others = [lum.id for lum in program.luminaires if lum.zone != zone]
    assert all(field.level(x) == program_level(program, NIGHT, luminaire=x) for x in others)
    clock[0] = NIGHT + 600_000
    await r.step()
    assert any(e.kind == EventKind.OVERRIDE_ENDED for e in events)
    assert all(field.level(x) == program_level(program, clock[0], luminaire=x) for x in in_zone)


async def test_a_maintenance_set_cannot_take_a_luminaire_below_its_floor(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    r, field = runner(program, signing_key, tmp_path, [NIGHT], [])
    await r.on_program(program, encode(program))
    lum = max(program.luminaires, key=lambda x: x.floor_level)
    res = await r.on_command(
        build_command(
            "override",
            {"luminaires": [lum.id], "level": 0, "mode": "set", "until_ms": NIGHT + 60_000},
            id="c2", site=program.site, gateway=program.gateway, counter=2,
            issued_ts=NIGHT, expires_ts=NIGHT + 60_000,
        )
    )
    assert res.ok
    await r.step()
    assert field.level(lum.id) == lum.floor_level > 0


async def test_presence_lights_the_corridor(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    clock = [NIGHT]
    r, field = runner(program, signing_key, tmp_path, clock, [])
    await r.on_program(program, encode(program))
    await r.step()
    sensor = next(iter(r.sensors.values()))
    boosted = r.on_presence(sensor.bus, sensor.short_address, NIGHT)
    corridor = presence_corridor(program, sensor.zone, sensor.position_m)
    assert boosted == len(corridor) > 0
    await r.step()
    for lum, level in corridor:
        assert field.level(lum.id) == max(level, program_level(program, NIGHT, luminaire=lum.id))
    rule = next(p for p in program.presence if p.zone == sensor.zone)
    clock[0] = NIGHT + rule.hold_ms + 1
    await r.step()
    assert r.boosts == {}


async def test_the_last_good_program_survives_a_restart(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    r, _ = runner(program, signing_key, tmp_path, [NIGHT], [])
    await r.on_program(program, encode(program))
    again, _ = runner(program, signing_key, tmp_path, [NIGHT], [])
    assert again.program == program
    levels = desired_levels(again.program, NIGHT, [program.luminaires[0].id], fail_safe_level=0)
    assert levels
