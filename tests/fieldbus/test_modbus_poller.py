"""The poller against simulated devices on real pymodbus servers (TCP loopback, RTU on ptys)."""

from __future__ import annotations

import pytest

from fieldsim.modbus import ModbusRtuSimulator, ModbusTcpSimulator, SimulatedModbusDevice
from gateway.modbus.poller import ModbusDevice, ModbusPoller, SerialLine, TcpEndpoint
from gateway.modbus.profile import load_profiles
from lykta.contract import Event, EventKind, MeterReading, SensorReading

PROFILES = load_profiles()
SDM630 = PROFILES["eastron_sdm630"]
RADAR = PROFILES["radar_presence"]

METER_VALUES = {
    "voltage_l1_v": 231.5, "voltage_l2_v": 229.0, "voltage_l3_v": 230.25, "current_l1_a": 1.5,
    "power_l1_w": 345.0, "power_w": 1012.5, "frequency_hz": 50.0, "energy_import_kwh": 1234.5,
    "energy_total_kwh": 1240.75,
}


def _events(messages: list, kind: EventKind) -> list[Event]:
    return [m for m in messages if isinstance(m, Event) and m.kind == kind]


async def test_sdm630_over_tcp_returns_the_simulated_values() -> None:
    meter = SimulatedModbusDevice(SDM630, unit=1, values=METER_VALUES)
    async with ModbusTcpSimulator([meter]) as sim, \
            ModbusPoller(TcpEndpoint("127.0.0.1", sim.port),
                         [ModbusDevice("cabinet-meter", 1, SDM630)]) as poller:
        messages = await poller.poll_due()
    [reading] = [m for m in messages if isinstance(m, MeterReading)]
    assert reading.device == "cabinet-meter"
    for field, value in METER_VALUES.items():
        assert reading.values[field] == pytest.approx(value)
    assert reading.values["current_l3_a"] == 0.0
    assert poller.stats.requests == len(poller.plan("cabinet-meter")) == 5


async def test_device_that_stops_answering_goes_offline_and_comes_back() -> None:
    meter = SimulatedModbusDevice(SDM630, unit=1, values=METER_VALUES)
    radar = SimulatedModbusDevice(RADAR, unit=2, values={"occupied": 1, "count": 12})
    async with ModbusTcpSimulator([meter, radar]) as sim, \
            ModbusPoller(TcpEndpoint("127.0.0.1", sim.port),
                         [ModbusDevice("meter", 1, SDM630), ModbusDevice("radar", 2, RADAR)],
                         timeout_s=0.1, retries=1, backoff_s=0.01, offline_after=2,
                         offline_interval_s=60) as poller:
        meter.muted = True
        first = await poller.poll_device("meter")
        assert _events(first, EventKind.MODBUS_ERROR)[0].detail["error"] == "timeout"
        second = await poller.poll_device("meter")
        [offline] = _events(second, EventKind.MODBUS_OFFLINE)
        assert offline.source == "meter" and offline.detail["unit"] == 1
        assert not poller.health("meter").online
        # the other device on the bus is still read while the meter is away
        radar_msgs = await poller.poll_device("radar")
        [sensor] = [m for m in radar_msgs if isinstance(m, SensorReading)]
        assert sensor.kind == "presence" and sensor.values["count"] == 12
        # offline devices are polled less often
        assert poller.health("meter").next_poll_s > poller.health("radar").next_poll_s
        meter.muted = False
        back = await poller.poll_device("meter")
        assert _events(back, EventKind.MODBUS_ONLINE)
        assert any(isinstance(m, MeterReading) for m in back)


