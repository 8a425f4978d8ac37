"""Adaptive classes by traffic at the gateway: the runner counts its zone's presence sensors
over the window, steps the class down while the street is quiet and back up at the first
burst of people — on simulated DALI gear, and through the production path (Part 303
occupancy frames on the simulated bus, the field reader, the gateway daemon, MQTT). The floor
is checked on every level the gear receives. A sensor counts only while alive: a Modbus sensor
answering polls, a DALI sensor sending any Part 303 event (its periodic "vacant" reports
included); a silent one is unknown traffic, never an empty street."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import time
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from dali.command import Command
from dali.gear.general import DAPC
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldsim.cabinet import SimulatedCabinet
from gateway.daemon import Gateway
from gateway.levels import wanted_levels
from gateway.outbox import EVENT, TELEMETRY
from gateway.program_runner import PresenceSensor, ProgramRunner
from lykta.cli.demo_site import write_demo_site
from lykta.clock import ScaledClock
from lykta.config import MqttConfig
from lykta.contract import Event, EventKind, TelemetryBatch, decode, encode
from lykta.contract.program import Program
from lykta.signing import sign_program
from lykta.strategy import (
    Strategy,
    compile_program,
    in_lit_window,
    load_strategy,
    program_level,
)
from lykta.strategy.en13201 import LightingClass
from lykta.strategy.evaluator import class_level
from tests.gateway.conftest import START
from tests.gateway.test_program_runner import Field
from tests.waiting import eventually

GW = "gw-ektorp"
# Thursday 10 December 2026, 17:00 local: Ektorp's evening, P4 (P6 floor), adapting
EVENING = int(dt.datetime(2026, 12, 10, 16, 0, tzinfo=dt.UTC).timestamp() * 1000)
MIN = 60_000


def _runner(
    strategy: Strategy, key: Ed25519PrivateKey, tmp_path: Path, clock: list[int]
) -> tuple[ProgramRunner, Field, Program]:
    program = sign_program(compile_program(strategy, GW, START, 24), key)
    field = Field(program, clock)
    sensors = [
        PresenceSensor("dali1", 1, "ektorp", 100.0),  # a DALI Part 303 occupancy sensor
        PresenceSensor("modbus", 0, "ektorp", 900.0, device="radar-ek"),  # a polled counter
    ]
    r = ProgramRunner(
        site=program.site, gateway=GW, drivers=field.drivers,
        luminaires={lum: bus for lum, (bus, _a) in field.where.items()}, state_dir=tmp_path,
        public_key=key.public_key(), latitude=program.latitude, longitude=program.longitude,
        presence_sensors=sensors, clock=lambda: clock[0],
    )  # fmt: skip
    return r, field, program


@pytest.fixture(scope="module")
def program_ektorp(strategy: Strategy, signing_key: Ed25519PrivateKey) -> Program:
    return sign_program(compile_program(strategy, GW, START, 24), signing_key)


def _dali(sensor: int, ts: int, *, repeat: bool = False, occupied: bool = True) -> Event:
    # what the DALI driver makes of a Part 303 occupancy frame
    return Event(ts=ts, kind=EventKind.PRESENCE, source=f"dali1/sensor-{sensor}",
                 detail={"occupied": occupied, "movement": occupied, "repeat": repeat,
                         "short_address": sensor})  # fmt: skip


def _reports(r: ProgramRunner, clock: list[int], start: int, end: int) -> None:
    """Sensor 1's Part 303 report timer (30 s) from ``start`` to ``end``: "vacant", repeated."""
    for t in range(start, end + 1, 30_000):
        clock[0] = t
        r.on_presence_event(_dali(1, t, repeat=True, occupied=False), read_at=None)


def _levels(strategy: Strategy, cls: str) -> dict[str, int]:
    """The arc level of class ``cls`` for every Ektorp luminaire (by its design class)."""
    return {
        lum.id: class_level(lum.design_class, LightingClass.parse(cls))
        for lum in strategy.luminaires
        if lum.gateway == GW
    }


