"""`lykta commission scan modbus`, `modbus read|write` and `config` as a technician runs them:
the CLI in a subprocess against simulated devices on real pymodbus servers (loopback TCP, and
RTU over a pty whose ends must agree on the line settings), and a real controller API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from controller.registry import Role
from controller.service import ControllerService
from fieldsim.modbus import ModbusRtuSimulator, ModbusTcpSimulator, SimulatedModbusDevice
from gateway.commissioning.journal import Journal
from gateway.commissioning.modbus_scan import ModbusScan, ModbusScanOptions
from gateway.config import load_gateway_config
from gateway.modbus.access import ModbusAccess
from gateway.modbus.poller import ReadFailure, TcpEndpoint
from gateway.modbus.profile import load_profiles
from lykta.cli.commission import REGISTRATION_PENDING, app
from tests.controller.conftest import controller, controller_cfg  # noqa: F401 - fixtures
from tests.waiting import eventually

PROFILES = load_profiles()


async def _cli(*args: str) -> tuple[int, str]:
    """The CLI as typed, run in a thread (its own event loop) while the simulators serve in
    this one; no subprocess, so the suite does not pay for an interpreter start each time."""
    r = await asyncio.wait_for(asyncio.to_thread(CliRunner().invoke, app, list(args),
                                                 env={"LYKTA_TOKEN": None}), 120)
    return r.exit_code, r.output


def _cabinet() -> list[SimulatedModbusDevice]:
    behind_gateway = SimulatedModbusDevice(PROFILES["radar_presence"], 5)
    behind_gateway.exception_code = 11  # a TCP gateway: "target device failed to respond"
    return [behind_gateway,
        SimulatedModbusDevice(PROFILES["eastron_sdm630"], 1,
                              {"voltage_l1_v": 231.5, "frequency_hz": 50.0},
                              settings={"serial_number": 21034567}),
        SimulatedModbusDevice(PROFILES["radar_presence"], 2, {"occupied": 1, "targets": 2}),
        SimulatedModbusDevice(PROFILES["lux_sensor"], 4, {"lux": 812.3, "temperature_c": 3.5}),
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def _api(svc: ControllerService) -> AsyncIterator[str]:
    """The controller's app served over HTTP on loopback, as `lykta controller run` does."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(svc.app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started, within_s=10)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_scan_over_tcp_identifies_writes_the_config_and_registers(
    tmp_path: Path, controller: ControllerService,  # noqa: F811 - the fixture
) -> None:
    state = tmp_path / "cab"
    async with ModbusTcpSimulator(_cabinet()) as sim:
        port = f"tcp://127.0.0.1:{sim.port}"
        code, out = await _cli("scan", "modbus", "--port", port, "--ids", "1-5",
                               "--state-dir", str(state))
        assert code == 0, out
        assert "3 devices in" in out and "meter_code = 112" in out
        report = json.loads((state / "report.json").read_text())
        found = {d["unit"]: d for d in report["modbus_devices"]}
        assert {u: d["profile"] for u, d in found.items()} == {
            1: "eastron_sdm630", 2: "radar_presence", 4: "lux_sensor"}
        assert found[1]["by"] == "model code" and found[1]["serial_number"] == 21034567
        assert found[2]["by"] == found[4]["by"] == "readings"
        assert sim.devices[0].reads >= 1  # unit 5 was asked: its exception 11 is absence
        assert "Modbus devices" in (state / "report.html").read_text()
        # absent ids are silence (a timeout), not an exception reply
        async with ModbusAccess(TcpEndpoint("127.0.0.1", sim.port), timeout_s=0.2) as bus:
            got = await bus.read(3, 3, 0, 1)
        assert isinstance(got, ReadFailure) and got.kind == "timeout"
        # the scan again: already done, nothing asked
        reads = [d.reads for d in sim.devices]
        code, out = await _cli("scan", "modbus", "--port", port, "--ids", "1-5",
                               "--state-dir", str(state))
        assert code == 0 and "scanned before" in out, out
        assert [d.reads for d in sim.devices] == reads

    async with _api(controller) as url:
        operator = controller.registry.create_token("tech", Role.OPERATOR, 1)
        viewer = controller.registry.create_token("view", Role.VIEWER, 1)
        args = ("config", "--state-dir", str(state), "--site", "norrkoping", "--gateway",
                "gw-new", "--latitude", "58.59", "--longitude", "16.19", "--controller", url)
        code, out = await _cli(*args, "--token", viewer)
        assert code == 1 and "403" in out, out  # a viewer may not register
        code, out = await _cli(*args, "--token", operator)
        assert code == 0, out
        assert "registered gw-new" in out and "not in the applied strategy yet" in out
        cfg = load_gateway_config(state / "gateway.toml")
        [line] = cfg.modbus
        assert (line.host, line.tcp_port) == ("127.0.0.1", sim.port)
        assert sorted((d.unit, d.profile) for d in line.devices) == [
            (1, "eastron_sdm630"), (2, "radar_presence"), (4, "lux_sensor")]
        async with httpx.AsyncClient(base_url=url) as client:
            r = await client.get("/api/v1/gateways/gw-new/commissioning",
                                 headers={"Authorization": f"Bearer {viewer}"})
            assert r.status_code == 200, r.text
            record = r.json()
            assert record["actor"] == "tech" and len(record["modbus_devices"]) == 3
            assert "eastron_sdm630" in record["config_toml"]
            r = await client.get("/api/v1/gateways/gw-other/commissioning",
                                 headers={"Authorization": f"Bearer {viewer}"})
            assert r.status_code == 404
            r = await client.put("/api/v1/gateways/gw-new/commissioning", json={})
            assert r.status_code == 401
        audit = controller.registry.audit_log()
        assert any(a["action"] == "gateway_commissioned" and a["actor"] == "tech" for a in audit)
    # the controller gone: the config is still written, registration is left for later
    code, out = await _cli(*args, "--token", operator)
    assert code == REGISTRATION_PENDING and "not registered" in out, out
    assert "not reachable" in out and (state / "gateway.toml").exists(), out


