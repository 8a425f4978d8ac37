"""The simulated DALI gear bus answers real frames like IEC 62386-102 gear."""

from __future__ import annotations

import asyncio

from dali.address import GearBroadcast, GearGroup, GearShort
from dali.gear.general import (
    DAPC,
    DTR0,
    Off,
    QueryActualLevel,
    QueryLampFailure,
    QueryStatus,
    SetFadeTime,
)
from dali.memory import energy
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsim.dali import SimulatedDaliBus, SimulatedDaliTransport
from lykta.dali_bus import Backward, Collision, NoAnswer, send_command
from lykta.strategy.dali_curve import FADE_TIMES_S


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_group_command_changes_exactly_the_group() -> None:
    clock = Clock()
    bus = SimulatedDaliBus(8, groups={3: [1, 4, 6]}, now=clock)
    assert bus.process(DAPC(GearGroup(3), 120).frame) == NoAnswer()
    levels = {g.shortaddr: g.actual_level for g in bus.gear}
    assert levels == {0: 254, 1: 120, 2: 254, 3: 254, 4: 120, 5: 254, 6: 120, 7: 254}


def test_query_answers_no_answer_and_collision() -> None:
    bus = SimulatedDaliBus(3, now=Clock())
    assert bus.process(QueryActualLevel(GearShort(2)).frame) == Backward(254)
    assert bus.process(QueryActualLevel(GearShort(9)).frame) == NoAnswer()
    assert bus.process(QueryActualLevel(GearBroadcast()).frame) == Collision()


def test_fade_runs_linearly_in_arc_level_and_status_shows_it() -> None:
    clock = Clock()
    bus = SimulatedDaliBus(1, now=clock)
    bus.process(DTR0(4).frame)
    # a configuration command counts only when sent twice
    bus.process(SetFadeTime(GearShort(0)).frame, send_twice=True)
    assert bus.gear[0].fade_time == 4
    bus.process(DAPC(GearShort(0), 54).frame)
    clock.t += FADE_TIMES_S[4] / 2
    assert bus.process(QueryActualLevel(GearShort(0)).frame) == Backward(154)
    assert bus.process(QueryStatus(GearShort(0)).frame).value & 0x10  # fade running
    clock.t += FADE_TIMES_S[4]
    assert bus.process(QueryActualLevel(GearShort(0)).frame) == Backward(54)
    assert not bus.process(QueryStatus(GearShort(0)).frame).value & 0x10


def test_config_command_sent_once_is_ignored() -> None:
    bus = SimulatedDaliBus(1, now=Clock())
    bus.process(DTR0(7).frame)
    bus.process(SetFadeTime(GearShort(0)).frame)
    assert bus.gear[0].fade_time == 0


def test_lamp_failure_is_reported() -> None:
    bus = SimulatedDaliBus(2, now=Clock())
    bus.gear[1].set_lamp_failure(True)
    assert bus.process(QueryLampFailure(GearShort(0)).frame) == NoAnswer()
    assert bus.process(QueryLampFailure(GearShort(1)).frame) == Backward(0xFF)
    status = bus.process(QueryStatus(GearShort(1)).frame)
    assert isinstance(status, Backward) and status.value & 0x02 and not status.value & 0x04


@settings(max_examples=40, deadline=None)
@given(level=st.integers(0, 254), hours=st.floats(0.01, 50))
def test_energy_bank_integrates_power(level: int, hours: float) -> None:
    """Invariant: bank 202 active energy = power x time (to its 0.1 Wh resolution)."""
    clock = Clock()
    bus = SimulatedDaliBus(1, now=clock)
    bus.process(DAPC(GearShort(0), level).frame if level else Off(GearShort(0)).frame)
    power = bus.gear[0].power_w
    clock.t += hours * 3600

    async def read() -> object:
        transport = SimulatedDaliTransport(bus)
        seq = energy.ActiveEnergy.read(GearShort(0))
        response = None
        while True:
            try:
                cmd = seq.send(response)
            except StopIteration as done:
                return done.value
            response = await send_command(transport, cmd)

    wh = float(asyncio.run(read()))
    assert abs(wh - power * hours) <= 0.051 + 1e-9 * power * hours


async def test_transport_delivers_occupancy_events_and_wire_time() -> None:
    bus = SimulatedDaliBus(1, now=Clock())
    transport = SimulatedDaliTransport(bus, wire_time=True)
    frame = bus.occupancy_event(5)
    events = transport.bus_events()
    assert await anext(events) == frame
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await transport.send_frame(QueryActualLevel(GearShort(0)).frame)
    assert loop.time() - t0 >= 0.040
    await transport.close()