async def test_quiet_steps_down_a_burst_steps_up_and_the_floor_holds(
    strategy: Strategy, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    clock = [EVENING]
    r, field, program = _runner(strategy, signing_key, tmp_path, clock)
    await r.on_program(program, encode(program))
    p4, p5, p6 = (_levels(strategy, c) for c in ("P4", "P5", "P6"))
    floor = {lum.id: lum.floor_level for lum in program.luminaires}
    assert p6 == floor  # Ektorp's floor is P6

    async def at(ms: int) -> dict[str, int]:
        clock[0] = ms
        await r.step()
        clock[0] = ms + 100_000  # past the gear's fades (64 s down)
        await r.step()
        got = {lum: field.level(lum) for lum in r.luminaires}
        if in_lit_window(program, ms):
            assert all(got[x] >= floor[x] for x in got), "below the floor"
        return got

    def feed(ms: int, n: int = 1, *, repeat: bool = False) -> None:
        clock[0] = ms  # the runner counts on its own clock
        for _ in range(n):
            r.on_presence_event(_dali(1, ms, repeat=repeat), read_at=None)

    # the first window is not counted yet: unknown, so the schedule's P4 — not zero traffic
    feed(EVENING)
    assert await at(EVENING + 5 * MIN) == p4
    assert r.adaptive_steps == {}
    # six people at 14 min (the radar has never answered: its zero is unknown, left out);
    # at 16 min the window holds the six: 24/h, below 60/h but not below 15/h: one down, P5
    feed(EVENING + 14 * MIN, 6)
    assert await at(EVENING + 16 * MIN) == p5
    assert r.adaptive_steps == {"ektorp": 1}
    _reports(r, clock, EVENING + 16 * MIN, EVENING + 30 * MIN)  # alive, nobody there
    assert await at(EVENING + 30 * MIN) == p6  # the six left the window: quiet, P6 = floor
    assert r.adaptive_steps == {"ektorp": 2}
    # a Part 303 repeat is the same person still there: not counted
    feed(EVENING + 31 * MIN, 30, repeat=True)
    # the radar counts 16 people between two polls: 64/h, above 60/h but inside the 20 %
    # hysteresis (72/h): one step up only, P6 -> P5
    r.on_presence_event(Event(ts=0, kind=EventKind.PRESENCE, source="radar-ek",
                              detail={"occupied": False, "people": 16}))  # fmt: skip
    assert await at(EVENING + 32 * MIN) == p5
    assert r.adaptive_steps == {"ektorp": 1}
    # a burst: 20 people in a moment -> 80/h, past 72/h: back up to P4 at once
    feed(EVENING + 33 * MIN, 20)
    assert await at(EVENING + 33 * MIN + 1_000) == p4
    assert r.adaptive_steps == {}
    # the radar stops answering and the DALI sensor reports nobody: the radar is unknown and
    # left out, the live DALI sensor's zero counts: quiet, down again, never below the floor
    _reports(r, clock, EVENING + 34 * MIN, EVENING + 80 * MIN)
    assert await at(EVENING + 80 * MIN) == p6
    assert r.adaptive_steps == {"ektorp": 2}
    # by day nothing is lit, whatever the count
    day = int(dt.datetime(2026, 12, 11, 10, 0, tzinfo=dt.UTC).timestamp() * 1000)
    assert set((await at(day)).values()) == {0}


async def test_a_dali_sensor_gone_silent_is_unknown_traffic_not_an_empty_street(
    strategy: Strategy, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """A Part 303 sensor that dies sends nothing: after a whole window without an event
    (not even its periodic "vacant" report) its zero is unknown, and the zone goes back to the
    schedule's class — unless another live sensor of the zone counts it; reports again: down."""
    clock = [EVENING]
    r, field, program = _runner(strategy, signing_key, tmp_path, clock)
    await r.on_program(program, encode(program))
    p4, p6 = _levels(strategy, "P4"), _levels(strategy, "P6")
    floor = {lum.id: lum.floor_level for lum in program.luminaires}

    async def at(ms: int) -> dict[str, int]:
        clock[0] = ms
        await r.step()
        clock[0] = ms + 100_000  # past the gear's fades
        await r.step()
        got = {lum: field.level(lum) for lum in r.luminaires}
        assert all(got[x] >= floor[x] for x in got), "below the floor"
        return got

    _reports(r, clock, EVENING, EVENING + 20 * MIN)  # alive, nobody there: quiet
    assert await at(EVENING + 20 * MIN) == p6
    assert r.adaptive_steps == {"ektorp": 2}
    # the executor wakes when the last sign of life leaves the window, not at the next tick
    due = r.next_due_ms(EVENING + 20 * MIN + 1)
    assert due is not None and due <= EVENING + 35 * MIN + 1
    # the sensor dies: still alive inside the window of its last report ...
    assert await at(EVENING + 33 * MIN) == p6  # (and at 34.7 min, when at() steps again)
    # ... then unknown (the radar never answered either): the unadapted class, P4
    assert r.zone_flow("ektorp", 15 * MIN, EVENING + 36 * MIN) is None
    assert await at(EVENING + 36 * MIN) == p4
    assert r.adaptive_steps == {}
    # another sensor of the zone answers (the radar, nobody counted): the zone is known quiet
    clock[0] = EVENING + 40 * MIN
    r.on_sensor_reading("radar-ek", clock[0])
    assert await at(EVENING + 40 * MIN) == p6
    # the radar falls silent too: unknown again
    assert await at(EVENING + 56 * MIN) == p4
    assert r.adaptive_steps == {}
    # the DALI sensor comes back, reporting nobody: a whole window of reports, down again
    _reports(r, clock, EVENING + 57 * MIN, EVENING + 72 * MIN)
    assert await at(EVENING + 72 * MIN) == p6
    assert r.adaptive_steps == {"ektorp": 2}


def test_a_step_by_traffic_fades_down_slowly_and_up_fast(program_ektorp: Program) -> None:
    lum = program_ektorp.luminaires[0]
    [rule] = program_ektorp.adaptive
    ids = [lum.id]
    down = wanted_levels(program_ektorp, EVENING, ids, fail_safe_level=254,
                         adaptive_steps={"ektorp": 2}, commanded={lum.id: 240})[lum.id]  # fmt: skip
    assert (down.source, down.fade_ms) == ("adaptive", rule.fade_down_ms)
    assert down.level == lum.floor_level
    was = {lum.id: down.level}
    up = wanted_levels(program_ektorp, EVENING, ids, fail_safe_level=254,
                       previous={lum.id: "adaptive"}, commanded=was)[lum.id]  # fmt: skip
    assert up.source == "program" and up.level > down.level
    assert up.fade_ms == rule.fade_up_ms == 2_000
    assert rule.fade_down_ms == 64_000


async def test_no_sensor_in_the_zone_is_no_adaptation(
    strategy: Strategy, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    clock = [EVENING]
    program = sign_program(compile_program(strategy, GW, START, 24), signing_key)
    field = Field(program, clock)
    r = ProgramRunner(
        site=program.site, gateway=GW, drivers=field.drivers,
        luminaires={lum: bus for lum, (bus, _a) in field.where.items()}, state_dir=tmp_path,
        public_key=signing_key.public_key(), latitude=program.latitude,
        longitude=program.longitude, presence_sensors=[], clock=lambda: clock[0],
    )  # fmt: skip
    await r.on_program(program, encode(program))
    for minutes in (0, 20, 60, 200):
        clock[0] = EVENING + minutes * MIN
        await r.step()
        assert r.adaptive_steps == {}
        assert r.zone_flow("ektorp", 15 * MIN, clock[0]) is None
        for lum in r.luminaires:
            assert r.wanted(clock[0])[lum].level == program_level(program, clock[0], luminaire=lum)
    # a zone counted only by a polled sensor that never answered: unknown, not zero
    radar = ProgramRunner(
        site=program.site, gateway=GW, drivers=field.drivers, luminaires={},
        state_dir=tmp_path / "radar", public_key=signing_key.public_key(), latitude=58.59,
        longitude=16.19, clock=lambda: clock[0],
        presence_sensors=[PresenceSensor("modbus", 0, "ektorp", 5.0, device="radar-ek")],
    )  # fmt: skip
    clock[0] += 20 * MIN
    assert radar.zone_flow("ektorp", 15 * MIN, clock[0]) is None
    radar.on_sensor_reading("radar-ek", clock[0])  # it answers: nobody there, that is zero
    assert radar.zone_flow("ektorp", 15 * MIN, clock[0]) == 0.0


async def test_modbus_counter_delta_counts_people_between_polls(
    strategy: Strategy, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    clock = [EVENING]
    r, _field, _p = _runner(strategy, signing_key, tmp_path, clock)
    clock[0] = EVENING + 16 * MIN
    r.on_presence_event(Event(ts=0, kind=EventKind.PRESENCE, source="radar-ek",
                              detail={"occupied": True, "people": 5}))  # fmt: skip
    r.on_presence_event(Event(ts=0, kind=EventKind.PRESENCE, source="radar-ek",
                              detail={"occupied": True, "people": "lots"}))  # fmt: skip
    assert r.zone_flow("ektorp", 15 * MIN, clock[0]) == 6 * 4  # 5 + a bad count read as 1


# -- the production path -------------------------------------------------------------------


async def test_through_the_bus_the_reader_and_the_daemon(
    mqtt_cfg: MqttConfig, tmp_path: Path
) -> None:
    night = dt.datetime(2027, 1, 14, 17, 0, tzinfo=dt.UTC)  # Thursday 18:00 local, evening
    speed = 150.0  # 15 simulated minutes in 6 s (time to start the daemon on a busy machine)
    clock = ScaledClock(int(night.timestamp() * 1000), speed=speed)
    async with SimulatedCabinet(
        12, sensors=3, pedestrians_per_hour=0, cyclists_per_hour=0, now=clock.seconds,
    ) as cab:  # fmt: skip
        strategy_file, [site] = write_demo_site(tmp_path / "site", [cab], ["gw01"])
        inv = strategy_file.parent / "inventory.csv"
        rows = list(csv.DictReader(inv.open(encoding="utf-8")))
        for row in rows:
            row["zone"] = "ektorp"  # the demo cabinet lights Ektorp's residential street
        with inv.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        strategy = load_strategy(strategy_file)
        key = Ed25519PrivateKey.generate()
        compiled = compile_program(strategy, "gw01", night - dt.timedelta(hours=2), 24)
        program = sign_program(msgspec.structs.replace(compiled, site="norrkoping"), key)
        assert [a.zone for a in program.adaptive] == ["ektorp"]
        design = strategy.luminaires[0].design_class
        p4, p6 = (class_level(design, LightingClass.parse(c)) for c in ("P4", "P6"))
        floor = program.luminaires[0].floor_level
        assert p6 == floor < p4
        sent: list[tuple[int, int]] = []  # (simulated ms, arc level) of every DAPC

        def observe(frame) -> None:  # noqa: ANN001
            cmd = Command.from_frame(frame)
            if isinstance(cmd, DAPC):  # to one gear, a group or all of them
                sent.append((clock.now_ms(), cmd.power))

        cab.dali_bus.frame_listener = observe
        async with cab.field_reader(
            interval_s=5, energy_interval_s=3600, prefix="gw01-L"
        ) as reader:
            driver = reader.drivers[0]
            sensors = [PresenceSensor(site.bus, i, "ektorp", pos)
                       for i, pos in enumerate(cab.path.sensor_positions_m)]  # fmt: skip
            runner = ProgramRunner(
                site=program.site, gateway="gw01", drivers={site.bus: driver},
                luminaires={lum.id: site.bus for lum in driver.luminaires},
                state_dir=tmp_path / "program", public_key=key.public_key(),
                latitude=58.59, longitude=16.19, presence_sensors=sensors,
                clock=clock.now_ms, speed=speed, tick_s=0.2,
            )  # fmt: skip
            await runner.on_program(program, encode(program))
            gw = Gateway(
                program.site, "gw01", mqtt_cfg, reader, tmp_path / "gw",
                telemetry_interval_s=3, runner=runner, clock=clock.now_ms,
            )  # fmt: skip

            def gear() -> set[int]:
                return {g.actual_level for g in cab.dali_bus.gear}

            def batches() -> list[TelemetryBatch]:
                # what the gateway publishes, decoded as a controller does (no controller
                # here sends resume, so every batch is still in the outbox, unsent)
                box = gw.link.outbox
                return [decode(box.payload(e), TelemetryBatch)
                        for e in box.due(time.monotonic(), 100_000) if e.kind == TELEMETRY]

            async def next_batch() -> TelemetryBatch:
                """The first batch made from now on."""
                n = len(batches())
                await eventually(lambda: len(batches()) > n, within_s=15)
                return batches()[n]

            async with gw:
                # nobody for a whole window: two classes down, to the floor — not before the
                # window is counted (until then the flow is unknown: the schedule's P4)
                await eventually(lambda: runner.adaptive_steps == {"ektorp": 2}, within_s=30)
                stepped_at = clock.now_ms()
                assert stepped_at >= runner.counting_since + 15 * 60_000
                assert any(lvl == p4 for t, lvl in sent if t < runner.counting_since + 15 * 60_000)
                await eventually(lambda: gear() == {p6}, within_s=10)
                # the batches say so: the controller judges Ektorp against P6, not P4
                assert runner.adaptive_steps == {"ektorp": 2}
                assert (await next_batch()).zone_steps == {"ektorp": 2}
                # every sensor dies silently (no more "vacant" reports): after a window
                # without a sign of life the flow is unknown, not zero — back to P4
                cab.silent_sensors = {0, 1, 2}
                await eventually(lambda: runner.adaptive_steps == {}, within_s=30)
                assert runner.zone_flow("ektorp", 15 * 60_000, clock.now_ms()) is None
                await eventually(lambda: gear() == {p4}, within_s=5)
                assert runner.adaptive_steps == {}
                assert (await next_batch()).zone_steps == {}  # and off the wire: no step
                cab.silent_sensors = set()
                # a burst of pedestrians past sensor 1, as Part 303 frames on the bus
                for _ in range(25):
                    cab.dali_bus.occupancy_event(1)
                    await asyncio.sleep(0.01)

                def flow() -> float:
                    return runner.zone_flow("ektorp", 15 * 60_000, clock.now_ms()) or 0.0

                await eventually(lambda: flow() >= 25 * 4, within_s=5)  # known, and busy
                await eventually(lambda: runner.adaptive_steps == {}, within_s=5)
                await eventually(lambda: gear() == {p4}, within_s=5)
                assert gw.healthy() and not gw.failed.is_set()
                # the vacant reports reached the executor (above) but were not stored to be
                # published: heartbeats are counted, not sent (no controller confirms here,
                # so every stored event is still in the outbox)
                assert gw.presence_reports > 0
                assert gw.link.outbox.count(EVENT) < gw.presence_events
    levels = [lvl for _, lvl in sent]
    assert levels and min(levels) >= floor, sorted(set(levels))  # the floor, on the wire


KINDS = ("occupied", "repeat", "vacant", "vacant_repeat")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(st.tuples(st.sampled_from([1, 2]), st.integers(0, 60 * MIN),
                       st.sampled_from(KINDS)), max_size=60),  # fmt: skip
    st.integers(0, 80 * MIN),
)
def test_the_flow_is_the_busiest_live_sensors_count_in_the_window(
    tmp_path_factory: pytest.TempPathFactory,
    detections: list[tuple[int, int, str]],
    query: int,
) -> None:
    """Invariant: the flow at ``t`` is the largest count of new occupancy (not repeats, not
    vacancy) in (t − 15 min, t] among the sensors with any Part 303 event in that window, per
    hour — counted here directly; unknown when no sensor sent anything in the window, and
    before 15 min counted."""
    clock = [EVENING]
    r = ProgramRunner(
        site="s", gateway=GW, drivers={}, luminaires={},
        state_dir=tmp_path_factory.mktemp("flow"), public_key=None, latitude=58.59,
        longitude=16.19, clock=lambda: clock[0],
        presence_sensors=[PresenceSensor("dali1", k, "ektorp", 10.0 * k) for k in (1, 2)],
    )  # fmt: skip
    for sensor, off, kind in sorted(detections, key=lambda d: d[1]):
        if off <= query:
            clock[0] = EVENING + off
            event = _dali(sensor, clock[0], repeat="repeat" in kind,
                          occupied=not kind.startswith("vacant"))  # fmt: skip
            r.on_presence_event(event, read_at=None)
    got = r.zone_flow("ektorp", 15 * MIN, EVENING + query)
    if query < 15 * MIN:
        assert got is None
        return
    window = [(s, kind) for s, off, kind in detections if query - 15 * MIN < off <= query]
    live = {s for s, _ in window}
    per = [sum(1 for s, kind in window if s == k and kind == "occupied") for k in sorted(live)]
    assert got == (max(per) * 4 if per else None)
