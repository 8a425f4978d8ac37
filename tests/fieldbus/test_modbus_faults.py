"""A misbehaving slave over a pty (RTU) and TCP: late, long, short, wrong-function, wrong-unit
and stale-transaction replies, busy exceptions and NaN values. No wrong value is ever
published, and the reading survives with every valid value in it."""

from __future__ import annotations

import math
import random

import pytest

from fieldsim.modbus import FaultyModbusSlave, ModbusTcpSimulator, SimulatedModbusDevice
from gateway.modbus.poller import ModbusDevice, ModbusPoller, SerialLine, TcpEndpoint
from gateway.modbus.profile import load_profiles
from lykta.contract import Event, EventKind, MeterReading, SensorReading

PROFILES = load_profiles()
RADAR = PROFILES["radar_presence"].model_copy(update={"pause_s": 0.0})
SDM630 = PROFILES["eastron_sdm630"]


def _radar_values(device: SimulatedModbusDevice) -> dict[str, float]:
    # count changes with every read, so a reply taken for the wrong request shows
    return {"occupied": 1, "targets": 2, "count": 1000 + device.reads, "firmware_version": 1032}


def _link(slave: FaultyModbusSlave) -> SerialLine | TcpEndpoint:
    return TcpEndpoint("127.0.0.1", int(slave.port)) if slave.tcp else \
        SerialLine(str(slave.port), 19200, "N")


def _readings(messages: list) -> list[SensorReading]:
    return [m for m in messages if isinstance(m, SensorReading)]


@pytest.mark.parametrize("tcp", [False, True], ids=["rtu-pty", "tcp"])
async def test_no_faulty_reply_is_taken_as_data(tcp: bool) -> None:
    radar = SimulatedModbusDevice(RADAR, unit=2)
    radar.values = lambda: _radar_values(radar)
    faults = ["late", "long", "short", "wrong_function", "wrong_unit", "busy"]
    if tcp:
        faults.append("stale_tid")
    async with FaultyModbusSlave([radar], tcp=tcp, late_s=0.25) as slave, \
            ModbusPoller(_link(slave), [ModbusDevice("radar", 2, RADAR)], timeout_s=0.15,
                         retries=2, backoff_s=0.01, busy_backoff_s=0.01) as poller:
        for fault in faults:
            slave.faults = [fault]
            [reading] = _readings(await poller.poll_device("radar"))
            # the count is the one of the last read the slave served: the fresh answer
            assert reading.values["count"] == 1000 + radar.reads - 1, fault
            assert reading.values["firmware_version"] == 1032, fault
            assert reading.values["targets"] == 2, fault
        assert poller.stats.mismatches >= 4
        assert poller.stats.busy_retries == 1


@pytest.mark.parametrize("tcp", [False, True], ids=["rtu-pty", "tcp"])
async def test_late_reply_is_not_the_answer_to_the_next_poll(tcp: bool) -> None:
    radar = SimulatedModbusDevice(RADAR, unit=2)
    radar.values = lambda: _radar_values(radar)
    async with FaultyModbusSlave([radar], tcp=tcp, late_s=0.25) as slave, \
            ModbusPoller(_link(slave), [ModbusDevice("radar", 2, RADAR)], timeout_s=0.15,
                         retries=0) as poller:
        slave.faults = ["late"]
        assert not _readings(await poller.poll_device("radar"))  # timed out, nothing taken
        [reading] = _readings(await poller.poll_device("radar"))
        # the late reply carried count 1001; the answer to this poll's request carries 1002+
        assert reading.values["count"] == 1000 + radar.reads - 1 > 1001