async def test_a_factory_sdm120_is_found_by_auto_and_moved_to_the_cabinet_settings(
    tmp_path: Path,
) -> None:
    factory = SimulatedModbusDevice(PROFILES["eastron_sdm120"], 1, {"voltage_v": 229.0},
                                    settings={"baud_rate": 0, "parity_stop": 0,
                                              "node_address": 1})
    state = str(tmp_path / "cab")
    async with ModbusRtuSimulator([factory], baudrate=2400, parity="N",
                                  line_settings_matter=True) as sim:
        pty = sim.client_port
        code, out = await _cli("scan", "modbus", "--port", pty, "--ids", "1-3", "--baud",
                               "auto", "--state-dir", state)
        assert code == 0, out
        [dev] = json.loads((Path(state) / "report.json").read_text())["modbus_devices"]
        assert (dev["unit"], dev["settings"], dev["profile"]) == (1, "2400 8N1",
                                                                   "eastron_sdm120")
        [line] = json.loads((Path(state) / "report.json").read_text())["modbus_lines"]
        assert line["settings_tried"][0] == "9600 8N1" and line["settings_tried"][-1] == "2400 8N1"
        assert sim.line.garbled_bytes > 0  # the wrong settings really did not get through
        # at another baud rate it is silent (a pty keeps no parity: only the rate is
        # compared); at its own settings it answers
        code, out = await _cli("modbus", "read", "--port", pty, "--baud", "9600-8N1",
                               "--unit", "1", "--register", "0x001C", "--type", "f32",
                               "--timeout", "0.2")
        assert code == 1 and "no answer" in out, out
        read = ("modbus", "read", "--port", pty, "--baud", "2400-8N1", "--unit", "1",
                "--register", "0x001C", "--type", "f32", "--json")
        code, out = await _cli(*read)
        assert code == 0 and json.loads(out)["values"] == [0.0], out
        # 9600 baud (code 2) and even parity (1): the meter takes both
        for register, value in (("0x001C", "2"), ("0x0012", "1")):
            code, out = await _cli("modbus", "write", value, "--port", pty, "--baud",
                                   "2400-8N1", "--unit", "1", "--register", register,
                                   "--type", "f32")
            assert code == 0 and "read back: the same" in out, out
        assert factory.settings["baud_rate"] == 2.0 and factory.settings["parity_stop"] == 1.0
        code, out = await _cli(*read)
        assert json.loads(out)["values"] == [2.0] and json.loads(out)["raw"] == [0x4000, 0]
        # input registers refuse writes, as on the meter
        code, out = await _cli("modbus", "write", "5", "--port", pty, "--baud", "2400-8N1",
                               "--unit", "1", "--register", "0x0000")
        assert code == 1 and "exception reply code 2" in out, out
        assert factory.writes == 2