async def test_exception_reply_is_reported_with_device_and_register() -> None:
    radar = SimulatedModbusDevice(RADAR, unit=7, values={"occupied": 0})
    radar.exception_code = 2  # ILLEGAL DATA ADDRESS
    async with ModbusTcpSimulator([radar]) as sim, \
            ModbusPoller(TcpEndpoint("127.0.0.1", sim.port),
                         [ModbusDevice("radar", 7, RADAR)], timeout_s=0.2) as poller:
        messages = await poller.poll_due()
        errors = _events(messages, EventKind.MODBUS_ERROR)
        assert errors and all(e.source == "radar" for e in errors)
        assert errors[0].detail | {"bus": None} == {
            "bus": None, "unit": 7, "function": 3, "address": 0, "count": 10,
            "error": "exception", "code": 2, "message": "exception reply code 2"}
        assert poller.health("radar").online  # it answered: present, just refusing
        assert poller.stats.retries == 0  # exception replies are not retried
        radar.exception_code = None
        assert any(isinstance(m, SensorReading) for m in await poller.poll_device("radar"))


async def test_rtu_over_pseudo_terminals_reads_and_reports_crc_errors() -> None:
    meter = SimulatedModbusDevice(SDM630, unit=1, values=METER_VALUES)
    radar = SimulatedModbusDevice(RADAR, unit=2, values={"targets": 3, "speed_kmh": -4.5})
    # Linux pseudo-terminals refuse parity settings, so the pty line runs 8N1
    async with ModbusRtuSimulator([meter, radar], baudrate=19200) as sim, \
            ModbusPoller(SerialLine(sim.client_port, 19200, "N"),
                         [ModbusDevice("meter", 1, SDM630), ModbusDevice("radar", 2, RADAR)],
                         timeout_s=0.2, retries=1, backoff_s=0.01) as poller:
        messages = await poller.poll_due()
        [reading] = [m for m in messages if isinstance(m, MeterReading)]
        assert reading.values["energy_total_kwh"] == pytest.approx(1240.75)
        [sensor] = [m for m in messages if isinstance(m, SensorReading)]
        assert sensor.values["targets"] == 3 and sensor.values["speed_kmh"] == pytest.approx(-4.5)
        meter.garble_replies = True
        garbled = await poller.poll_device("meter")
        [error] = _events(garbled, EventKind.MODBUS_ERROR)
        assert error.detail["error"] == "garbled" and "CRC" in error.detail["message"]
        assert error.detail["address"] == 0 and error.detail["function"] == 4


async def test_run_polls_every_device_at_its_interval() -> None:
    meter = SimulatedModbusDevice(SDM630, unit=1, values=METER_VALUES)
    radar = SimulatedModbusDevice(RADAR, unit=2, values={"targets": 1})
    async with ModbusTcpSimulator([meter, radar]) as sim, \
            ModbusPoller(TcpEndpoint("127.0.0.1", sim.port),
                         [ModbusDevice("meter", 1, SDM630, interval_s=0.05),
                          ModbusDevice("radar", 2, RADAR, interval_s=0.05)]) as poller:
        seen: list[str] = []
        async for message in poller.run():
            if isinstance(message, MeterReading | SensorReading):
                seen.append(message.device)
            if len(seen) == 6:
                break
    assert seen.count("meter") == 3 and seen.count("radar") == 3


async def test_rtu_line_takes_the_real_character_time() -> None:
    import time

    from gateway.modbus.wire import char_time_s

    meter = SimulatedModbusDevice(SDM630, unit=1, values=METER_VALUES)
    async with ModbusRtuSimulator([meter], baudrate=9600, wire_time=True) as sim, \
            ModbusPoller(SerialLine(sim.client_port, 9600, "N"),
                         [ModbusDevice("meter", 1, SDM630.model_copy(update={"pause_s": 0}))],
                         timeout_s=1.0) as poller:
        t0 = time.perf_counter()
        messages = await poller.poll_device("meter")
        elapsed = time.perf_counter() - t0
    assert any(isinstance(m, MeterReading) for m in messages)
    # the bytes of five requests and replies (silences are not emulated): 13 + 2N each
    chars = sum(13 + 2 * r.count for r in poller.plan("meter"))
    assert elapsed >= chars * char_time_s(9600, "N")
