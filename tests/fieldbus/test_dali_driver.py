"""DALI level planning, bus-time budget and the luminaire driver on the simulated bus."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from typing import Any

import msgspec
import pytest
from dali.address import GearShort
from dali.command import Command
from dali.frame import ForwardFrame
from dali.gear.general import DTR0
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsim.dali import GearSpec, SimulatedDaliBus, SimulatedDaliTransport
from gateway.dali.budget import BusTimeBudget
from gateway.dali.driver import DaliLuminaireDriver, GearTarget, Luminaire
from gateway.dali.planner import BusLayout, plan_levels
from gateway.dali.timing import frame_bus_time
from lykta.contract import EventKind
from lykta.dali_bus import DaliReply, NoAnswer


@st.composite
def bus_and_levels(draw: st.DrawFn) -> tuple[BusLayout, dict[int, int], dict[int, int]]:
    n = draw(st.integers(1, 20))
    addresses = set(range(n))
    groups = {g: set(draw(st.lists(st.integers(0, n - 1), max_size=n)))
              for g in range(draw(st.integers(0, 5)))}
    palette = draw(st.lists(st.integers(0, 254), min_size=1, max_size=3))
    current = {a: draw(st.sampled_from(palette)) for a in addresses}
    subset = draw(st.sets(st.sampled_from(sorted(addresses))))
    wanted = {a: draw(st.sampled_from(palette)) for a in subset}
    return BusLayout.of(addresses, groups), current, wanted


@settings(max_examples=200, deadline=None)
@given(case=bus_and_levels())
def test_planned_frames_reach_exactly_the_wanted_levels(
        case: tuple[BusLayout, dict[int, int], dict[int, int]]) -> None:
    """Invariant: after the planned frames on a simulated bus every gear in ``wanted`` is at its
    level, every other gear kept its level, and frames <= gear that change."""
    layout, current, wanted = case
    bus = SimulatedDaliBus(len(layout.short_addresses),
                           groups={g: m for g, m in layout.groups.items()}, now=lambda: 0.0)
    for g in bus.gear:
        g.level = current[g.shortaddr]
        g._start_level_change(g.level, fade=False)
    frames = plan_levels(layout, current, wanted)
    for f in frames:
        bus.process(f.command().frame)
    for g in bus.gear:
        assert g.actual_level == wanted.get(g.shortaddr, current[g.shortaddr])
    assert len(frames) <= sum(1 for a, lvl in wanted.items() if current[a] != lvl)


def test_group_and_broadcast_are_used() -> None:
    layout = BusLayout.of(set(range(8)), {0: {0, 1, 2, 3}, 1: {4, 5, 6, 7}})
    everyone = {a: 100 for a in range(8)}
    assert [f.broadcast for f in plan_levels(layout, {}, everyone)] == [True]
    step = {**everyone, 4: 200, 5: 200, 6: 200, 7: 200}
    [frame] = plan_levels(layout, everyone, step)
    assert (frame.group, frame.level) == (1, 200)
    assert plan_levels(layout, step, step) == []


def test_budget_admits_background_up_to_its_share() -> None:
    budget = BusTimeBudget(share=0.5, window_s=10.0)
    t = 0.0
    while budget.background_wait(t, 0.04) == 0:
        budget.spend(t, 0.04, background=True)
        t += 0.04
    assert budget.background_used(t) == pytest.approx(5.0, abs=0.05)
    assert 0 < budget.background_wait(t, 0.04) <= 10.0
    budget.spend(t, 1.0, background=False)  # urgent work is never refused
    assert budget.urgent_s == 1.0


def _driver(n: int = 8, **kw: object) -> tuple[SimulatedDaliBus, DaliLuminaireDriver]:
    bus = SimulatedDaliBus(n, groups={1: range(0, n // 2), 2: range(n // 2, n)},
                           now=time.monotonic)
    lums = [Luminaire(f"L{i:02d}", i, frozenset({1 if i < n // 2 else 2})) for i in range(n)]
    return bus, DaliLuminaireDriver(SimulatedDaliTransport(bus, wire_time=True), lums, **kw)


async def test_group_level_command_changes_exactly_the_group() -> None:
    bus, driver = _driver()
    assert await driver.set_levels({f"L{i:02d}": 120 for i in range(8)}) == 1
    assert await driver.set_group_level(2, 254) == 1
    assert [g.actual_level for g in bus.gear] == [120] * 4 + [254] * 4
    assert bus.frames == 2


async def test_presence_reaction_is_not_delayed_by_bank_reads() -> None:
    bus, driver = _driver(budget_share=0.5)
    background = asyncio.create_task(driver.run_energy_reads(0))
    try:
        await asyncio.sleep(0.3)  # bank reads are under way
        t0 = time.monotonic()
        await driver.set_group_level(1, 254)
        latency = time.monotonic() - t0
    finally:
        background.cancel()
    # its own frame plus at most one background frame, never a whole bank read (~0.7 s)
    assert latency < 0.2
    assert driver.stats.background_frames > 0


async def test_states_energy_and_lamp_failure() -> None:
    clock = [0.0]
    bus = SimulatedDaliBus(2, now=lambda: clock[0])
    driver = DaliLuminaireDriver(SimulatedDaliTransport(bus),
                                 [Luminaire("A", 0), Luminaire("B", 1)])
    await driver.set_levels({"A": 254, "B": 254})
    clock[0] = 3600.0
    assert await driver.read_energy("A")
    bus.gear[1].set_lamp_failure(True)
    readings, events = await driver.read_states()
    a = next(r for r in readings if r.id == "A")
    assert a.level == 254 and a.energy_wh == pytest.approx(40.5, abs=0.1)
    assert a.power_w == pytest.approx(40.5, abs=0.1) and a.temperature_c is not None
    assert [(e.kind, e.source) for e in events] == [(EventKind.LAMP_FAILURE, "B")]


async def test_a_silent_gear_keeps_its_d4i_and_plain_gear_is_read_no_more() -> None:
    """A D4i read that gets no answer because the gear is silent (mains off at the cabinet, a
    lost frame) does not make it plain DALI: the next round reads its energy. Gear that
    answers while its bank 202 stays silent is plain DALI: after two such rounds its bank is
    no longer read, and its readings carry no power or energy (unknown, not zero)."""
    clock = [0.0]
    bus = SimulatedDaliBus([GearSpec(0), GearSpec(1, d4i=False)], now=lambda: clock[0])
    driver = DaliLuminaireDriver(SimulatedDaliTransport(bus),
                                 [Luminaire("D4I", 0), Luminaire("PLAIN", 1)])  # fmt: skip
    await driver.set_levels({"D4I": 254, "PLAIN": 254})
    bus.gear[0].set_mains(False)
    for _ in range(3):
        assert not await driver.read_energy("D4I")
    bus.gear[0].set_mains(True)
    clock[0] = 60.0
    assert await driver.read_energy("D4I")  # still read: it was only silent
    for _ in range(2):
        assert not await driver.read_energy("PLAIN")
    frames = bus.frames
    assert not await driver.read_energy("PLAIN")
    assert bus.frames == frames  # plain DALI: not asked again
    readings, _ = await driver.read_states()
    plain = next(r for r in readings if r.id == "PLAIN")
    assert plain.power_w is None and plain.energy_wh is None and plain.level == 254


async def test_occupancy_events_become_presence_events() -> None:
    bus, driver = _driver(2)
    bus.occupancy_event(12)
    event = await anext(driver.presence_events())
    assert event.kind == EventKind.PRESENCE and event.detail["short_address"] == 12


async def test_diagnostics_banks_205_206() -> None:
    clock = [0.0]
    bus = SimulatedDaliBus(1, now=lambda: clock[0])
    driver = DaliLuminaireDriver(SimulatedDaliTransport(bus), [Luminaire("A", 0)])
    await driver.set_levels({"A": 254})
    clock[0] = 7200.0
    bus.gear[0].set_lamp_failure(True)
    diag = await driver.read_diagnostics("A")
    assert diag["gear_operating_time_s"] == 7200 and diag["lamp_on_time_s"] == 7200
    assert diag["lamp_failures"] == 1 and diag["gear_starts"] == 1
    assert 25 <= diag["lamp_temperature_c"] <= 60


async def test_commissioning_gives_unaddressed_gear_unique_short_addresses() -> None:
    from dali.sequences import Commissioning

    from fieldsim.dali import GearSpec

    bus = SimulatedDaliBus([GearSpec(None) for _ in range(5)] + [GearSpec(9)], now=time.monotonic)
    driver = DaliLuminaireDriver(SimulatedDaliTransport(bus), [])
    await driver.run_sequence(Commissioning(), background=False)
    addresses = sorted(g.shortaddr for g in bus.gear)
    assert len(set(addresses)) == 6 and 9 in addresses and None not in addresses


@settings(max_examples=100, deadline=None)
@given(attempts=st.lists(st.tuples(st.floats(0, 0.5), st.sampled_from([0.0277, 0.0407, 0.0553])),
                         min_size=1, max_size=400),
       share=st.floats(0.05, 1.0))
def test_budget_never_exceeds_its_share_in_any_window(attempts: list[tuple[float, float]],
                                                      share: float) -> None:
    """Invariant: frames admitted when background_wait() is 0 never use more than ``share`` of
    any window ending at an admission."""
    budget = BusTimeBudget(share=share, window_s=2.0)
    t = 0.0
    admitted: list[tuple[float, float]] = []
    for gap, cost in attempts:
        t += gap
        if budget.background_wait(t, cost) == 0:
            budget.spend(t, cost, background=True)
            admitted.append((t, cost))
    for end, _ in admitted:
        used = sum(c for s, c in admitted if end - 2.0 < s <= end)
        assert used <= share * 2.0 + 1e-9


async def test_power_and_energy_are_absent_until_measured_and_survive_a_restart() -> None:
    """Unknown is not zero: before the first D4i read a reading carries no power or energy (no
    placeholder 0), and a restarted driver (a gateway restart) never reports a counter reset."""
    clock = [0.0]
    bus = SimulatedDaliBus(1, now=lambda: clock[0])
    driver = DaliLuminaireDriver(SimulatedDaliTransport(bus), [Luminaire("A", 0)])
    await driver.set_levels({"A": 254})
    [before], _ = await driver.read_states()
    assert before.power_w is None and before.energy_wh is None
    assert b"power_w" not in msgspec.json.encode(before)
    clock[0] = 3600.0
    assert await driver.read_energy("A")
    [first], _ = await driver.read_states()
    assert first.energy_wh is not None and first.energy_wh > 40
    restarted = DaliLuminaireDriver(SimulatedDaliTransport(bus), [Luminaire("A", 0)])
    [fresh], _ = await restarted.read_states()
    assert fresh.energy_wh is None  # not yet read: absent, not 0
    clock[0] = 7200.0
    assert await restarted.read_energy("A")
    [later], _ = await restarted.read_states()
    assert later.energy_wh is not None and later.energy_wh > first.energy_wh


async def test_power_measured_at_another_level_is_not_reported_as_the_power_now() -> None:
    """A dimming step after the last D4i bank read makes the cached power stale: the reading
    leaves power out (energy stays: it is a counter) until the next bank read."""
    clock = [0.0]
    bus = SimulatedDaliBus(1, now=lambda: clock[0])
    driver = DaliLuminaireDriver(SimulatedDaliTransport(bus), [Luminaire("A", 0)])
    await driver.set_levels({"A": 254})
    clock[0] = 60.0
    assert await driver.read_energy("A")
    [full], _ = await driver.read_states()
    assert full.power_w == pytest.approx(40.5, abs=0.1)
    await driver.set_levels({"A": 150})
    clock[0] = 120.0
    [dimmed], _ = await driver.read_states()
    assert dimmed.level == 150 and dimmed.power_w is None and dimmed.energy_wh is not None
    assert await driver.read_energy("A")
    [measured], _ = await driver.read_states()
    assert measured.power_w is not None and measured.power_w < full.power_w


async def test_power_read_while_a_fade_moves_the_level_belongs_to_no_level() -> None:
    """A D4i power read takes a few hundred ms of bus time; a fade ending meanwhile changes what
    the gear draws. A power measured halfway through the fade is not reported as the power at
    the level the gear settled at (it belongs to no level); the next read, settled, is."""
    from dali.gear.general import ReadMemoryLocation
    from dali.memory.energy import ActivePower

    clock = [0.0]
    bus = SimulatedDaliBus(1, now=lambda: clock[0])
    driver = DaliLuminaireDriver(SimulatedDaliTransport(bus), [Luminaire("A", 0)])
    await driver.apply({"A": GearTarget(254)})
    await driver.apply({"A": GearTarget(100, fade_ms=2_000)})
    clock[0] = 1.0  # halfway down
    first = ActivePower.locations[0].address
    seen = {"dtr0": False, "reads": 0}

    def fade_ends_during_the_power_read(frame: object) -> None:
        if frame == DTR0(first).frame:
            seen["dtr0"] = True
        elif seen["dtr0"] and frame == ReadMemoryLocation(GearShort(0)).frame:
            seen["reads"] += 1
            if seen["reads"] == 2:  # the value's snapshot is taken: mid-fade power
                clock[0] = 10.0

    bus.frame_listener = fade_ends_during_the_power_read
    assert await driver.read_energy("A")
    assert seen["reads"] >= 2
    [settled_now], _ = await driver.read_states()
    assert settled_now.level == 100 and settled_now.power_w is None  # power of no known level
    bus.frame_listener = None
    assert await driver.read_energy("A")
    [measured], _ = await driver.read_states()
    assert measured.power_w == pytest.approx(bus.gear[0].power_w, abs=0.11)


async def test_fade_settings_never_wait_for_bank_reads_and_never_corrupt_them() -> None:
    """Every fade setting (DTR0 + SET FADE TIME) goes out at once, a presence reaction's as
    much as a schedule step's, even in the middle of a memory bank read that points DTR0
    into the bank. The read sets DTR0 again where it was and goes on: every power figure is
    the gear's own, no read fails or starts over, and each gear ends with the fade time it
    was given last."""
    from gateway.dali.planner import fade_setting

    bus, driver = _driver(budget_share=1.0)
    await driver.set_levels({f"L{i:02d}": 200 for i in range(8)})
    fades = [1_000, 45_000, 2_000, 64_000, 90_500]
    assert await driver.read_energy("L00")  # alone: what one read costs
    background_before = driver.stats.background_frames
    one_read = background_before

    async def reads() -> list[float]:
        got = []
        for _ in range(4):
            assert await driver.read_energy("L00"), driver.stats
            got.append(driver._telemetry["L00"].power_w)  # noqa: SLF001 - what was read
        return got

    async def steps(first: bool, luminaire: str, pause_s: float) -> float:
        worst = 0.0
        for i in range(6):
            await asyncio.sleep(pause_s)  # a busy street: a fade every few hundred ms
            t0 = time.monotonic()
            target = GearTarget(150 + i, fade_ms=fades[i % len(fades)])
            await driver.apply({luminaire: target}, first={luminaire} if first else set())
            worst = max(worst, time.monotonic() - t0)
        return worst

    powers, worst_reaction, worst_step = await asyncio.gather(
        reads(), steps(True, "L01", 0.5), steps(False, "L02", 0.35)
    )
    expected = bus.by_short_address(0).power_w
    assert all(abs(p - expected) < 0.11 for p in powers), (powers, expected)
    # its frames (111 ms) and at most one background frame in front, never a bank read
    assert worst_reaction < 0.35 and worst_step < 0.35, (worst_reaction, worst_step)
    assert driver.stats.bank_read_failures == 0
    assert driver.stats.dtr0_restores > 0  # the reads were interrupted, and resumed
    # resumed, not restarted: what 4 reads cost alone, plus one DTR0 per restore
    assert driver.stats.background_frames - background_before == (
        4 * one_read + driver.stats.dtr0_restores
    )
    for short, lum in ((1, 5), (2, 5)):
        assert bus.by_short_address(short).fade_seconds() == fade_setting(fades[lum % 5]).seconds


async def test_fail_safe_levels_are_written_right_between_fade_settings() -> None:
    """POWER ON / SYSTEM FAILURE LEVEL take their value from DTR0, which a fade setting
    overwrites: with fade settings going out all the while, every gear still ends with the
    fail-safe level (never a fade code) and with the fade time it was given last."""
    from gateway.dali.planner import fade_setting

    bus, driver = _driver(budget_share=1.0)
    await driver.set_levels({f"L{i:02d}": 200 for i in range(8)})
    fades = [2_000, 45_000, 1_000]
    given: dict[int, int] = {}
    tasks: list[asyncio.Task[int]] = []

    def on_frame(frame: object) -> None:
        # the worst moment: right after the sequence's DTR0 reached the gear, before its
        # SET ... LEVEL; the fade setting is urgent and goes first
        if frame == DTR0(230).frame and len(tasks) < 10:
            i = len(tasks)
            given[i % 8] = fades[i % 3]
            target = GearTarget(100 + i, fade_ms=fades[i % 3])
            tasks.append(asyncio.create_task(driver.apply({f"L{i % 8:02d}": target})))

    bus.frame_listener = on_frame
    written = await driver.program_fail_safe_levels(230)
    await asyncio.gather(*tasks)
    assert written == 16 and len(tasks) == 10
    assert [(g.power_on_level, g.system_failure_level) for g in bus.gear] == [(230, 230)] * 8
    assert driver.stats.dtr0_restores >= 10
    for short, fade in given.items():
        assert bus.by_short_address(short).fade_seconds() == fade_setting(fade).seconds


async def test_an_announced_reaction_keeps_new_background_frames_off_the_bus() -> None:
    """From ``expect_urgent`` (a presence reaction was decided) no background frame starts
    until the reaction's ``apply`` has sent its frames: the corridor never waits behind a
    query that began while the executor computed it. Without a reaction the hold ends by
    itself (``within_s``)."""
    bus, driver = _driver(budget_share=1.0)
    await driver.set_levels({f"L{i:02d}": 120 for i in range(8)})
    seen: list[float] = []  # when each frame reached the gear
    bus.frame_listener = lambda f: seen.append(time.monotonic())
    background = asyncio.create_task(driver.run_energy_reads(0))
    try:
        await asyncio.sleep(0.3)  # bank reads under way
        driver.expect_urgent(within_s=5.0)
        announced = time.monotonic()
        await asyncio.sleep(0.2)  # the executor "computing": no frame may start meanwhile
        # (the one on the wire when it was announced ends within a query's 40.7 ms)
        assert [t for t in seen if t > announced + 0.045] == []
        assert await driver.apply({"L01": GearTarget(254)}, first={"L01"}) == 1
        sent = time.monotonic()
        await asyncio.sleep(0.2)
        assert [t for t in seen if t > sent], "background did not resume after the reaction"
        driver.expect_urgent(within_s=0.1)  # no reaction follows: the hold lifts by itself
        held = time.monotonic()
        await asyncio.sleep(0.3)
        assert [t for t in seen if t > held + 0.1]
    finally:
        background.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await background


# -- adversarial: fade settings at any frame of the background DTR0 users ----------------------

_WIRE_SCALE = 0.04
"""Frames take this share of their real wire time in the adversarial test: the same order of
events as on the wire (the simulator is the gear), 25 times faster."""


@dataclasses.dataclass
class _ScaledWire(SimulatedDaliTransport):
    """The simulated bus with every frame taking ``_WIRE_SCALE`` of its wire time."""

    async def send_frame(
        self, frame: ForwardFrame, *, send_twice: bool = False, priority: int = 4
    ) -> DaliReply:
        is_query = Command.from_frame(frame).response is not None
        async with self._lock:
            reply = self.bus.process(frame, send_twice=send_twice)
            wire = frame_bus_time(len(frame), is_query=is_query or not isinstance(reply, NoAnswer),
                                  send_twice=send_twice)
            await asyncio.sleep(_WIRE_SCALE * wire)
            return reply


_REST_FADES = [700, 1_000, 2_000, 45_000, 64_000, 90_500, 120_000]
"""Fade times whose settings are one unit (DTR0 + SET FADE TIME) or two (code 0: DTR0 + SET
EXTENDED FADE TIME as well); their DTR0 values (fade codes 0..15, extended codes up to 0x4F)
point at implemented locations of banks 202/205/206, so a read from there is a wrong value,
not an error."""

_background_op = st.one_of(
    st.tuples(st.just("energy"), st.integers(0, 3)),
    st.tuples(st.just("diagnostics"), st.integers(0, 3)),
    st.tuples(st.just("fail_safe"), st.sampled_from([230, 180, 254])),
)
_fade_request = st.fixed_dictionaries({
    "at_frame": st.integers(0, 160),  # the n-th frame to reach the gear triggers it
    "delay": st.floats(0.0, 1.5),  # ... this many command wire times later
    "gear": st.sets(st.integers(0, 7), min_size=1, max_size=8),
    "rest_fade_ms": st.sampled_from(_REST_FADES),
    "level": st.sampled_from([None, 120, 160]),  # a level change (gear 4..7 only) first
})


@settings(max_examples=30, deadline=None)
@given(
    background=st.lists(_background_op, min_size=1, max_size=4),
    requests=st.lists(_fade_request, min_size=1, max_size=8),
    states=st.booleans(),
)
def test_fade_settings_at_any_frame_never_corrupt_background_dtr0_users(
    background: list[tuple[str, int]], requests: list[dict[str, Any]], states: bool
) -> None:
    """Adversarial: fade settings (presence reactions and schedule steps alike, one apply at
    a time as the executor sends them) go out at arbitrary frames of D4i value reads and
    fail-safe level writes, with state queries in between if ``states``. Every value read is
    the gear's own, no read fails, every fail-safe level lands (never a fade code), and every
    gear ends with the fade time it was given last."""
    asyncio.run(_adversarial(background, requests, states))


async def _adversarial(
    background: list[tuple[str, int]], requests: list[dict[str, Any]], states: bool
) -> None:
    from gateway.dali.planner import fade_setting

    bus = SimulatedDaliBus(8, groups={1: range(0, 4), 2: range(4, 8)}, now=time.monotonic)
    lums = [Luminaire(f"L{i:02d}", i, frozenset({1 if i < 4 else 2})) for i in range(8)]
    # the driver's clock runs at the wire's pace, so its bus-time budget sees real figures
    driver = DaliLuminaireDriver(_ScaledWire(bus), lums, budget_share=1.0,
                                 monotonic=lambda: time.monotonic() / _WIRE_SCALE)
    for i, g in enumerate(bus.gear):  # distinct diagnostics, so a misplaced byte shows
        g.gear_starts = 0x1234 + 0x0101 * i
        g.lamp_starts = 0x2345 + 0x0203 * i
        g.lamp_failures = 3 + i
        g.temperature_c = 20.0 + i
    await driver.set_levels({f"L{i:02d}": 200 for i in range(8)})
    await driver.apply({f"L{i:02d}": GearTarget(200, rest_fade_ms=1_500) for i in range(8)})
    last_fade = dict.fromkeys(range(8), 1_500)

    pending: dict[int, list[dict[str, Any]]] = {}
    for r in requests:
        pending.setdefault(r["at_frame"], []).append(r)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    seen = [0]
    loop = asyncio.get_running_loop()

    def on_frame(frame: object) -> None:
        for r in pending.pop(seen[0], []):
            loop.call_later(r["delay"] * 0.0277 * _WIRE_SCALE, queue.put_nowait, r)
        seen[0] += 1

    bus.frame_listener = on_frame
    done = asyncio.Event()

    async def street() -> None:  # the executor: one apply at a time
        while not (done.is_set() and queue.empty() and not pending):
            try:
                r = await asyncio.wait_for(queue.get(), 0.01)
            except TimeoutError:
                if done.is_set():
                    pending.clear()  # triggers beyond the last frame: never
                continue
            targets = {}
            for a in sorted(r["gear"]):
                level = r["level"] if r["level"] is not None and a >= 4 else 200
                fade = 2_000 if level != 200 else None
                targets[f"L{a:02d}"] = GearTarget(
                    level, fade_ms=fade, rest_fade_ms=r["rest_fade_ms"])
                last_fade[a] = r["rest_fade_ms"]
            await driver.apply(targets, first=set(targets))

    async def state_reads() -> None:
        while not done.is_set():
            await driver.read_states()

    async def work() -> list[str]:
        problems = []
        for op, arg in background:
            if op == "fail_safe":
                before = sum((g.power_on_level != arg) + (g.system_failure_level != arg)
                             for g in bus.gear)
                written = await driver.program_fail_safe_levels(arg)
                got = [(g.power_on_level, g.system_failure_level) for g in bus.gear]
                if got != [(arg, arg)] * 8 or written != before:
                    problems.append(f"fail_safe({arg}): wrote {written}/{before}, gear {got}")
                continue
            g, lum = bus.gear[arg], f"L{arg:02d}"
            if op == "energy":
                e0 = g.energy_wh
                ok = await driver.read_energy(lum)
                tel = driver._telemetry[lum]  # noqa: SLF001 - what was read
                e1 = g.energy_wh
                if not ok or tel.power_w is None or abs(tel.power_w - g.power_w) > 0.11:
                    problems.append(f"{lum} power {tel.power_w} != {g.power_w} (ok={ok})")
                if tel.energy_wh is None or not e0 - 0.06 <= tel.energy_wh <= e1 + 0.06:
                    problems.append(f"{lum} energy {tel.energy_wh} not in [{e0}, {e1}]")
                if tel.temperature_c != round(g.temperature_c):
                    problems.append(f"{lum} temperature {tel.temperature_c}")
            else:
                diag = await driver.read_diagnostics(lum)
                want = {"gear_starts": g.gear_starts, "lamp_starts": g.lamp_starts,
                        "lamp_failures": g.lamp_failures,
                        "gear_temperature_c": round(g.temperature_c),
                        "lamp_temperature_c": round(g.temperature_c)}
                if {k: diag.get(k) for k in want} != want:
                    problems.append(f"{lum} diagnostics {diag} != {want}")
                if abs(diag.get("gear_operating_time_s", -99) - int(g.operating_time_s)) > 1:
                    problems.append(f"{lum} operating time {diag}")
        return problems

    tasks = [asyncio.create_task(street())]
    if states:
        tasks.append(asyncio.create_task(state_reads()))
    try:
        problems = await work()
    finally:
        done.set()
        await asyncio.gather(*tasks)
    assert problems == []
    assert driver.stats.bank_read_failures == 0
    for a, fade in last_fade.items():
        assert bus.by_short_address(a).fade_seconds() == fade_setting(fade).seconds, (a, fade)


async def test_fade_settings_of_two_applies_at_once_never_share_a_dtr0() -> None:
    """DTR0 is one register of the whole bus: when two applies run at once, each fade
    setting's DTR0 and SET FADE TIME still go together, so each gear gets its own fade time
    (and the driver's record of it is true, so it is never sent again to repair it)."""
    from gateway.dali.planner import fade_setting

    bus, driver = _driver(budget_share=1.0)
    await driver.set_levels({f"L{i:02d}": 200 for i in range(8)})
    await asyncio.gather(
        driver.apply({"L01": GearTarget(150, fade_ms=1_000)}, first={"L01"}),
        driver.apply({"L02": GearTarget(150, fade_ms=45_000)}),
        driver.apply({"L05": GearTarget(150, fade_ms=90_500, rest_fade_ms=2_000)}),
    )
    assert bus.by_short_address(1).fade_seconds() == fade_setting(1_000).seconds
    assert bus.by_short_address(2).fade_seconds() == fade_setting(45_000).seconds
    assert bus.by_short_address(5).fade_seconds() == fade_setting(2_000).seconds