async def test_an_interrupted_scan_continues_without_asking_again(tmp_path: Path) -> None:
    devices = _cabinet()
    journal = Journal.create(tmp_path, {})
    calls = 0

    def interrupt_at_unit_3(step: str, done: float | None, total: float | None,
                            message: str | None) -> None:
        nonlocal calls
        calls += 1
        if message and "unit 3 " in message:
            raise KeyboardInterrupt

    async with ModbusTcpSimulator(devices) as sim:
        options = ModbusScanOptions(f"tcp://127.0.0.1:{sim.port}", list(range(1, 6)), [])
        with pytest.raises(KeyboardInterrupt):
            await ModbusScan(journal, PROFILES, on_progress=interrupt_at_unit_3).run(options)
        rec = Journal.load(tmp_path).data["modbus"]["lines"][options.port]
        assert sorted(rec["found"]) == ["1", "2"] and not rec["finished"]
        reads = [d.reads for d in devices]
        code, out = await _cli("resume", "--state-dir", str(tmp_path))
        assert code == 0 and "continuing the scan (0 line settings done, 2 devices" in out, out
        rec = Journal.load(tmp_path).data["modbus"]["lines"][options.port]
        assert rec["finished"] and sorted(rec["found"]) == ["1", "2", "4"]
        assert rec["found"]["4"]["profile"] == "lux_sensor"
        # units found before the interruption were not asked again
        assert [d.reads for d in devices][1:3] == reads[1:3]



async def test_all_settings_keeps_trying_and_expect_stops_at_the_count(tmp_path: Path) -> None:
    from gateway.modbus.line_settings import candidates

    meter = SimulatedModbusDevice(PROFILES["eastron_sdm120"], 2, {"voltage_v": 230.0})
    async with ModbusRtuSimulator([meter], baudrate=2400, parity="N",
                                  line_settings_matter=True) as sim:
        settings = candidates("2400-8N1,4800-8N1,9600-8N1")
        journal = Journal.create(tmp_path / "a", {})
        rec = await ModbusScan(journal, PROFILES).run(ModbusScanOptions(
            sim.client_port, [1, 2, 3], settings, all_settings=True))
        assert rec["done"] == ["2400 8N1", "4800 8N1", "9600 8N1"]
        assert {u: d["settings"] for u, d in rec["found"].items()} == {"2": "2400 8N1"}
        full = rec["requests"]
        journal = Journal.create(tmp_path / "b", {})
        rec = await ModbusScan(journal, PROFILES).run(ModbusScanOptions(
            sim.client_port, [1, 2, 3], settings, all_settings=True, expect=1))
        # stopped at the first device: unit 3 and the other settings were never tried
        assert rec["done"] == ["2400 8N1"] and list(rec["found"]) == ["2"]
        # the same identification; five presence probes fewer (unit 3 at 2400; units 1, 3 at
        # 4800 and 9600)
        assert rec["next"] == {} and rec["requests"] == full - 5


async def test_coils_discrete_inputs_and_single_register_writes() -> None:
    from gateway.modbus.profile import parse_profile

    relay = parse_profile({
        "name": "Relay module", "kind": "meter", "measurement": "relay", "max_registers": 8,
        "registers": [{"field": "relay_on", "function": 1, "address": 3, "type": "bool"},
                      {"field": "door_open", "function": 2, "address": 5, "type": "bool"}],
        "settings": [{"field": "mode", "function": 3, "address": 0, "type": "s16"}]})
    device = SimulatedModbusDevice(relay, 7, {"door_open": 1}, settings={"mode": 0})
    async with ModbusTcpSimulator([device]) as sim:
        at = ("--port", f"tcp://127.0.0.1:{sim.port}", "--unit", "7")
        code, out = await _cli("modbus", "read", "--coil", "--register", "3", "--json", *at)
        assert code == 0 and json.loads(out)["values"] == [False], out
        code, out = await _cli("modbus", "write", "1", "--coil", "--register", "3", *at)
        assert code == 0 and "fc5" in out and "read back: the same" in out, out
        code, out = await _cli("modbus", "read", "--coil", "--register", "3", "--json", *at)
        assert json.loads(out)["values"] == [True]
        code, out = await _cli("modbus", "read", "--discrete", "--register", "5", "--json", *at)
        assert code == 0 and json.loads(out)["values"] == [True], out
        assert json.loads(out)["function"] == 2
        code, out = await _cli("modbus", "write", "--type", "i16", "--register", "0", *at,
                               "--", "-3")  # a negative value after --, as in any CLI
        assert code == 0 and "fc6" in out and "fffd" in out, out
        assert device.settings["mode"] == -3.0
        code, out = await _cli("modbus", "read", "--type", "i16", "--register", "0", *at)
        assert code == 0 and "= -3" in out, out


