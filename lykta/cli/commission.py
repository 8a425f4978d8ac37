"""`lykta commission`: the field technician's toolkit for a cabinet.

- ``scan dali --port …``: address every control gear and DALI-2 control device on a bus
  (existing short addresses kept, duplicates separated), read the D4i luminaire information,
  write the report (JSON + HTML) and an inventory CSV; resumable;
- ``resume``: continue an interrupted ``scan dali`` without redoing finished steps;
- ``selftest``: on, dim, off with read-back for every luminaire; the bus is left lit;
- ``identify N`` / ``identify --group G``: blink a luminaire or group so the pole is confirmed;
- ``assign --plan inventory.csv``: map found gear to the site plan, program DALI groups;
- ``report``: render the report again (e.g. against another plan);
- ``scan modbus --port …``: find Modbus devices (line settings tried when ``--baud auto``)
  and identify them against the shipped profiles; resumable;
- ``modbus read|write``: ad-hoc register access, as mbpoll gives;
- ``config``: the gateway's ``gateway.toml`` from what was found (validated by loading it),
  registered with the controller's API when ``--controller`` is given.

State lives in ``--state-dir`` (default ``./commissioning``): the journal, the report, the CSV.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:  # the CLI imports the gateway lazily (start-up time); the types only here
    from gateway.commissioning.modbus_scan import ModbusScanOptions
    from gateway.modbus.access import ModbusAccess
    from gateway.modbus.poller import SerialLine, TcpEndpoint

T = TypeVar("T")

app = typer.Typer(help="Commission a cabinet: scan and address buses, identify, self-test, "
                  "report.", no_args_is_help=True)
scan_app = typer.Typer(help="Find and address what is on a bus.", no_args_is_help=True)
modbus_app = typer.Typer(help="Ad-hoc Modbus register access (like mbpoll).",
                         no_args_is_help=True)
app.add_typer(scan_app, name="scan")
app.add_typer(modbus_app, name="modbus")
_out = Console(width=None if sys.stdout.isatty() else 160)
_err = Console(stderr=True)

STATE_DIR = typer.Option(Path("commissioning"), "--state-dir",
                         help="journal, report and inventory of this cabinet's commissioning")


def _fail(message: str) -> typer.Exit:
    _err.print(f"[red]{message}[/red]")
    return typer.Exit(1)


# -- DALI ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _open_bus(transport: str, port: str, name: str) -> AsyncIterator[Any]:
    if transport == "firmware-bridge":
        from gateway.dali.board import BoardDaliBus

        async with BoardDaliBus.open(port, name=name) as board:
            yield board
    elif transport == "lunatone":
        from gateway.dali.lunatone import PythonDaliBus

        bus = await PythonDaliBus.open(port, name=name)
        try:
            yield bus
        finally:
            await bus.close()
    else:
        raise _fail(f"transport {transport!r}: use firmware-bridge or lunatone")


class _Progress:
    """Rich progress bars, one per step, with ETA."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, step: str, completed: float | None, total: float | None,
                 message: str | None) -> None:
        if step not in self.tasks:
            self.tasks[step] = self.progress.add_task(step, total=None)
        task = self.tasks[step]
        if total:
            self.progress.update(task, total=total, completed=completed or 0)
        if message == "done":
            t = self.progress.tasks[self.tasks[step]]
            self.progress.update(task, total=t.total or 1, completed=t.total or 1)
        elif message and message not in ("started",):
            self.progress.update(task, description=f"{step}: {message}")


@contextlib.contextmanager
def _progress() -> Iterator[_Progress]:
    with Progress(TextColumn("{task.description}", table_column=None), BarColumn(),
                  TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=_out,
                  transient=False) as progress:
        yield _Progress(progress)


