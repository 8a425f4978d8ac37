"""The python-dali serial-driver adapter, against python-dali's own dummy serial driver.

(No Lunatone hardware or LUBA byte-level emulator here: this checks the frame/reply mapping.)
"""

from __future__ import annotations

from pathlib import Path

from dali.address import GearBroadcast, GearShort
from dali.gear.general import DAPC, QueryActualLevel
from dali.tests.fakes_serial import DriverSerialDummy

from gateway.dali.lunatone import PythonDaliBus
from lykta.dali_bus import Backward, Collision, NoAnswer, send_command


async def test_frames_and_replies_map_through_the_driver(tmp_path: Path) -> None:
    driver = DriverSerialDummy(f"dummy:{tmp_path / 'dali.log'}?led=3")
    await driver.connect()
    bus = PythonDaliBus(driver, name="dummy")
    assert await bus.send_frame(DAPC(GearShort(1), 123).frame) == NoAnswer()
    assert await bus.send_frame(QueryActualLevel(GearShort(1)).frame) == Backward(123)
    assert await bus.send_frame(QueryActualLevel(GearShort(7)).frame) == NoAnswer()
    assert await bus.send_frame(QueryActualLevel(GearBroadcast()).frame) == Collision()
    response = await send_command(bus, QueryActualLevel(GearShort(1)))
    assert response is not None and response.value == 123
    await bus.close()