async def test_one_cabinet_dali_and_modbus_in_one_run(tmp_path: Path) -> None:
    import time as clock

    from fieldsim.dali import GearSpec, SimulatedDaliBus
    from firmware_bridge.emulator import Emulator, EmulatorOptions
    from firmware_bridge.port import PtyPort

    state = str(tmp_path / "cab")
    async with ModbusTcpSimulator(_cabinet()[1:2]) as sim:
        code, out = await _cli("scan", "modbus", "--port", f"tcp://127.0.0.1:{sim.port}",
                               "--ids", "1-2", "--state-dir", state)
        assert code == 0, out
    bus = SimulatedDaliBus([GearSpec(0), GearSpec(None)], now=clock.monotonic)
    async with Emulator(PtyPort(), bus, EmulatorOptions()) as emulator:
        port = emulator.port.slave_path  # type: ignore[attr-defined]
        code, out = await _cli("scan", "dali", "--port", port, "--no-devices",
                               "--state-dir", state)
        assert code == 0, out
    report = json.loads((Path(state) / "report.json").read_text())
    assert report["gear_found"] == 2
    assert [(d["unit"], d["profile"]) for d in report["modbus_devices"]] == [
        (1, "eastron_sdm630")]
    code, out = await _cli("config", "--state-dir", state, "--site", "s", "--gateway", "gw",
                           "--latitude", "58.6", "--longitude", "16.2")
    assert code == 0 and "1 DALI bus(es), 2 luminaires, 1 Modbus devices" in out, out


async def test_wrong_input_is_one_line_and_nothing_is_sent(tmp_path: Path) -> None:
    from gateway.modbus.profile import parse_profile

    relay = parse_profile({
        "name": "Relay module", "kind": "meter", "measurement": "relay", "max_registers": 8,
        "registers": [{"field": "relay_on", "function": 1, "address": 3, "type": "bool"}],
        "settings": [{"field": "mode", "function": 3, "address": 0xFFFF, "type": "u16"}]})
    device = SimulatedModbusDevice(relay, 7, settings={"mode": 0})
    async with ModbusTcpSimulator([device]) as sim:
        at = ("--port", f"tcp://127.0.0.1:{sim.port}", "--unit", "7")
        refused = [
            # int("5") would have switched the relay on
            (("modbus", "write", "5", "--coil", "--register", "3", *at), "coil values are 0 or 1"),
            (("modbus", "write", "--type", "u32", "--register", "0xffff", *at, "--", "1"),
             "past the last address 0xffff"),
            (("modbus", "read", "--register", "65535", "--count", "2", *at),
             "past the last address 0xffff"),
            (("modbus", "read", "--coil", "--discrete", "--register", "3", *at), "not both"),
        ]
        for args, says in refused:
            code, out = await _cli(*args)
            assert code == 1 and says in out and len(out.strip().splitlines()) == 1, (args, out)
        code, out = await _cli("modbus", "read", "--coil", "--register", "3", "--json", *at)
        assert code == 0 and json.loads(out)["values"] == [False], out  # the relay stayed off
        assert device.settings["mode"] == 0
    # a TCP port out of range: refused before the socket (was an OverflowError traceback)
    for port, says in [("tcp://127.0.0.1:99999", "TCP port 99999 is not 1..65535"),
                       ("tcp://127.0.0.1:abc", "write tcp://HOST:PORT")]:  # fmt: skip
        code, out = await _cli("modbus", "read", "--port", port, "--unit", "1", "--register", "0")
        assert code == 1 and out.strip() == f"{port}: {says}", out
        code, out = await _cli("scan", "modbus", "--port", port, "--state-dir", str(tmp_path))
        assert code == 1 and out.strip() == f"{port}: {says}", out
    assert not await asyncio.to_thread(lambda: any(tmp_path.iterdir()))  # no journal written
