"""`lykta sim`: the field simulator — Modbus devices, DALI gear, pedestrians.

- ``lykta sim cabinet``: run a simulated street cabinet (SDM630 meter, radar presence sensor and
  lux sensor on Modbus TCP at 127.0.0.1, optionally Modbus RTU on a pseudo-terminal, a DALI bus
  of simulated gear, people walking past the sensors) until Ctrl-C or ``--seconds``;
- ``lykta sim poll``: poll a Modbus device once with a profile, print the contract messages;
- ``lykta sim profiles``: the shipped device profiles and their read plans;
- ``lykta sim luba``: a simulated Lunatone LUBA DALI interface on a pseudo-terminal;
- ``lykta sim modbus``: one Modbus device on a pseudo-terminal at its own line settings (a
  factory meter to find with ``lykta commission scan modbus --baud auto``);
- ``lykta sim dali``: a bus to commission (unaddressed gear, existing and duplicate short
  addresses, DALI-2 sensors) behind the firmware-bridge board emulator on a pseudo-terminal.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from lykta.cli.output import error

app = typer.Typer(help="Field simulator: Modbus devices, DALI gear, pedestrians.",
                  no_args_is_help=True)
_out = Console(width=None if sys.stdout.isatty() else 160)
_err = Console(stderr=True)


@app.command()
def profiles(
    directory: Path = typer.Option(None, help="profile directory (default: config/profiles)"),
    baudrate: int = typer.Option(9600, help="RTU line speed for the wire-time column"),
    parity: str = typer.Option("E", help="RTU parity N/E/O for the wire-time column"),
) -> None:
    """List device profiles with their read plans and RTU wire time per poll."""
    from gateway.modbus.planner import plan_profile
    from gateway.modbus.profile import PROFILE_DIR, ProfileError, load_profiles
    from gateway.modbus.wire import char_time_s, plan_chars, read_chars

    try:
        found = load_profiles(directory or PROFILE_DIR)
    except ProfileError as exc:
        error(_err, exc)
        raise typer.Exit(1) from None
    char_s = char_time_s(baudrate, parity)
    table = Table(title=f"Device profiles (wire time at {baudrate} 8{parity}1)")
    for col in ("profile", "device", "values", "requests", "registers read",
                "wire ms", "1 register/request ms"):
        table.add_column(col)
    for name, p in found.items():
        plan = plan_profile(p)
        wanted = sum(r.count for r in p.registers)
        table.add_row(name, p.name, str(len(p.registers)), str(len(plan)),
                      str(sum(r.count for r in plan)), f"{plan_chars(plan) * char_s * 1e3:.1f}",
                      f"{wanted * read_chars(1) * char_s * 1e3:.1f}")
    _out.print(table)


@app.command()
def poll(
    profile: str = typer.Argument(..., help="profile name (file stem) or path to a .toml"),
    host: str = typer.Option("127.0.0.1", help="Modbus TCP host"),
    port: int = typer.Option(502, help="Modbus TCP port"),
    serial: str = typer.Option(None, help="serial port for Modbus RTU instead of TCP"),
    baudrate: int = typer.Option(9600),
    parity: str = typer.Option("E"),
    unit: int = typer.Option(1, help="Modbus unit (device) id"),
    timeout: float = typer.Option(0.5, help="seconds per request"),
) -> None:
    """Poll one Modbus device once and print what the gateway would publish (JSON lines)."""
    import logging

    from gateway.modbus.poller import ModbusDevice, ModbusPoller, SerialLine, TcpEndpoint
    from gateway.modbus.profile import ProfileError, load_profile, load_profiles
    from lykta.contract import Event, EventKind, encode

    # pymodbus logs its own reconnect attempts ("Repeating...."); the poller reports failures
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        if profile.endswith(".toml"):
            dev_profile = load_profile(Path(profile))
        else:
            shipped = load_profiles()
            if profile not in shipped:
                error(_err, f"no profile {profile!r} (available: {', '.join(sorted(shipped))}; "
                            "or give a path to a .toml)")
                raise typer.Exit(1)
            dev_profile = shipped[profile]
    except ProfileError as exc:
        error(_err, exc)
        raise typer.Exit(1) from None
    link = SerialLine(serial, baudrate, parity) if serial else TcpEndpoint(host, port)

    async def once() -> list[str]:
        failures = []
        async with ModbusPoller(link, [ModbusDevice(f"unit-{unit}", unit, dev_profile)],
                                timeout_s=timeout, retries=1) as poller:
            for message in await poller.poll_due():
                print(encode(message).decode())
                if isinstance(message, Event) and message.kind in (
                    EventKind.MODBUS_ERROR, EventKind.MODBUS_OFFLINE
                ):
                    failures.append(str(message.detail.get("message", message.kind.value)))
        return failures

    failures = asyncio.run(once())
    if failures:
        error(_err, f"poll of unit {unit} at {link.name} failed: {failures[0]}")
        raise typer.Exit(1)


@app.command()
def cabinet(
    luminaires: int = typer.Option(12, min=1, max=64, help="DALI control gear on the bus"),
    sensors: int = typer.Option(3, min=1, max=16, help="presence sensors along the path"),
    port: int = typer.Option(0, help="Modbus TCP port on 127.0.0.1 (0: any free port)"),
    rtu: bool = typer.Option(False, help="also serve Modbus RTU on a pseudo-terminal"),
    pedestrians: float = typer.Option(60.0, help="pedestrians per hour"),
    cyclists: float = typer.Option(20.0, help="cyclists per hour"),
    seconds: float = typer.Option(0.0, help="stop after this long (0: run until Ctrl-C)"),
) -> None:
    """Run a simulated street cabinet and print where its devices answer."""
    from fieldsim.cabinet import SimulatedCabinet

    async def run() -> None:
        cab = SimulatedCabinet(luminaires, sensors=sensors, pedestrians_per_hour=pedestrians,
                               cyclists_per_hour=cyclists, rtu=rtu, modbus_port=port)
        async with cab:
            _out.print(f"Modbus TCP 127.0.0.1:{cab.tcp.port}: unit 1 SDM630 meter, "
                       "unit 2 radar presence, unit 3 lux")
            if cab.rtu is not None:
                _out.print(f"Modbus RTU {cab.rtu.client_port} (9600 8N1), same units")
            _out.print(f"DALI: {luminaires} gear, groups "
                       + ", ".join(f"{g}: {m}" for g, m in cab.groups.items())
                       + " (in-process only)")
            t = 0.0
            while not seconds or t < seconds:
                await asyncio.sleep(5.0 if not seconds else min(5.0, seconds - t))
                t += 5.0
                counts = {k: sum(c[k] for c in cab.path.sensor_counts)
                          for k in ("pedestrian", "cyclist")}
                meter = cab.meter.values()
                _out.print(f"power {meter['power_w']:.1f} W, "
                           f"energy {meter['energy_import_kwh']:.4f} kWh, on path "
                           f"{cab.path.on_path()}, passed sensors {counts}")

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


@app.command()
def luba(
    gear: int = typer.Option(8, min=1, max=64, help="simulated DALI control gear"),
    seconds: float = typer.Option(0.0, help="stop after this long (0: run until Ctrl-C)"),
) -> None:
    """Run a simulated Lunatone LUBA RS232 DALI interface on a pseudo-terminal; point a
    ``luba232:<port>`` DALI bus at the printed port."""
    import time

    from fieldsim.dali import SimulatedDaliBus
    from fieldsim.lunatone import LubaEmulator

    async def run() -> None:
        emulator = LubaEmulator(SimulatedDaliBus(gear, now=time.monotonic))
        emulator.start()
        try:
            _out.print(f"LUBA interface with {gear} gear on luba232:{emulator.port}")
            await asyncio.sleep(seconds if seconds else float("inf"))
        finally:
            emulator.close()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


@app.command()
def dali(
    unaddressed: int = typer.Option(16, min=0, max=64, help="gear without a short address"),
    addressed: int = typer.Option(0, min=0, max=64, help="gear at short addresses 0, 1, ..."),
    duplicates: int = typer.Option(0, min=0, max=32,
                                   help="extra gear sharing the first addresses (pairs)"),
    sensors: int = typer.Option(2, min=0, max=64, help="unaddressed DALI-2 occupancy + light "
                                "sensors (24-bit control devices)"),
    seed: int = typer.Option(1, help="random addresses and serials"),
    seconds: float = typer.Option(0.0, help="stop after this long (0: run until Ctrl-C)"),
) -> None:
    """A DALI bus to commission behind the emulated firmware-bridge board; point
    ``lykta commission scan dali --port`` at the printed port."""
    import time

    from fieldsim.dali import GearSpec, SimulatedDaliBus
    from fieldsim.dali_devices import ControlDeviceSpec
    from firmware_bridge.emulator import Emulator, EmulatorOptions
    from firmware_bridge.port import PtyPort

    specs = ([GearSpec(i) for i in range(addressed)]
             + [GearSpec(i % max(addressed, 1)) for i in range(duplicates if addressed else 0)]
             + [GearSpec(None) for _ in range(unaddressed)])
    if len(specs) > 64:
        _err.print(f"[red]{len(specs)} gear: a DALI bus carries at most 64[/red]")
        raise typer.Exit(1)
    bus = SimulatedDaliBus(specs, now=time.monotonic, seed=seed,
                           devices=[ControlDeviceSpec(None) for _ in range(sensors)])

    async def run() -> None:
        async with Emulator(PtyPort(), bus, EmulatorOptions(dali_timing=True)) as emulator:
            _out.print(f"DALI bus with {len(specs)} gear and {sensors} sensors on "
                       f"{emulator.port.slave_path}")  # type: ignore[attr-defined]
            sys.stdout.flush()
            await asyncio.sleep(seconds if seconds else float("inf"))

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


@app.command()
def modbus(
    profile: str = typer.Argument("eastron_sdm120", help="shipped profile (lykta sim profiles)"),
    unit: int = typer.Option(1, min=1, max=247, help="its unit id"),
    baud: str = typer.Option("2400-8N1", help="its line settings (an SDM120 leaves the factory "
                             "at 2400-8N1)"),
    seconds: float = typer.Option(0.0, help="stop after this long (0: run until Ctrl-C)"),
) -> None:
    """One Modbus device answering by its profile on a pseudo-terminal, only at its own baud
    rate; point ``lykta commission scan modbus --port`` at the printed port."""
    from fieldsim.modbus import ModbusRtuSimulator, SimulatedModbusDevice
    from gateway.modbus.line_settings import LineSettings
    from gateway.modbus.profile import load_profiles

    profiles = load_profiles()
    if profile not in profiles:
        error(_err, f"no profile {profile!r} (have {', '.join(sorted(profiles))})")
        raise typer.Exit(1)
    try:
        line = LineSettings.parse(baud)
    except ValueError as exc:
        error(_err, str(exc))
        raise typer.Exit(1) from None
    p = profiles[profile]
    # mid-range readings: what a meter on a lit circuit shows
    values = {r.field: (230.0 if r.field.startswith("voltage") else 50.0
                        if r.field.startswith("frequency") else 1.0)
              for r in p.registers if r.numeric}
    settings = {"node_address": float(unit)} if any(
        s.field == "node_address" for s in p.settings) else {}
    device = SimulatedModbusDevice(p, unit, values, settings=settings)

    async def run() -> None:
        async with ModbusRtuSimulator([device], baudrate=line.baudrate, parity=line.parity,
                                      stopbits=line.stopbits,
                                      line_settings_matter=True) as sim:
            _out.print(f"{p.name} unit {unit} at {line} on {sim.client_port}")
            sys.stdout.flush()
            await asyncio.sleep(seconds if seconds else float("inf"))

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
