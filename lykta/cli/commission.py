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
  and identify them against the shipped profiles;
- ``modbus read|write``: ad-hoc register access, as mbpoll gives.

State lives in ``--state-dir`` (default ``./commissioning``): the journal, the report, the CSV.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

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

    if not args.get("plan"):
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

    if (state_dir / JOURNAL_NAME).exists() and not restart:
        raise _fail(f"{state_dir} holds a commissioning run: `lykta commission resume` "
                    "continues it, --restart discards it")
    args = {"port": port, "transport": transport, "bus": bus, "readdress": readdress,
            "devices": devices, "inventory": read_inventory,
            "plan": str(plan) if plan else None, "gateway": gateway}
    Journal.create(state_dir, args)
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
           port: str = typer.Option(None, help="the port, if it changed since the run began")
           ) -> None:
    """Continue an interrupted `scan dali` where it stopped."""
    from gateway.commissioning.journal import Journal, JournalError

    try:
        journal = Journal.load(state_dir)
    except JournalError as exc:
        raise _fail(str(exc)) from None
    args = dict(journal.data["args"])
    if port:
        args["port"] = port
        journal.data["args"] = args
        journal.save()
    try:
        report = asyncio.run(_run_scan(state_dir, args))
    except KeyboardInterrupt:
        raise _interrupted(state_dir) from None
    _summary(report, state_dir)


def _session_op(state_dir: Path, op: Any) -> Any:
    from gateway.commissioning.journal import Journal, JournalError
    from gateway.commissioning.session import CommissionSession

    try:
        journal = Journal.load(state_dir)
    except JournalError as exc:
        raise _fail(f"{exc} (run `lykta commission scan dali` first)") from None
    args = journal.data["args"]

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
    result = build_report(journal.data, plan=_plan(args), bus=args["bus"])
    _write_outputs(state_dir, result, args)
    _summary(result, state_dir)
