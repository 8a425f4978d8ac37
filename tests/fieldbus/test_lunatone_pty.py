"""python-dali's Lunatone LUBA driver, through the gateway adapter, over a real pseudo-terminal
to a simulated LUBA interface in front of the simulated gear bus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from dali.address import GearBroadcast, GearShort
from dali.gear.general import DAPC, DTR0, QueryActualLevel, SetFadeTime

from fieldsim.dali import SimulatedDaliBus
from fieldsim.lunatone import LubaEmulator
from gateway.dali.driver import DaliLuminaireDriver, Luminaire
from gateway.dali.lunatone import PythonDaliBus
from lykta.dali_bus import Backward, Collision, NoAnswer


@pytest.fixture
async def luba() -> AsyncIterator[tuple[SimulatedDaliBus, LubaEmulator]]:
    gear = SimulatedDaliBus(4, groups={5: [1, 2]}, now=time.monotonic)
    emulator = LubaEmulator(gear)
    emulator.start()
    yield gear, emulator
    emulator.close()


async def test_frames_replies_and_collisions_over_luba(
        luba: tuple[SimulatedDaliBus, LubaEmulator]) -> None:
    gear, emulator = luba
    bus = await PythonDaliBus.open(f"luba232:{emulator.port}")
    try:
        assert await bus.send_frame(DAPC(GearShort(3), 77).frame) == NoAnswer()
        assert await bus.send_frame(QueryActualLevel(GearShort(3)).frame) == Backward(77)
        assert await bus.send_frame(QueryActualLevel(GearShort(9)).frame) == NoAnswer()
        assert await bus.send_frame(QueryActualLevel(GearBroadcast()).frame) == Collision()
        await bus.send_frame(DTR0(3).frame)
        await bus.send_frame(SetFadeTime(GearShort(0)).frame, send_twice=True)
        assert gear.gear[0].fade_time == 3
    finally:
        await bus.close()


async def test_driver_over_luba_sets_groups_and_sees_occupancy(
        luba: tuple[SimulatedDaliBus, LubaEmulator]) -> None:
    gear, emulator = luba
    bus = await PythonDaliBus.open(f"luba232:{emulator.port}")
    driver = DaliLuminaireDriver(bus, [Luminaire(f"L{i}", i, frozenset({5} if i in (1, 2)
                                                                          else set()))
                                       for i in range(4)])
    try:
        assert await driver.set_group_level(5, 200) == 1
        assert [g.actual_level for g in gear.gear] == [254, 200, 200, 254]
        readings, _ = await driver.read_states()
        assert [r.level for r in readings] == [254, 200, 200, 254]
        events = driver.presence_events()
        gear.occupancy_event(4)
        event = await asyncio.wait_for(anext(events), 2.0)
        assert event.detail["short_address"] == 4 and event.detail["occupied"]
    finally:
        await bus.close()
