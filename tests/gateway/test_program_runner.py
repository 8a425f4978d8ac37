"""The gateway's program runner on simulated DALI buses: signed programs in, levels out."""

from __future__ import annotations

import datetime as dt
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
    """Simulated buses carrying exactly the program's luminaires, on the runner's clock (so a
    test steps through the gear's own fades by moving the clock)."""

    def __init__(self, program: Program, clock_ms: list[int]) -> None:
        self.sim: dict[str, SimulatedDaliBus] = {}
        self.drivers: dict[str, DaliLuminaireDriver] = {}
        by_bus: dict[str, list] = {}
        for lum in program.luminaires:
            by_bus.setdefault(lum.bus, []).append(lum)
        for bus, lums in by_bus.items():
            groups = lambda lum: frozenset({lum.group} if lum.group is not None else ())  # noqa: E731
            self.sim[bus] = SimulatedDaliBus(
                [GearSpec(lum.short_address, groups(lum)) for lum in lums],
                now=lambda: clock_ms[0] / 1000,
            )
            self.drivers[bus] = DaliLuminaireDriver(
                SimulatedDaliTransport(self.sim[bus], name=bus),
                [Luminaire(lum.id, lum.short_address, groups(lum)) for lum in lums],
                budget_share=1.0,  # no wire time here: background reads need not wait
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
    field = Field(program, clock_ms)
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
    clock = [NIGHT]
    r, field = runner(program, signing_key, tmp_path, clock, events)
    await r.on_program(program, encode(program))
    assert r.mode == "fail-safe" and events[-1].kind == EventKind.PROGRAM_APPLIED
    await r.step()
    assert r.mode == "program"
    dapc = sum(d.stats.level_frames_planned for d in field.drivers.values())
    assert dapc <= len(program.groups)  # one DAPC per (bus, group), not one per luminaire
    later = settle(clock)
    for lum in program.luminaires:
        assert field.level(lum.id) == program_level(program, later, luminaire=lum.id), lum.id
    assert await r.step() == 0  # nothing changed: nothing sent


def settle(clock: list[int]) -> int:
    """Move the runner's (and the gear's) clock past every fade started now."""
    clock[0] += 100_000
    return clock[0]


async def test_a_tampered_program_is_rejected_and_the_fail_safe_lights_the_night(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    events: list[Event] = []
    clock = [NIGHT]
    r, field = runner(program, signing_key, tmp_path, clock, events)
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
    clock[0] += 10_000  # the fail-safe's own fade
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
    clock[0] += 10_000
    assert all(field.level(lum.id) == 0 for lum in program.luminaires)
    clock[0] = NIGHT
    await r.step()
    clock[0] += 10_000
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
    clock[0] += 100_000
    in_zone = [lum.id for lum in program.luminaires if lum.zone == zone]
    assert in_zone and all(field.level(x) == 254 for x in in_zone)
    others = [lum.id for lum in program.luminaires if lum.zone != zone]
    assert all(field.level(x) == program_level(program, clock[0], luminaire=x) for x in others)
    clock[0] = NIGHT + 600_000
    await r.step()
    assert any(e.kind == EventKind.OVERRIDE_ENDED for e in events)
    clock[0] += 100_000
    assert all(field.level(x) == program_level(program, clock[0], luminaire=x) for x in in_zone)


async def test_a_maintenance_set_cannot_take_a_luminaire_below_its_floor(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    clock = [NIGHT]
    r, field = runner(program, signing_key, tmp_path, clock, [])
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
    clock[0] += 50_000
    assert field.level(lum.id) == lum.floor_level > 0


async def test_presence_lights_the_corridor(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    clock = [NIGHT]
    r, field = runner(program, signing_key, tmp_path, clock, [])
    await r.on_program(program, encode(program))
    await r.step()
    clock[0] += 100_000
    await r.step()
    sensor = next(iter(r.sensors.values()))
    boosted = r.on_presence(sensor.key, clock[0])
    corridor = presence_corridor(program, sensor.zone, sensor.position_m)
    assert boosted == len(corridor) > 0
    driver = field.drivers[sensor.bus]
    before = driver.stats.urgent_frames
    await r.step()
    # the gear was left at the presence fade-up time: the boost is DAPC frames only
    assert driver.stats.urgent_frames - before <= len(corridor)
    rule = next(p for p in program.presence if p.zone == sensor.zone)
    clock[0] += rule.fade_up_ms
    for lum, level in corridor:
        assert field.level(lum.id) == max(level, program_level(program, clock[0], luminaire=lum.id))
    clock[0] += rule.hold_ms
    await r.step()
    assert r.boosts == {}
    # the boost ends with the presence fade-down, run by the gear
    gear = field.sim[sensor.bus].by_short_address(corridor[0][0].short_address)
    assert gear.fade_running
    clock[0] += rule.fade_down_ms + 1_000
    for lum, _ in corridor:
        assert field.level(lum.id) == program_level(program, clock[0], luminaire=lum.id)


async def test_presence_in_daylight_lights_nothing(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    clock = [NOON]
    r, field = runner(program, signing_key, tmp_path, clock, [])
    await r.on_program(program, encode(program))
    await r.step()
    sensor = next(iter(r.sensors.values()))
    assert r.on_presence(sensor.key, NOON) == 0
    await r.step()
    clock[0] += 100_000
    assert all(field.level(lum.id) == 0 for lum in program.luminaires)
    assert r.presence_reactions == 0


async def test_the_last_good_program_survives_a_restart(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    r, _ = runner(program, signing_key, tmp_path, [NIGHT], [])
    await r.on_program(program, encode(program))
    again, _ = runner(program, signing_key, tmp_path, [NIGHT], [])
    assert again.program == program
    levels = desired_levels(again.program, NIGHT, [program.luminaires[0].id], fail_safe_level=0)
    assert levels
