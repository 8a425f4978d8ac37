"""The simulated cabinet end to end: the gateway's poller and driver against it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsim.cabinet import SimulatedCabinet
from fieldsim.pedestrians import Detection, PathSimulation, Walker
from gateway.dali.driver import DaliLuminaireDriver
from gateway.modbus.poller import ModbusPoller
from lykta.contract import MeterReading, SensorReading


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@settings(max_examples=50, deadline=None)
@given(speed=st.floats(0.8, 8.0), forward=st.booleans(), n=st.integers(1, 6))
def test_a_walker_triggers_the_sensors_in_path_order(speed: float, forward: bool,
                                                     n: int) -> None:
    """Invariant: one person triggers every sensor once, in walking order, at times that
    match the speed."""
    positions = [50.0 * (i + 1) for i in range(n)]
    path = PathSimulation(50.0 * (n + 1), positions, 0, 0, detection_range_m=8.0)
    path.add_walker(Walker("pedestrian", 0.0, speed, forward))
    detections = path.advance(1e6)
    order = [d.sensor for d in detections]
    assert order == (list(range(n)) if forward else list(reversed(range(n))))
    gaps = [b.t - a.t for a, b in zip(detections, detections[1:], strict=False)]
    assert all(g == pytest.approx(50.0 / speed) for g in gaps)


async def test_meter_follows_the_luminaires_and_sensor_counts_people() -> None:
    clock = Clock()
    async with SimulatedCabinet(luminaires=6, sensors=2, now=clock,
                                pedestrians_per_hour=120, cyclists_per_hour=60) as cabinet:
        driver = DaliLuminaireDriver(cabinet.dali, cabinet.dali_luminaires())
        async with ModbusPoller(cabinet.modbus_endpoint, cabinet.modbus_devices()) as poller:
            await driver.set_levels({lum.id: 254 for lum in driver.luminaires})
            full = await poller.poll_device("cabinet-meter")
            [m_full] = [m for m in full if isinstance(m, MeterReading)]
            assert m_full.values["power_w"] == pytest.approx(6 * 40.5 + 15, rel=1e-3)
            await driver.set_group_level(0, 1)  # dim the first section to 0.1 %
            clock.t += 3600
            dimmed = await poller.poll_device("cabinet-meter")
            [m_dim] = [m for m in dimmed if isinstance(m, MeterReading)]
            assert m_dim.values["power_w"] < m_full.values["power_w"] - 100
            assert m_dim.values["energy_import_kwh"] > 0.1  # kWh over the simulated hour
            [presence] = [m for m in await poller.poll_device("presence-1")
                          if isinstance(m, SensorReading)]
            assert presence.values["count"] > 50
            assert presence.values["count_pedestrians"] > presence.values["count_cyclists"]


async def test_field_reader_reads_the_whole_cabinet() -> None:
    async with SimulatedCabinet(luminaires=5, sensors=1) as cabinet:
        async with cabinet.field_reader() as reader:
            assert reader.luminaire_count() == 5
            cabinet.dali_bus.gear[2].set_lamp_failure(True)
            cabinet.dali_bus.occupancy_event(0)
            readings = await reader.read(0)
            assert sorted(r.id for r in readings.luminaires) == [f"L0{i}" for i in range(5)]
            assert [m.device for m in readings.meters] == ["cabinet-meter"]
            assert sorted(s.device for s in readings.sensors) == ["lux-1", "presence-1"]
            kinds = {(e.kind, e.source) for e in reader.take_events()}
            assert ("lamp_failure", "L02") in kinds
            assert reader.take_events() == []
            # presence does not wait for a read: it is in the queue the moment it arrived
            event, _read_at = reader.presence.get_nowait()
            assert (event.kind, event.source) == ("presence", "cabinet-dali/sensor-0")


async def test_a_modbus_presence_sensor_reaches_the_presence_queue_when_it_is_read() -> None:
    """The radar presence sensor (Modbus) turning occupied is a presence event in the queue the
    moment the poll returns; telemetry gets the reading as well."""
    import asyncio
    import time

    t0 = time.monotonic()
    clock = [t0]
    async with SimulatedCabinet(luminaires=3, sensors=1, pedestrians_per_hour=0,
                                now=lambda: clock[0]) as cabinet:  # fmt: skip
        async with cabinet.field_reader(interval_s=0.1) as reader:
            await asyncio.sleep(0.3)
            assert reader.presence.empty()  # nobody yet
            # someone passes the sensor: the radar reports occupied on its next poll
            cabinet.path.last_detection[0] = Detection(clock[0], 0, "pedestrian", 1.4, 2.0)
            event, read_at = await asyncio.wait_for(reader.presence.get(), 2)
            assert (event.kind, event.source, event.detail["device"]) == (
                "presence", "presence-1", "presence-1")  # fmt: skip
            assert read_at >= t0


async def test_a_modbus_people_counter_reports_how_many_passed_between_polls() -> None:
    """The radar's people counter ("count" in its profile) rising by three between two polls
    is one presence event counting three people; nobody there any more: not occupied (traffic
    to count, no corridor to light)."""
    import asyncio
    import time

    clock = [time.monotonic()]
    async with SimulatedCabinet(luminaires=3, sensors=1, pedestrians_per_hour=0,
                                now=lambda: clock[0]) as cabinet:  # fmt: skip
        async with cabinet.field_reader(interval_s=0.1) as reader:
            await asyncio.sleep(0.3)
            assert reader.presence.empty()
            cabinet.path.sensor_counts[0]["pedestrian"] += 3
            event, _ = await asyncio.wait_for(reader.presence.get(), 2)
            assert event.source == "presence-1"
            assert (event.detail["people"], event.detail["occupied"]) == (3, False)
            await asyncio.sleep(0.3)
            assert reader.presence.empty()  # the counter did not move again: nothing more


def test_a_poll_without_the_counter_is_unknown_not_zero() -> None:
    """A poll whose people counter was not read (a rejected or failed register) keeps the last
    value: the next good read counts who passed since, not everybody the sensor ever counted
    (it used to read as 0, so 5000 + 2 counted people became a surge of 1000)."""
    from gateway.fieldbus import people_since

    people, seen = people_since(None, False, 5000.0)
    assert people is None  # the first poll sets the baseline: nobody counted yet
    people, seen = people_since(seen, False, None)
    assert people is None and seen == (False, 5000.0)
    people, seen = people_since(seen, False, 5002.0)
    assert people == 2  # two passed since the last read counter, none there now
    people, seen = people_since(seen, True, 5002.0)
    assert people == 1  # occupied without a rise: one detection
    people, seen = people_since(seen, True, 17.0)
    assert people is None  # a counter that went back (restart), still the same person there
    people, _ = people_since((False, None), True, None)
    assert people == 1  # a sensor without a counter: turning occupied is one detection