def _write_outputs(state_dir: Path, report: dict[str, Any], args: dict[str, Any]) -> None:
    from gateway.commissioning.report import render_html

    (state_dir / "report.json").write_text(json.dumps(report, indent=1, default=str) + "\n",
                                           encoding="utf-8")
    (state_dir / "report.html").write_text(render_html(report), encoding="utf-8")
    if not args.get("bus"):
        return  # no DALI bus commissioned (yet): no luminaire inventory
    plan_ids = {g["short_address"]: g for g in report["gear"]}
    with (state_dir / "inventory.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "zone", "gateway", "bus", "short_address", "group", "luminaire_id"])
        for short, g in sorted(plan_ids.items()):
            w.writerow([g.get("plan_id") or f"{args['bus']}-{short:02d}", g.get("zone", ""),
                        args.get("gateway") or "", args["bus"], short, "",
                        g.get("luminaire_id", "")])


def _summary(report: dict[str, Any], state_dir: Path) -> None:
    _out.print(f"[bold]{report['gear_found']}[/bold] control gear ({report['addressed']} "
               f"addressed now, {report['kept']} kept), "
               f"{len(report['duplicates_resolved'])} duplicate addresses resolved, "
               f"{len(report['control_devices'])} control devices; "
               f"{report['bus_time_s']:.1f} s of DALI bus time in {report['frames']} frames")
    if report["missing"]:
        _out.print(f"[red]missing: {', '.join(m['id'] for m in report['missing'])}[/red]")
    if report["unexpected"]:
        _out.print("[yellow]unexpected short addresses: "
                   f"{', '.join(str(u['short_address']) for u in report['unexpected'])}[/yellow]")
    _out.print(f"report: {state_dir / 'report.html'} and report.json; inventory.csv written")


def _plan(args: dict[str, Any]) -> Any:
    from gateway.commissioning.report import load_plan

    if not args.get("plan") or not args.get("bus"):
        return None
    try:
        return load_plan(Path(args["plan"]), gateway=args.get("gateway"), bus=args["bus"])
    except ValueError as exc:
        raise _fail(str(exc)) from None


async def _run_scan(state_dir: Path, args: dict[str, Any]) -> dict[str, Any]:
    from gateway.commissioning.journal import Journal
    from gateway.commissioning.session import CommissionSession, ScanOptions

    journal = Journal.load(state_dir)
    options = ScanOptions(readdress=args["readdress"], control_devices=args["devices"],
                          inventory=args["inventory"])
    async with _open_bus(args["transport"], args["port"], args["bus"]) as bus:
        with _progress() as show:
            session = CommissionSession(bus, journal, on_progress=show)
            await session.scan_dali(options)
        if session.skipped:
            _out.print(f"resumed: {', '.join(session.skipped)} already done")
        report = session.report(_plan(args))
    _write_outputs(state_dir, report, args)
    return report


def _interrupted(state_dir: Path) -> typer.Exit:
    _err.print("[yellow]interrupted: everything done so far is kept; "
               f"continue with `lykta commission resume --state-dir {state_dir}`[/yellow]")
    return typer.Exit(130)


@scan_app.command("dali")
def scan_dali(
    port: str = typer.Option(..., help="serial port of the DALI master (firmware bridge), or "
                             "luba232:/dev/ttyUSB0 with --transport lunatone"),
    transport: str = typer.Option("firmware-bridge", help="firmware-bridge or lunatone"),
    bus: str = typer.Option("dali1", help="the bus name in the gateway config"),
    readdress: bool = typer.Option(False, help="clear every short address and start over"),
    devices: bool = typer.Option(True, help="also address DALI-2 control devices (sensors)"),
    read_inventory: bool = typer.Option(True, "--inventory/--no-inventory",
                                        help="read D4i luminaire information (bank 1)"),
    plan: Path = typer.Option(None, help="site plan (inventory CSV) to check against"),
    gateway: str = typer.Option(None, help="this cabinet's gateway id (rows of the plan)"),
    state_dir: Path = STATE_DIR,
    restart: bool = typer.Option(False, help="discard an unfinished run in --state-dir"),
) -> None:
    """Address everything on a DALI bus and write the report (resumable)."""
    from gateway.commissioning.journal import JOURNAL_NAME, Journal

    modbus: dict[str, Any] | None = None
    if (state_dir / JOURNAL_NAME).exists():
        earlier = _load_journal(state_dir)
        if earlier.data["args"].get("bus") and not restart:
            raise _fail(f"{state_dir} holds a commissioning run: `lykta commission resume` "
                        "continues it, --restart discards it")
        modbus = earlier.data.get("modbus")  # Modbus scans stay when a DALI run starts
    args = {"port": port, "transport": transport, "bus": bus, "readdress": readdress,
            "devices": devices, "inventory": read_inventory,
            "plan": str(plan) if plan else None, "gateway": gateway}
    journal = Journal.create(state_dir, args)
    if modbus:
        journal.data["modbus"] = modbus
        journal.save()
    try:
        report = asyncio.run(_run_scan(state_dir, args))
    except KeyboardInterrupt:
        raise _interrupted(state_dir) from None
    except (OSError, ConnectionError, TimeoutError) as exc:
        _err.print(f"[red]{port}: {exc}[/red]")
        raise _interrupted(state_dir) from None
    _summary(report, state_dir)


@app.command()
def resume(state_dir: Path = STATE_DIR,
           port: str = typer.Option(None, help="the DALI port, if it changed since the run "
                                    "began")
           ) -> None:
    """Continue an interrupted `scan dali` or `scan modbus` where it stopped."""

    from gateway.commissioning.modbus_scan import lines

    journal = _load_journal(state_dir)
    unfinished = [p for p, rec in lines(journal).items() if not rec["finished"]]
    for line in unfinished:
        _scan_modbus_line(state_dir, _options_of(lines(journal)[line]["args"]), restart=False)
    args = dict(journal.data["args"])
    if not args.get("bus"):
        if not unfinished:
            _out.print("nothing to resume: every scan in this run is finished")
        return
    if port:
        args["port"] = port
        journal = _load_journal(state_dir)
        journal.data["args"] = args
        journal.save()
    try:
        report = asyncio.run(_run_scan(state_dir, args))
    except KeyboardInterrupt:
        raise _interrupted(state_dir) from None
    _summary(report, state_dir)


def _load_journal(state_dir: Path) -> Any:
    from gateway.commissioning.journal import Journal, JournalError

    try:
        return Journal.load(state_dir)
    except JournalError as exc:
        raise _fail(str(exc)) from None


def _session_op(state_dir: Path, op: Any) -> Any:
    from gateway.commissioning.journal import Journal, JournalError
    from gateway.commissioning.session import CommissionSession

    try:
        journal = Journal.load(state_dir)
    except JournalError as exc:
        raise _fail(f"{exc} (run `lykta commission scan dali` first)") from None
    args = journal.data["args"]
    if not args.get("bus"):
        raise _fail(f"{state_dir}: no DALI bus commissioned here (run `lykta commission scan "
                    "dali` first)")

    async def run() -> Any:
        async with _open_bus(args["transport"], args["port"], args["bus"]) as bus:
            session = CommissionSession(bus, journal)
            result = await op(session)
            _write_outputs(state_dir, session.report(_plan(args)), args)
            return result

    return asyncio.run(run())


@app.command()
def selftest(state_dir: Path = STATE_DIR) -> None:
    """On, dim, off with read-back of level and status for every luminaire found; the bus is
    left at full light. A result per luminaire; exit 1 if any failed."""
    result = _session_op(state_dir, lambda s: s.selftest())
    for a, r in sorted(result["results"].items(), key=lambda kv: int(kv[0])):
        mark = "[green]ok[/green]" if r["ok"] else f"[red]{'; '.join(r['problems'])}[/red]"
        _out.print(f"short address {a:>2}: {mark}")
    if result["failed"]:
        raise typer.Exit(1)


@app.command()
def identify(
    target: int = typer.Argument(..., help="short address (0-63), or group with --group"),
    group: bool = typer.Option(False, help="TARGET is a DALI group (0-15)"),
    seconds: float = typer.Option(10.0, min=1, help="how long to blink"),
    state_dir: Path = STATE_DIR,
) -> None:
    """Blink a luminaire (or group) so the technician can confirm the pole."""
    what = f"group {target}" if group else f"luminaire {target}"
    _out.print(f"blinking {what} for {seconds:.0f} s (full light / off, once a second)")
    took = _session_op(state_dir, lambda s: s.identify(target, group=group, seconds=seconds))
    _out.print(f"done after {took:.1f} s; {what} is back at its level")


@app.command()
def assign(
    plan: Path = typer.Option(..., help="site plan: inventory CSV with id, zone, bus, "
                              "short_address, group (optional luminaire_id)"),
    interactive: bool = typer.Option(False, help="blink each luminaire and ask to confirm"),
    state_dir: Path = STATE_DIR,
) -> None:
    """Map found gear to the site plan and program the DALI group of each luminaire."""
    from gateway.commissioning.report import load_plan

    async def op(session: Any) -> Any:
        args = session.journal.data["args"]
        try:
            rows = load_plan(plan, gateway=args.get("gateway"), bus=args["bus"])
        except ValueError as exc:
            raise _fail(str(exc)) from None

        async def confirm(short: int, p: Any) -> bool:
            await session.identify(short, seconds=3)
            return typer.confirm(f"short address {short} blinked: is it {p.id} ({p.zone})?")

        return await session.assign(rows, confirm=confirm if interactive else None)

    rows = _session_op(state_dir, op)
    with (state_dir / "assigned.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, ["id", "zone", "position_m", "short_address", "group"])
        w.writeheader()
        w.writerows(rows)
    _out.print(f"{len(rows)} luminaires assigned; groups programmed; {state_dir / 'assigned.csv'}")


@app.command()
def report(state_dir: Path = STATE_DIR,
           plan: Path = typer.Option(None, help="check against this site plan instead")) -> None:
    """Write the report (JSON + HTML) again from the journal."""
    from gateway.commissioning.journal import Journal, JournalError
    from gateway.commissioning.report import build_report

    try:
        journal = Journal.load(state_dir)
    except JournalError as exc:
        raise _fail(str(exc)) from None
    args = dict(journal.data["args"])
    if plan:
        args["plan"] = str(plan)
    result = build_report(journal.data, plan=_plan(args), bus=args.get("bus") or NO_DALI)
    _write_outputs(state_dir, result, args)
    if args.get("bus"):
        _summary(result, state_dir)
    _modbus_summary(result)


# -- Modbus ----------------------------------------------------------------------------------

NO_DALI = ""
"""The report's ``bus`` when no DALI bus was commissioned (only Modbus)."""
REGISTRATION_PENDING = 3
"""Exit status of `commission config --controller` when the config is written but the
controller could not be reached."""

TYPES = {"u16": "u16", "i16": "s16", "s16": "s16", "u32": "u32", "i32": "s32", "s32": "s32",
         "u64": "u64", "i64": "s64", "s64": "s64", "f32": "float32", "float32": "float32",
         "f64": "float64", "float64": "float64", "str": "string", "string": "string"}
"""``--type`` names (mbpoll's and the profiles') -> the profile data type."""

PORT = typer.Option(..., "--port", help="serial port (RTU, e.g. /dev/ttyUSB0) or "
                    "tcp://HOST:PORT (Modbus TCP)")


def _quiet_pymodbus() -> None:
    import logging

    # pymodbus logs every timeout; a scan is mostly timeouts (absent units)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def _options_of(args: dict[str, Any]) -> ModbusScanOptions:
    from gateway.commissioning.modbus_scan import TCP, ModbusScanOptions
    from gateway.modbus.line_settings import LineSettings

    return ModbusScanOptions(
        port=args["port"], ids=list(args["ids"]),
        settings=[LineSettings.parse(s) for s in args["settings"] if s != TCP],
        all_settings=args["all_settings"], expect=args["expect"], timeout_s=args["timeout_s"])


def _scan_modbus_line(state_dir: Path, options: ModbusScanOptions, *, restart: bool,
                      profile_dir: Path | None = None) -> dict[str, Any]:
    from gateway.commissioning.journal import JOURNAL_NAME, Journal
    from gateway.commissioning.modbus_scan import ModbusScan, lines
    from gateway.commissioning.report import build_report
    from gateway.modbus.profile import PROFILE_DIR, ProfileError, load_profiles

    _quiet_pymodbus()
    try:
        profiles = load_profiles(profile_dir or PROFILE_DIR)
    except ProfileError as exc:
        raise _fail(str(exc)) from None
    journal = (_load_journal(state_dir) if (state_dir / JOURNAL_NAME).exists()
               else Journal.create(state_dir, {}))
    scan = ModbusScan(journal, profiles)
    before = scan.record(options, restart=restart)
    if before["finished"]:
        _out.print(f"{options.port}: scanned before (use --restart to scan again)")
    elif before["done"] or before["next"] or before["found"]:
        _out.print(f"{options.port}: continuing the scan ({len(before['done'])} line settings "
                   f"done, {len(before['found'])} devices found so far)")
    try:
        with _progress() as show:
            scan.on_progress = show
            rec = asyncio.run(scan.run(options))
    except KeyboardInterrupt:
        raise _interrupted(state_dir) from None
    except (OSError, ConnectionError) as exc:
        if not lines(journal)[options.port]["requests"]:
            raise _fail(str(exc)) from None  # nothing was asked: nothing to resume
        _err.print(f"[red]{exc}[/red]")
        raise _interrupted(state_dir) from None
    args = journal.data["args"]
    result = build_report(journal.data, bus=args.get("bus") or NO_DALI)
    _write_outputs(state_dir, result, args)
    _line_summary(options.port, rec, profiles)
    _out.print(f"report: {state_dir / 'report.html'} and report.json")
    return rec


def _line_summary(port: str, rec: dict[str, Any], profiles: dict[str, Any]) -> None:
    from collections import Counter

    from rich.table import Table

    found = sorted(rec["found"].values(), key=lambda d: d["unit"])
    table = Table(title=f"Modbus devices on {port}")
    for col in ("unit", "line settings", "profile", "decided by", "why", "serial"):
        table.add_column(col)
    for d in found:
        name = d.get("profile")
        table.add_row(str(d["unit"]), d["settings"],
                      f"{name} ({profiles[name].name})" if name in profiles else
                      "[yellow]none fits[/yellow]",
                      d.get("by") or "", d.get("reason") or "",
                      str(d.get("serial_number") or ""))
    _out.print(table)
    tried = ", ".join(rec["done"]) or "none"
    _out.print(f"{len(found)} devices in {rec['requests']} requests, {rec['elapsed_s']:.1f} s; "
               f"line settings tried: {tried}")
    for name, why in sorted(rec.get("refused", {}).items()):
        _out.print(f"[yellow]{name} skipped: {why}[/yellow]")
    if not found:
        _out.print("[yellow]nothing answered: check A/B wiring, termination and power, the ids"
                   " (--ids) and line settings (--baud auto --all-settings)[/yellow]")
    settings = Counter(d["settings"] for d in found)
    if len(settings) > 1:
        line = settings.most_common(1)[0][0]
        for d in found:
            if d["settings"] != line:
                _out.print(f"[yellow]unit {d['unit']} answers at {d['settings']}, the others at "
                           f"{line}: move it (`lykta commission modbus write`, see "
                           "docs/commissioning.md)[/yellow]")


@scan_app.command("modbus")
def scan_modbus(
    port: str = PORT,
    ids: str = typer.Option("1-247", help="unit ids to ask, e.g. 1-247 or 1,2,10-20"),
    baud: str = typer.Option("auto", help="auto (try the usual line settings, most likely "
                             "first), or baud rates / settings: 9600,19200 or 2400-8N1"),
    parity: str = typer.Option("E", help="parity for plain baud rates in --baud: N, E or O"),
    stopbits: int = typer.Option(1, help="stop bits for plain baud rates in --baud"),
    all_settings: bool = typer.Option(False, help="keep trying line settings after one found "
                                      "devices (a factory device on a working line)"),
    expect: int = typer.Option(None, min=1, help="stop as soon as this many devices are found"),
    timeout: float = typer.Option(None, min=0.01, help="seconds of silence before a unit counts "
                                  "as absent (default: from the baud rate; 0.3 on TCP)"),
    profiles: Path = typer.Option(None, help="profile directory (default: the shipped ones)"),
    state_dir: Path = STATE_DIR,
    restart: bool = typer.Option(False, help="scan this port again from the start"),
) -> None:
    """Find the devices on a Modbus line and propose a profile for each (resumable)."""
    from gateway.commissioning.modbus_scan import ModbusScanOptions
    from gateway.modbus.access import parse_endpoint
    from gateway.modbus.line_settings import candidates, parse_ids

    try:
        parse_endpoint(port)  # a bad tcp:// address is refused before a journal is written
        options = ModbusScanOptions(
            port=port, ids=parse_ids(ids),
            settings=[] if port.startswith("tcp://") else
            candidates(baud, parity=parity.upper(), stopbits=stopbits),
            all_settings=all_settings, expect=expect, timeout_s=timeout)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    _scan_modbus_line(state_dir, options, restart=restart, profile_dir=profiles)


def _modbus_summary(report: dict[str, Any]) -> None:
    for d in report.get("modbus_devices", []):
        _out.print(f"modbus {d['line']} unit {d['unit']} ({d['settings']}): "
                   f"{d['profile'] or 'no profile fits'}")


def _link(port: str, baud: str, parity: str, stopbits: int) -> SerialLine | TcpEndpoint:
    from gateway.modbus.access import parse_endpoint
    from gateway.modbus.line_settings import LineSettings
    from gateway.modbus.poller import SerialLine

    try:
        endpoint = parse_endpoint(port)
        if endpoint is not None:
            return endpoint
        s = LineSettings.parse(baud, parity=parity.upper(), stopbits=stopbits)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    return SerialLine(port, s.baudrate, s.parity, s.stopbits, s.bytesize)


def _address(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise _fail(f"--register {text!r}: a number, e.g. 28 or 0x001C") from None
    if not 0 <= value <= 0xFFFF:
        raise _fail(f"--register {text}: 0..65535")
    return value


def _within(address: int, n: int) -> None:
    # Modbus addresses end at 0xFFFF: a request past it is refused here, not by the device
    if address + n - 1 > 0xFFFF:
        raise _fail(f"--register {address:#06x} + {n}: past the last address 0xffff")


BAUD = typer.Option("9600", "--baud", help="baud rate or full settings (2400-8N1); serial only")
PARITY = typer.Option("E", help="parity N, E or O (when --baud is a plain rate)")
STOPBITS = typer.Option(1, help="stop bits (when --baud is a plain rate)")
UNIT = typer.Option(..., "--unit", min=0, max=247, help="unit id (slave address)")
REGISTER = typer.Option(..., "--register", help="first register (0-based; 28 or 0x001C)")
TYPE = typer.Option("u16", "--type", help="u16 i16 u32 i32 u64 i64 f32 f64 str")
ORDER = typer.Option("ABCD", "--order", help="byte order of multi-register values: ABCD (big "
                     "endian) CDAB (word swap) BADC (byte swap) DCBA")
COIL = typer.Option(False, "--coil", help="coils (FC1 read, FC5/FC15 write)")
DISCRETE = typer.Option(False, "--discrete", help="discrete inputs (FC2, read only)")
TIMEOUT = typer.Option(1.0, "--timeout", min=0.01, help="seconds to wait for the answer")


def _kind(type_: str, order: str) -> tuple[Any, Any]:
    data_type = TYPES.get(type_.lower())
    if data_type is None:
        raise _fail(f"--type {type_}: one of {', '.join(TYPES)}")
    if order.upper() not in ("ABCD", "CDAB", "BADC", "DCBA"):
        raise _fail(f"--order {order}: ABCD, CDAB, BADC or DCBA")
    return data_type, order.upper()


async def _do(link: SerialLine | TcpEndpoint, timeout_s: float,
              work: Callable[[ModbusAccess], Awaitable[T]]) -> T:
    from gateway.modbus.access import ModbusAccess

    _quiet_pymodbus()
    async with ModbusAccess(link, timeout_s=timeout_s) as bus:
        return await work(bus)


def _run_access(link: SerialLine | TcpEndpoint, timeout: float,
                work: Callable[[ModbusAccess], Awaitable[T]]) -> T:
    try:
        return asyncio.run(_do(link, timeout, work))
    except (OSError, ConnectionError) as exc:
        raise _fail(str(exc)) from None


def _shown(value: Any, data_type: str) -> str:
    # a float32 has about 7 significant digits: 230.1, not 230.10000610351562 (as mbpoll)
    if data_type == "float32" and isinstance(value, float):
        return f"{value:.7g}"
    return repr(value)


def _values_of(words: list[int], data_type: str, order: str, count: int) -> list[Any]:
    from gateway.modbus.decode import decode_words, width

    if data_type == "string":
        return [decode_words("string", order, words)]  # type: ignore[arg-type]
    w = width(data_type)  # type: ignore[arg-type]
    return [decode_words(data_type, order, words[i * w:(i + 1) * w])  # type: ignore[arg-type]
            for i in range(count)]


@modbus_app.command("read")
def modbus_read(
    port: str = PORT, baud: str = BAUD, parity: str = PARITY, stopbits: int = STOPBITS,
    unit: int = UNIT, register: str = REGISTER, type_: str = TYPE, order: str = ORDER,
    count: int = typer.Option(1, "--count", min=1, max=2000, help="values to read (registers "
                              "for --type str)"),
    function: int = typer.Option(3, "--function", help="3 holding or 4 input registers"),
    coil: bool = COIL, discrete: bool = DISCRETE, timeout: float = TIMEOUT,
    as_json: bool = typer.Option(False, "--json", help="print the values as JSON"),
) -> None:
    """Read registers, coils or discrete inputs (FC1/2/3/4) and show them decoded."""
    from gateway.modbus.decode import width
    from gateway.modbus.poller import ReadFailure

    address = _address(register)
    if coil and discrete:
        raise _fail("--coil or --discrete, not both")
    if coil or discrete:
        function, n = (1 if coil else 2), count
    else:
        if function not in (3, 4):
            raise _fail("--function: 3 (holding) or 4 (input registers); --coil / --discrete "
                        "for bits")
        data_type, order = _kind(type_, order)
        n = count if data_type == "string" else count * width(data_type)
        if n > 125:
            raise _fail(f"{n} registers: one read carries at most 125")
    _within(address, n)
    link = _link(port, baud, parity, stopbits)
    got = _run_access(link, timeout, lambda bus: bus.read(unit, function, address, n))
    if isinstance(got, ReadFailure):
        raise _fail(f"{link.name} unit {unit}: fc{function} {address:#06x}+{n}: {got.message}")
    if coil or discrete:
        values: list[Any] = [bool(b) for b in got]
        rows = [(address + i, str(int(b)), str(v)) for i, (b, v) in enumerate(zip(got, values,
                                                                                  strict=True))]
    else:
        values = _values_of(got, data_type, order, count)
        w = n if data_type == "string" else width(data_type)
        rows = [(address + i * w, " ".join(f"{x:04x}" for x in got[i * w:(i + 1) * w]),
                 _shown(v, data_type)) for i, v in enumerate(values)]
    if as_json:
        _out.print_json(json.dumps({"unit": unit, "function": function, "address": address,
                                    "raw": got, "values": values}))
        return
    for addr, raw, value in rows:
        _out.print(f"[{addr}] {addr:#06x}: {raw} = {value}", highlight=False)


@modbus_app.command("write")
def modbus_write(
    values: list[str] = typer.Argument(..., help="value(s) to write, of --type (0/1 for coils); "
                                       "negative ones after --"),
    port: str = PORT, baud: str = BAUD, parity: str = PARITY, stopbits: int = STOPBITS,
    unit: int = UNIT, register: str = REGISTER, type_: str = TYPE, order: str = ORDER,
    coil: bool = COIL,
    function: int = typer.Option(None, "--function", help="6 or 16 (default: 6 for one u16/i16 "
                                 "register, else 16); coils: 5 or 15"),
    length: int = typer.Option(None, "--length", min=1, max=123,
                               help="registers of a --type str value"),
    verify: bool = typer.Option(True, help="read the value back afterwards"),
    timeout: float = TIMEOUT,
) -> None:
    """Write registers or coils (FC5/6/15/16), e.g. a factory meter's line settings; read it
    back to check."""
    from gateway.modbus.decode import encode_words
    from gateway.modbus.poller import ReadFailure

    address = _address(register)
    if coil:
        if any(v not in ("0", "1") for v in values):
            # int() would take 5 or -1 as "on": a typo must not switch a relay
            raise _fail(f"coil values are 0 or 1, not {' '.join(values)}")
        words = [int(v) for v in values]
        function = function or (5 if len(words) == 1 else 15)
        if function not in (5, 15) or (function == 5 and len(words) != 1):
            raise _fail("--coil: function 5 (one coil) or 15 (several)")
        read_fc = 1
    else:
        data_type, byte_order = _kind(type_, order)
        try:
            if data_type == "string":
                text = " ".join(values)
                words = encode_words("string", byte_order, text, length or -(-len(text) // 2))
            else:
                words = [w for v in values
                         for w in encode_words(data_type, byte_order, float(v))]
        except ValueError as exc:
            raise _fail(f"value: {exc}") from None
        function = function or (6 if len(words) == 1 else 16)
        if function not in (6, 16) or (function == 6 and len(words) != 1):
            raise _fail("registers: function 6 (one register) or 16 (several)")
        if len(words) > 123:
            raise _fail(f"{len(words)} registers: one write carries at most 123")
        read_fc = 3
    _within(address, len(words))
    link = _link(port, baud, parity, stopbits)

    async def work(bus: Any) -> tuple[Any, Any]:
        failure = await bus.write(unit, function, address, words)
        back = None
        if failure is None and verify:
            back = await bus.read(unit, read_fc, address, len(words))
        return failure, back

    failure, back = _run_access(link, timeout, work)
    if failure is not None:
        raise _fail(f"{link.name} unit {unit}: fc{function} {address:#06x}: {failure.message}")
    _out.print(f"written: unit {unit} fc{function} {address:#06x} <- "
               f"{' '.join(f'{w:04x}' for w in words)}", highlight=False)
    if isinstance(back, ReadFailure):
        _out.print(f"[yellow]read-back failed ({back.message}): if you changed the line "
                   "settings or unit id, talk to it at the new ones[/yellow]")
    elif back is not None and back != words:
        raise _fail(f"read-back differs: {' '.join(f'{w:04x}' for w in back)}")
    elif back is not None:
        _out.print("read back: the same")


# -- gateway config and registration ---------------------------------------------------------


@app.command("config")
def config(
    out: Path = typer.Option(None, "--out", help="gateway.toml to write (default: "
                             "STATE_DIR/gateway.toml)"),
    base: Path = typer.Option(None, help="start from this file (the gateway.toml of `lykta "
                              "provision gateway`: identity, trust, broker)"),
    site: str = typer.Option(None, help="site id (without --base)"),
    gateway: str = typer.Option(None, help="gateway id (without --base; default: the --gateway "
                                "of scan dali)"),
    latitude: float = typer.Option(None, help="cabinet latitude (without --base)"),
    longitude: float = typer.Option(None, help="cabinet longitude (without --base)"),
    controller: str = typer.Option(None, help="controller API URL: register the gateway there"),
    token: str = typer.Option(None, envvar="LYKTA_TOKEN",
                              help="operator API token (or $LYKTA_TOKEN)"),
    state_dir: Path = STATE_DIR,
) -> None:
    """Write the gateway's config from what was found (checked by loading it as the gateway
    does) and, with --controller, register the gateway with the controller's API."""
    from gateway.commissioning.gateway_config import (
        gateway_config_text,
        head,
        write_gateway_config,
    )
    from gateway.commissioning.registration import (
        ControllerUnreachable,
        RegistrationError,
        commissioning_record,
        register,
    )
    from gateway.commissioning.report import build_report
    from gateway.modbus.profile import load_profiles
    from lykta.config import ConfigError

    journal = _load_journal(state_dir)
    args = journal.data["args"]
    if base is not None:
        try:
            base_text = base.read_text(encoding="utf-8")
        except OSError as exc:
            raise _fail(f"{base}: {exc.strerror}") from None
    else:
        gateway = gateway or args.get("gateway")
        missing = [n for n, v in (("--site", site), ("--gateway", gateway),
                                  ("--latitude", latitude), ("--longitude", longitude))
                   if v is None]
        if missing:
            raise _fail(f"without --base give {', '.join(missing)}")
        base_text = head(site=site, gateway=gateway, latitude=latitude, longitude=longitude)
    out = out or state_dir / "gateway.toml"
    try:
        text, notes = gateway_config_text(journal.data, load_profiles(), base=base_text)
        cfg = write_gateway_config(out, text)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    except ConfigError as exc:
        raise _fail(f"the config would not load, not written:\n{exc}") from None
    devices = sum(len(m.devices) for m in cfg.modbus)
    _out.print(f"{out}: gateway {cfg.id} with {len(cfg.dali)} DALI bus(es), "
               f"{len(cfg.all_luminaires())} luminaires, {devices} Modbus devices "
               f"(checked: it loads)")
    for note in notes:
        _out.print(f"[yellow]left out: {note}[/yellow]")
    if controller is None:
        return
    if not token:
        raise _fail("--controller needs --token (or $LYKTA_TOKEN): an operator token")
    report_data = build_report(journal.data, bus=args.get("bus") or NO_DALI)
    try:
        answer = register(controller, token, cfg.id,
                          commissioning_record(journal.data, report_data, text))
    except ControllerUnreachable as exc:
        journal.data["registration"] = {"pending": controller}
        journal.save()
        _out.print(f"[yellow]not registered: {exc}; the config is written — run this command "
                   "again when the controller is reachable[/yellow]")
        # not 0: a script (or a technician's checklist) must see that registering is pending
        raise typer.Exit(REGISTRATION_PENDING) from None
    except RegistrationError as exc:
        raise _fail(f"registration refused: {exc}") from None
    journal.data["registration"] = {"controller": controller, **answer}
    journal.save()
    known = "" if answer.get("known") else (" (not in the applied strategy yet: add its "
                                            "luminaires to the site inventory)")
    _out.print(f"registered {cfg.id} with {controller}{known}")
