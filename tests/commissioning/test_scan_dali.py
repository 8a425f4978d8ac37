"""`scan dali` over a real transport: the simulated bus behind the firmware-bridge board
emulator on a pseudo-terminal, the commissioning session on the host side of the line."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from fieldsim.dali import GearSpec, SimulatedDaliBus
from fieldsim.dali_devices import ControlDeviceSpec
from firmware_bridge.emulator import Emulator, EmulatorOptions
from firmware_bridge.port import PtyPort
from gateway.commissioning.inventory import REPORT_TIMER_S
from gateway.commissioning.journal import Journal
from gateway.commissioning.report import PlannedLuminaire, render_html
from gateway.commissioning.session import CommissionSession, ScanOptions
from gateway.dali.board import BoardDaliBus


async def _no_wait(_: float) -> None:
    await asyncio.sleep(0)


async def _scan(sim: SimulatedDaliBus, state: Path, options: ScanOptions | None = None,
                *, stop_after: int | None = None) -> CommissionSession:
    """One `scan dali` through the emulator on a pty; with ``stop_after`` the run is cut
    (like Ctrl-C) after that many units were addressed."""
    async with Emulator(PtyPort(), sim, EmulatorOptions()) as emulator, \
            BoardDaliBus.open(emulator.port.slave_path, name="dali1") as bus:  # type: ignore[attr-defined]
        journal = Journal.load(state) if (state / "commission.json").exists() else \
            Journal.create(state, {"bus": "dali1"})
        def cut(step: str, completed: float | None, total: float | None,
                message: str | None) -> None:
            if stop_after is not None and len(journal.data["assigned"]["gear"]) >= stop_after:
                raise KeyboardInterrupt  # the technician's Ctrl-C, mid-search

        session = CommissionSession(bus, journal, sleep_fn=_no_wait, on_progress=cut)
        if stop_after is None:
            await session.scan_dali(options or ScanOptions())
        else:
            with pytest.raises(KeyboardInterrupt):
                await session.scan_dali(options or ScanOptions())
        return session


def _shorts(sim: SimulatedDaliBus) -> list[int | None]:
    return [g.shortaddr for g in sim.gear]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


async def test_64_unaddressed_gear_all_addressed_without_duplicates(state: Path) -> None:
    sim = SimulatedDaliBus([GearSpec(None) for _ in range(64)], now=time.monotonic, seed=5)
    session = await _scan(sim, state, ScanOptions(control_devices=False, inventory=False))
    shorts = _shorts(sim)
    assert None not in shorts and sorted(shorts) == list(range(64))  # type: ignore[type-var]
    report = session.report()
    assert report["gear_found"] == 64 and report["addressed"] == 64
    assert report["duplicates_resolved"] == []
    # the bus time the session counted is the simulator's own figure for the same frames
    assert report["frames"] == sim.frames
    assert report["bus_time_s"] == pytest.approx(sim.bus_time_s + 0.1, abs=0.01)
    assert report["bus_time_s"] <= 130


async def test_existing_addresses_kept_duplicate_found_and_resolved(state: Path) -> None:
    specs = [GearSpec(3), GearSpec(7), GearSpec(7), GearSpec(12), GearSpec(None), GearSpec(None)]
    sim = SimulatedDaliBus(specs, now=time.monotonic, seed=2)
    session = await _scan(sim, state, ScanOptions(control_devices=False))
    shorts = _shorts(sim)
    assert shorts[0] == 3 and shorts[3] == 12  # kept
    assert 7 in shorts[1:3] and len(set(shorts)) == 6  # one of the pair keeps 7
    report = session.report()
    [dup] = report["duplicates_resolved"]
    assert dup["short_address"] == 7 and dup["units"] == 2 and len(dup["moved_to"]) == 1
    assert report["gear_found"] == 6 and report["addressed"] == 2 and report["kept"] == 3
    # D4i bank 1 was read for every gear
    ids = {g["luminaire_id"] for g in report["gear"]}
    assert ids == {20_000 + i for i in range(1, 7)}  # seed 2: serials 2000x
    assert all(g["rated_power_w"] == 40 for g in report["gear"])


async def test_missing_and_unexpected_luminaires_in_the_report(state: Path) -> None:
    sim = SimulatedDaliBus([GearSpec(0), GearSpec(1), GearSpec(5)], now=time.monotonic, seed=1)
    session = await _scan(sim, state, ScanOptions(control_devices=False))
    plan = [PlannedLuminaire("STR-001", "stromstraket", 0, 0),
            PlannedLuminaire("STR-002", "stromstraket", 1, 0),
            PlannedLuminaire("STR-003", "stromstraket", 2, 0)]
    report = session.report(plan)
    assert [m["id"] for m in report["missing"]] == ["STR-003"]
    assert [u["short_address"] for u in report["unexpected"]] == [5]
    page = render_html(report)
    assert "STR-003" in page and "Unexpected" in page


async def test_control_devices_addressed_in_their_own_space_with_event_scheme(
        state: Path) -> None:
    sim = SimulatedDaliBus([GearSpec(0), GearSpec(1)], now=time.monotonic, seed=4,
                           devices=[ControlDeviceSpec(None), ControlDeviceSpec(None),
                                    ControlDeviceSpec(0, instance_types=(3,))])
    session = await _scan(sim, state)
    assert sorted(d.short_address for d in sim.devices) == [0, 1, 2]  # type: ignore[type-var]
    # every instance now sends events naming its device and instance (scheme 2)
    assert all(s == 2 for d in sim.devices for s in d.event_schemes())
    # every occupancy instance repeats "vacant" within seconds (a silent one reads as dead)
    timers = [t for d in sim.devices for t in d.report_timers() if t is not None]
    assert timers == [REPORT_TIMER_S] * 3 and 0 < REPORT_TIMER_S <= 60
    report = session.report()
    assert len(report["control_devices"]) == 3
    types = sorted(i["type"] for d in report["control_devices"] for i in d["instances"])
    assert types == ["light", "light", "occupancy", "occupancy", "occupancy"]
    assert sorted(i["report_timer_s"] for d in report["control_devices"]
                  for i in d["instances"] if i["type"] == "occupancy") == [REPORT_TIMER_S] * 3
    assert [g.shortaddr for g in sim.gear] == [0, 1]  # gear untouched by the device search


async def test_resume_after_interruption_completes_without_redoing_steps(state: Path) -> None:
    sim = SimulatedDaliBus([GearSpec(None) for _ in range(20)] + [GearSpec(40)],
                           now=time.monotonic, seed=9)
    options = ScanOptions(control_devices=False, inventory=False)
    first = await _scan(sim, state, options, stop_after=8)
    assert sum(g.shortaddr is not None for g in sim.gear) == 1 + 8  # cut after eight
    frames_before = sim.frames
    second = await _scan(sim, state, options)
    assert "existing_gear" in second.skipped and "duplicates" in second.skipped
    shorts = _shorts(sim)
    assert None not in shorts and len(set(shorts)) == 21 and shorts[-1] == 40
    report = second.report()
    assert report["addressed"] == 20 and report["gear_found"] == 21
    assert report["frames"] == sim.frames  # the cost of both runs, nothing lost
    assert sim.frames > frames_before
    assert second.journal.data["interrupted"] == 1 and first.journal.path == second.journal.path


async def test_selftest_finds_the_failed_lamp_and_leaves_the_street_lit(state: Path) -> None:
    sim = SimulatedDaliBus(4, now=time.monotonic)
    sim.gear[2].set_lamp_failure(True)
    async with Emulator(PtyPort(), sim, EmulatorOptions()) as emulator, \
            BoardDaliBus.open(emulator.port.slave_path, name="dali1") as bus:  # type: ignore[attr-defined]
        session = CommissionSession(bus, Journal.create(state, {"bus": "dali1"}),
                                    sleep_fn=_no_wait)
        await session.scan_dali(ScanOptions(control_devices=False, inventory=False))
        result = await session.selftest()
    assert result["failed"] == [2]
    assert "lamp failure" in result["results"]["2"]["problems"][0]
    assert all(g.level == 254 for g in sim.gear)
    report = json.loads(json.dumps(session.report()))
    assert report["selftest_failed"] == ["2"] or report["selftest_failed"] == [2]