@pytest.mark.parametrize("tcp", [False, True], ids=["rtu-pty", "tcp"])
async def test_random_fault_sequence_never_publishes_a_wrong_value(tcp: bool) -> None:
    rng = random.Random(12)
    radar = SimulatedModbusDevice(RADAR, unit=2)
    radar.values = lambda: _radar_values(radar)
    async with FaultyModbusSlave([radar], tcp=tcp, late_s=0.2) as slave, \
            ModbusPoller(_link(slave), [ModbusDevice("radar", 2, RADAR)], timeout_s=0.1,
                         retries=3, backoff_s=0.0, busy_backoff_s=0.0) as poller:
        published = 0
        for _ in range(12):
            slave.faults = [rng.choice([None, None, "late", "long", "short", "wrong_function",
                                        "wrong_unit", "busy"]) for _ in range(3)]
            for reading in _readings(await poller.poll_device("radar")):
                published += 1
                served = {1000 + r for r in range(1, radar.reads + 1)}
                assert reading.values["count"] in served
                assert reading.values["firmware_version"] == 1032
        assert published >= 6


async def test_nan_and_inf_are_left_out_and_counted_the_rest_published() -> None:
    values = {"voltage_l1_v": math.nan, "voltage_l2_v": 229.5, "power_w": math.inf,
              "frequency_hz": 50.0}
    meter = SimulatedModbusDevice(SDM630, unit=1, values=values)
    async with ModbusTcpSimulator([meter]) as sim, \
            ModbusPoller(TcpEndpoint("127.0.0.1", sim.port),
                         [ModbusDevice("meter", 1, SDM630)]) as poller:
        [reading] = [m for m in await poller.poll_due() if isinstance(m, MeterReading)]
    assert "voltage_l1_v" not in reading.values and "power_w" not in reading.values
    assert reading.values["voltage_l2_v"] == pytest.approx(229.5)
    assert reading.values["frequency_hz"] == 50.0
    assert poller.stats.rejected == {"not_finite": 2}
    reading.to_json() if hasattr(reading, "to_json") else None


async def test_device_answering_only_with_exceptions_goes_offline_once() -> None:
    radar = SimulatedModbusDevice(RADAR, unit=7, values={"occupied": 0})
    radar.exception_code = 11  # GATEWAY TARGET FAILED TO RESPOND, behind a TCP gateway
    async with ModbusTcpSimulator([radar]) as sim, \
            ModbusPoller(TcpEndpoint("127.0.0.1", sim.port), [ModbusDevice("radar", 7, RADAR)],
                         offline_after=2, offline_interval_s=0) as poller:
        messages = [m for _ in range(4) for m in await poller.poll_device("radar")]
    kinds = [m.kind for m in messages if isinstance(m, Event)]
    assert kinds.count(EventKind.MODBUS_OFFLINE) == 1
    # one error event per request when the error starts, not one per request per poll
    assert kinds.count(EventKind.MODBUS_ERROR) == len(poller.plan("radar"))
    assert not poller.health("radar").online


async def test_busy_exception_is_retried_with_backoff() -> None:
    radar = SimulatedModbusDevice(RADAR, unit=3, values={"targets": 4})
    radar.busy_replies = 2
    async with ModbusTcpSimulator([radar]) as sim, \
            ModbusPoller(TcpEndpoint("127.0.0.1", sim.port), [ModbusDevice("radar", 3, RADAR)],
                         busy_backoff_s=0.01) as poller:
        [reading] = _readings(await poller.poll_device("radar"))
    assert reading.values["targets"] == 4 and poller.stats.busy_retries == 2


async def test_simulator_keeps_fc3_and_fc4_apart_refuses_long_reads_and_absent_is_silent() -> None:
    from pymodbus.client import AsyncModbusTcpClient
    from pymodbus.exceptions import ModbusIOException

    meter = SimulatedModbusDevice(SDM630, unit=1, values={"voltage_l1_v": 230.0})
    async with ModbusTcpSimulator([meter]) as sim:
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=0.2, retries=0)
        await client.connect()
        try:
            assert not (await client.read_input_registers(0, count=2, device_id=1)).isError()
            holding = await client.read_holding_registers(0, count=2, device_id=1)
            assert holding.isError() and holding.exception_code == 2
            too_long = await client.read_input_registers(0, count=81, device_id=1)
            assert too_long.isError() and too_long.exception_code == 3
            with pytest.raises(ModbusIOException):
                await client.read_input_registers(0, count=2, device_id=9)
        finally:
            client.close()
