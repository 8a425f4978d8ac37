"""The executor's promises on simulated DALI gear: levels heal, DALI's own fail-safe is set,
commanded state survives a restart, replays and mismatched programs are refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fieldsim.dali import GearSpec, SimulatedDaliBus, SimulatedDaliTransport
from gateway.dali.driver import DaliLuminaireDriver, Luminaire
from gateway.program_runner import ProgramRunner
from lykta.contract import Command, Event, EventKind, build_command, encode
from lykta.contract.program import Program
from lykta.signing import sign_program
from lykta.strategy import Strategy, compile_program, program_level
from tests.gateway.conftest import GATEWAY, START
from tests.gateway.test_program_runner import NIGHT, Field, runner, settle


async def test_a_contactor_power_cycle_heals_within_one_state_read(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """The cabinet contactor drops the gear's mains and switches it on again: every gear comes
    up at its POWER ON LEVEL with "power cycle seen"; one read of the states (the
    reconciliation pass) and one step later every luminaire is back at its program level."""
    clock = [NIGHT]
    r, field = runner(program, signing_key, tmp_path, clock, [])
    await r.on_program(program, encode(program))
    await r.step()
    t = settle(clock)
    want = {lum.id: program_level(program, t, luminaire=lum.id) for lum in program.luminaires}
    assert {x: field.level(x) for x in want} == want
    for sim in field.sim.values():
        sim.contactor(False)
        sim.contactor(True)
    assert all(field.level(x) == 254 for x in want)  # the power-on level, not the program's
    assert await r.step() == 0  # the executor cannot know yet: nothing changed for it
    for driver in field.drivers.values():
        await driver.read_states()  # one reconciliation pass
    assert sum(d.stats.heals for d in field.drivers.values()) == len(want)
    await r.step()
    t = settle(clock)
    assert {x: field.level(x) for x in want} == {
        lum.id: program_level(program, t, luminaire=lum.id) for lum in program.luminaires
    }


async def test_a_level_changed_behind_the_gateways_back_is_healed(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    from dali.address import GearShort
    from dali.gear.general import DAPC

    clock = [NIGHT]
    r, field = runner(program, signing_key, tmp_path, clock, [])
    await r.on_program(program, encode(program))
    await r.step()
    t = settle(clock)
    lum = program.luminaires[0]
    field.sim[lum.bus].process(DAPC(GearShort(lum.short_address), 254).frame)  # another master
    clock[0] += 5_000
    assert field.level(lum.id) == 254
    await field.drivers[lum.bus].read_states()
    await r.step()
    t = settle(clock)
    assert field.level(lum.id) == program_level(program, t, luminaire=lum.id)


async def test_power_on_and_system_failure_levels_are_the_fail_safe() -> None:
    clock = [0.0]
    sim = SimulatedDaliBus(
        [GearSpec(a, power_on_level=100, system_failure_level=255) for a in range(3)],
        now=lambda: clock[0],
    )
    driver = DaliLuminaireDriver(
        SimulatedDaliTransport(sim), [Luminaire(f"L{a}", a) for a in range(3)]
    )
    assert await driver.program_fail_safe_levels(230) == 6
    assert [(g.power_on_level, g.system_failure_level) for g in sim.gear] == [(230, 230)] * 3
    assert await driver.program_fail_safe_levels(230) == 0  # already right: only queries
    await driver.set_levels({"L0": 10, "L1": 10, "L2": 10})
    for g in sim.gear:
        g.bus_power_lost()  # a cut bus: the gear's own fail-safe lights the street
    assert [g.actual_level for g in sim.gear] == [230] * 3


def _override(program: Program, now: int, until: int, zone: str) -> Command:
    return build_command(
        "override",
        {"id": "inc-7", "zone": zone, "level": 254, "until_ms": until},
        id=f"c-{now}", site=program.site, gateway=program.gateway, counter=now,
        issued_ts=now, expires_ts=now + 60_000,
    )  # fmt: skip


async def test_an_override_survives_a_restart_with_its_original_expiry(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    clock = [NIGHT]
    events: list[Event] = []
    r, _ = runner(program, signing_key, tmp_path, clock, events)
    await r.on_program(program, encode(program))
    zone = program.luminaires[0].zone
    until = NIGHT + 1_800_000
    assert (await r.on_command(_override(program, NIGHT, until, zone))).ok
    clock[0] += 600_000  # ten minutes later the gateway restarts
    again, field = runner(program, signing_key, tmp_path, clock, [])
    assert again.program == program
    assert {k: v.until_ms for k, v in again.overrides.items()} == {"inc-7": until}
    await again.step()
    settle(clock)
    in_zone = [lum.id for lum in program.luminaires if lum.zone == zone]
    assert all(field.level(x) == 254 for x in in_zone)
    # the controller re-sends it on the birth: idempotent, no second "started" event
    resent = await again.on_command(_override(program, clock[0], until, zone))
    assert resent.ok and again.overrides["inc-7"].until_ms == until
    clock[0] = until
    await again.step()
    t = settle(clock)
    assert all(field.level(x) == program_level(program, t, luminaire=x) for x in in_zone)
    assert not (tmp_path / "overrides.json").read_text().strip("[] \n")


async def test_a_replayed_older_program_is_rejected(
    strategy: Strategy, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    old = sign_program(compile_program(strategy, GATEWAY, START, 24), signing_key)
    new = sign_program(
        compile_program(
            strategy, GATEWAY, START, 24, created=START + dt.timedelta(hours=1), overrides=[]
        ),
        signing_key,
    )
    assert new.created_ts > old.created_ts
    events: list[Event] = []
    r, _ = runner(new, signing_key, tmp_path, [NIGHT], events)
    await r.on_program(new, encode(new))
    await r.on_program(old, encode(old))
    assert events[-1].kind == EventKind.PROGRAM_REJECTED
    assert events[-1].detail["reason"].startswith("older")
    assert r.program == new
    # and after a restart too: the program on disk tells the replay apart
    again, _ = runner(new, signing_key, tmp_path, [NIGHT], events)
    await again.on_program(old, encode(old))
    assert events[-1].detail["reason"].startswith("older") and again.program == new


async def test_a_program_whose_groups_disagree_with_the_bus_is_rejected(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    events: list[Event] = []
    r, _ = runner(program, signing_key, tmp_path, [NIGHT], events)
    lums = list(program.luminaires)
    moved = next(i for i, x in enumerate(lums) if x.group is not None)
    lums[moved] = msgspec.structs.replace(lums[moved], group=(lums[moved].group + 1) % 16)
    bad = sign_program(msgspec.structs.replace(program, luminaires=lums), signing_key)
    await r.on_program(bad, encode(bad))
    assert events[-1].kind == EventKind.PROGRAM_REJECTED
    reason = events[-1].detail["reason"]
    assert lums[moved].id in reason and "group" in reason
    assert r.program is None


async def test_program_expiry_raises_an_event_and_the_fail_safe_takes_over(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    clock = [NIGHT]
    events: list[Event] = []
    r, _ = runner(program, signing_key, tmp_path, clock, events)
    await r.on_program(program, encode(program))
    await r.step()
    clock[0] = program.valid_until
    await r.step()
    await r.step()
    assert [e.kind for e in events].count(EventKind.PROGRAM_EXPIRED) == 1
    assert r.mode == "fail-safe"


async def test_the_lux_rule_switches_with_its_hysteresis(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """A program switching by a lux sensor: dark afternoon -> on before the lit window, light
    at night -> off, in between the thresholds nothing changes; a stale reading is unknown and
    the lit windows decide again."""
    from lykta.contract.program import LuxRule
    from lykta.strategy import lux_program_level

    lux = sign_program(
        msgspec.structs.replace(
            program, lux=LuxRule(sensor="lux-1", on_below_lx=20.0, off_above_lx=40.0)
        ),
        signing_key,
    )
    afternoon = int(dt.datetime(2026, 12, 10, 13, 30, tzinfo=dt.UTC).timestamp() * 1000)
    clock = [afternoon]
    r, field = runner(lux, signing_key, tmp_path, clock, [])
    await r.on_program(lux, encode(lux))
    lum = lux.luminaires[0].id

    async def level_after(reading: float | None) -> int:
        if reading is not None:
            r.on_lux("lux-1", reading, clock[0])
        await r.step()
        clock[0] += 100_000  # past the gear's fade
        return field.level(lum)

    assert await level_after(None) == 0  # astronomical: not lit yet
    dark = await level_after(5.0)  # a dark winter afternoon: on before the window
    assert dark == lux_program_level(lux, clock[0], True, luminaire=lum) > 0
    assert await level_after(30.0) == dark  # between the thresholds: stays on
    assert await level_after(50.0) == 0  # light: off
    assert await level_after(30.0) == 0  # between: stays off
    r.on_lux("lux-2", 1.0, clock[0])  # not the program's sensor: ignored
    assert await level_after(None) == 0
    clock[0] = NIGHT
    r.on_lux("lux-1", 50.0, clock[0] - 16 * 60_000)  # stale: unknown, the lit window decides
    assert await level_after(None) == program_level(lux, clock[0], luminaire=lum) > 0


async def test_a_detection_that_lit_nothing_new_gives_no_reaction_time(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """A second detection while its corridor is still boosted sends nothing: it has no
    reaction time, whether or not the step that took it is interrupted (by a detection of
    another corridor). Otherwise the next corridor's first frame would be timed against the
    earlier read too, a sample as long as the interrupted step and the wait before it."""
    import time

    from gateway.program_runner import PresenceSensor
    from lykta.strategy import presence_corridor

    clock = [NIGHT]
    field = Field(program, clock)
    zone = program.presence[0].zone
    in_zone = sorted((lum for lum in program.luminaires if lum.zone == zone),
                     key=lambda lum: lum.position_m)
    near, far = in_zone[0], in_zone[-1]
    sensors = [PresenceSensor(near.bus, 7, zone, near.position_m),
               PresenceSensor(near.bus, 8, zone, far.position_m)]
    a = presence_corridor(program, zone, near.position_m)
    b = presence_corridor(program, zone, far.position_m)
    lit = {lum.id for lum, _ in a} | {lum.id for lum, _ in b}
    assert not {lum.id for lum, _ in a} & {lum.id for lum, _ in b}, "corridors overlap"
    other = next(lum for lum in program.luminaires if lum.id not in lit and lum.bus == near.bus)
    r = ProgramRunner(
        site=program.site, gateway=program.gateway, drivers=field.drivers,
        luminaires={lum: bus for lum, (bus, _a) in field.where.items()}, state_dir=tmp_path,
        public_key=signing_key.public_key(), latitude=program.latitude,
        longitude=program.longitude, presence_sensors=sensors, emit=lambda e: None,
        clock=lambda: clock[0],
    )  # fmt: skip
    await r.on_program(program, encode(program))
    await r.step()
    settle(clock)
    r.on_presence(sensors[0].key, clock[0], read_at=time.monotonic())
    await r.step()
    assert len(r.presence_latencies_ms) == 1  # corridor A lit
    clock[0] += 1_000
    r.on_presence(sensors[0].key, clock[0], read_at=time.monotonic())  # A again: lit already
    driver = field.drivers[near.bus]
    driver._levels[other.short_address] = None  # noqa: SLF001 - a heal: the step sends one DAPC
    sim = field.sim[near.bus]

    def detection_b(frame: object) -> None:  # B is detected while that step runs
        sim.frame_listener = None
        r.on_presence(sensors[1].key, clock[0], read_at=time.monotonic())

    sim.frame_listener = detection_b
    await r.step()  # interrupted by B
    assert r._changed.is_set()  # noqa: SLF001
    await r.step()  # lights corridor B
    assert len(r.presence_latencies_ms) == 2, r.presence_latencies_ms  # B's, not A's again
