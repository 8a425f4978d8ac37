"""`lykta strategy`: Lighting strategy: check, preview, energy what-if, compile.

Thin shell over :mod:`lykta.strategy`: reads files, prints, exits 1 on a bad strategy.
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from lykta.contract import encode
from lykta.strategy import (
    CompileError,
    EnergyReport,
    Strategy,
    StrategyError,
    compile_program,
    load_strategy,
    preview_night,
    year_energy,
)
from lykta.strategy.adaptive import zone_steps
from lykta.strategy.preview import plot_night
from lykta.strategy.wallclock import local_to_utc
from lykta.strategy.wallclock import zone as tzone

app = typer.Typer(
    help="Lighting strategy: check, preview, energy what-if, compile.", no_args_is_help=True
)
# wide enough for the energy table when piped to a file or another program
_out = Console(width=None if sys.stdout.isatty() else 160)
_err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def _load(path: Path, *, warn: bool = True) -> Strategy:
    try:
        s = load_strategy(path)
    except StrategyError as e:
        for p in e.problems:
            _err.print(str(p), markup=False, highlight=False)
        _err.print(f"{len(e.problems)} problem(s); nothing changed.", style="red")
        raise typer.Exit(1) from None
    if warn:
        for w in s.warnings:
            _err.print(f"warning: {w}", markup=False, highlight=False)
    return s


def _flow_note(s: Strategy, zones: list[str], flow: float | None) -> None:
    """Say what ``--flow`` does to these zones, so a what-if never reads as more than it is."""
    if flow is None:
        return
    adaptive = [z for z in zones if s.zones[z].adaptive is not None]
    if not adaptive:
        _err.print(f"note: --flow {flow:g}: no zone here adapts to traffic ([zones.KEY.adaptive]);"
                   " nothing changes", markup=False)  # fmt: skip
        return
    for z in adaptive:
        k = zone_steps(s, z, flow)
        _err.print(f"note: {z}: {flow:g} people/h steps its classes {k} down "
                   f"(never below its floor)" if k else f"note: {z}: {flow:g} people/h is above "
                   "its thresholds: no step down", markup=False)  # fmt: skip


def _n(n: int, what: str) -> str:
    return f"{n} {what}{'s' * (n != 1)}"


def _clock(t: datetime, previous: datetime | None) -> str:
    """``HH:MM``, with the zone's abbreviation (CET/CEST) on the first row and where it changes."""
    text = t.strftime("%H:%M")
    if previous is None or previous.utcoffset() != t.utcoffset():
        text += f" {t.tzname() or t.strftime('%z')}"
    return text


@app.command()
def check(file: Path = typer.Argument(..., help="strategy TOML file")) -> None:
    """Validate a strategy file and its inventory; list every problem and exit 1 if any."""
    s = _load(file)
    by_gw: dict[str, int] = {}
    for lum in s.luminaires:
        by_gw[lum.gateway] = by_gw.get(lum.gateway, 0) + 1
    gws = ", ".join(f"{g} ({n})" for g, n in sorted(by_gw.items()))
    if s.warnings:
        typer.echo(f"{len(s.warnings)} warning(s) above: the strategy runs, but not as it reads")
    typer.echo(
        f"{file}: OK — site {s.site.name}, {len(s.zones)} zones, {len(s.profiles)} profiles, "
        f"{_n(len(s.calendars) + bool(s.calendar), 'calendar')}, {_n(len(s.events), 'event')}, "
        f"{len(s.luminaires)} luminaires on {len(by_gw)} gateways: {gws}"
    )


@app.command()
def preview(
    file: Path = typer.Argument(..., help="strategy TOML file"),
    zone: str = typer.Option(..., "--zone", help="zone key"),
    night: str = typer.Option(..., "--date", help="the night's evening date, YYYY-MM-DD"),
    png: Path | None = typer.Option(None, "--png", help="also write a plot to this PNG"),
    as_json: bool = typer.Option(False, "--json", help="print minute rows as JSON"),
    flow: float | None = typer.Option(
        None, "--flow", min=0, max=100_000,
        help="assumed traffic, people per hour, in the zones with [zones.KEY.adaptive] (default: "
        "none counted, no adaptation)",
    ),
) -> None:
    """The night of DATE for ZONE, minute by minute: sun elevation, profile, class, level."""
    s = _load(file)
    if zone not in s.zones:
        _err.print(f"--zone: no zone {zone!r}; zones: {', '.join(s.zones)}", markup=False)
        raise typer.Exit(2)
    try:
        d = date.fromisoformat(night)
    except ValueError:
        _err.print(f"--date: {night!r} is not YYYY-MM-DD", markup=False)
        raise typer.Exit(2) from None
    try:
        rows = preview_night(s, zone, d, flow_per_h=flow)
    except ValueError as e:
        _err.print(f"--zone: {e}", markup=False)
        raise typer.Exit(2) from None
    summary = plot_night(s, zone, d, rows, png, flow_per_h=flow) if png is not None else None
    _flow_note(s, [zone], flow)
    if as_json:
        typer.echo(json.dumps([r.as_json() for r in rows], ensure_ascii=False))
        return
    title = f"{s.site.name} — {zone}, night of {d} ({rows[0].profile})"
    if flow is not None and s.zones[zone].adaptive is not None:
        title += f", traffic {flow:g}/h"
    t = Table(title=title)
    for col in ("local", "sun °", "period", "class", "level", "output %", "source"):
        t.add_column(col)
    prev = None
    shown: datetime | None = None
    for r in rows:
        # print a row where something changes, each full hour and where the offset changes
        key = (r.lit, r.period, r.setting, r.level, r.source)
        dst = shown is not None and shown.utcoffset() != r.local.utcoffset()
        if key != prev or r.local.minute == 0 or dst:
            t.add_row(
                _clock(r.local, shown),
                f"{r.sun_elevation_deg:6.1f}",
                r.period or "-",
                r.setting or "-",
                str(r.level),
                f"{r.output_percent:5.1f}",
                r.source,
            )
            shown = r.local
        prev = key
    _out.print(t)
    if png is not None:
        _out.print(f"{summary}\nplot written to {png}", markup=False)


@app.command()
def energy(
    file: Path = typer.Argument(..., help="strategy TOML file"),
    year: int = typer.Option(..., "--year", min=1901, max=2199, help="calendar year"),
    compare: Path | None = typer.Option(None, "--compare", help="another strategy: what-if"),
    price: float | None = typer.Option(
        None, "--price", min=0, help="SEK per kWh: cost per zone and of the difference"
    ),
    monthly: bool = typer.Option(False, "--monthly", help="also a table of kWh per month"),
    flow: float | None = typer.Option(
        None, "--flow", min=0, max=100_000,
        help="assumed traffic, people per hour, in the zones with [zones.KEY.adaptive] (default: "
        "none counted, no adaptation)",
    ),
) -> None:
    """kWh per zone and total for YEAR, the saving against all-on dusk to dawn, the cost.

    Standby, driver losses and constant-light-output drivers count where the inventory gives
    them (standby_w, driver_loss_w, clo_maintenance_factor)."""
    s = _load(file)
    r = year_energy(s, year, flow_per_h=flow)
    other = year_energy(_load(compare), year, flow_per_h=flow) if compare else None
    _flow_note(s, list(s.zones), flow)
    traffic = f", traffic {flow:g}/h where adaptive" if flow is not None else ""
    t = Table(title=f"{s.site.name}: energy {year} ({r.lit_hours:.0f} lit hours{traffic})")
    cols = ["zone", "luminaires", "kWh", "all-on kWh", "saving %"]
    if price is not None:
        cols.append("cost SEK")
    if other is not None:
        cols += ["compare kWh", "Δ kWh"] + (["Δ SEK"] if price is not None else [])
    for c in cols:
        t.add_column(c, justify="left" if c == "zone" else "right")
    zones = list(dict.fromkeys([*r.zones, *(other.zones if other else [])]))
    for zn in zones + ["TOTAL"]:
        if zn == "TOTAL":
            kwh, base, sav = r.kwh, r.baseline_kwh, r.saving_percent
            n = len(s.luminaires)
            okwh = other.kwh if other else None
        else:
            z = r.zones.get(zn)
            kwh, base = (z.kwh, z.baseline_kwh) if z else (0.0, 0.0)
            sav, n = (z.saving_percent, z.luminaires) if z else (0.0, 0)
            oz = other.zones.get(zn) if other else None
            okwh = oz.kwh if oz else (0.0 if other else None)
        row = [zn, str(n), f"{kwh:,.0f}", f"{base:,.0f}", f"{sav:.1f}"]
        if price is not None:
            row.append(f"{kwh * price:,.0f}")
        if okwh is not None:
            row += [f"{okwh:,.0f}", f"{okwh - kwh:+,.0f}"]
            if price is not None:
                row.append(f"{(okwh - kwh) * price:+,.0f}")
        t.add_row(*row, style="bold" if zn == "TOTAL" else None)
    _out.print(t)
    if monthly:
        _out.print(_monthly_table(s, r, year))
    if price is not None:
        _out.print(
            f"saving against all-on: {(r.baseline_kwh - r.kwh) * price:,.0f} SEK at {price} SEK/kWh"
        )
    if other is not None:
        _out.print(compare_summary(str(compare), str(file), other.kwh, r.kwh, price), markup=False)


def _monthly_table(s: Strategy, r: EnergyReport, year: int) -> Table:
    t = Table(title=f"{s.site.name}: kWh per month {year} (a night counts in its evening's month)")
    t.add_column("month")
    for zn in r.zones:
        t.add_column(zn, justify="right")
    t.add_column("TOTAL", justify="right")
    totals = r.months()
    for m in range(1, 13):
        t.add_row(
            date(year, m, 1).strftime("%b"),
            *(f"{z.months.get(m, 0.0):,.0f}" for z in r.zones.values()),
            f"{totals.get(m, 0.0):,.0f}",
        )
    return t


def compare_summary(new: str, old: str, new_kwh: float, old_kwh: float, price: float | None) -> str:
    """E.g. "new.toml saves 1,109 kWh (2.3 %, 1,331 SEK) against strategy.toml"."""
    delta = old_kwh - new_kwh
    pct = f"{100 * abs(delta) / old_kwh:.1f} %" if old_kwh else "n/a %"
    money = f", {abs(delta) * price:,.0f} SEK" if price is not None else ""
    if round(delta) == 0:
        return f"{new} uses the same energy as {old} (±0 kWh)"
    if delta > 0:
        return f"{new} saves {delta:,.0f} kWh ({pct}{money}) against {old}"
    return f"{new} uses {-delta:,.0f} kWh more ({pct}{money}) than {old}"


@app.command("compile")
def compile_(
    file: Path = typer.Argument(..., help="strategy TOML file"),
    gateway: str = typer.Option(..., "--gateway", help="gateway id"),
    start: str = typer.Option(
        ...,
        "--start",
        help="ISO start, e.g. 2026-11-25T12:00:00+01:00; without an offset it is local time "
        "in the site's time zone ([site] timezone)",
    ),
    hours: float = typer.Option(48.0, "--hours", help="hours the program covers"),
    output: Path | None = typer.Option(None, "-o", "--output", help="write here, not stdout"),
) -> None:
    """Compile the program for GATEWAY as the wire contract's program message (JSON)."""
    s = _load(file)
    try:
        t0 = datetime.fromisoformat(start)
    except ValueError:
        _err.print(f"--start: {start!r} is not an ISO datetime", markup=False)
        raise typer.Exit(2) from None
    if t0.tzinfo is None:
        # the same wall clock as every time in the strategy file (and as preview's --date)
        t0 = local_to_utc(t0, tzone(s.site.timezone))
    try:
        program = compile_program(s, gateway, t0, hours)
    except CompileError as e:
        _err.print(f"compile: {e}", markup=False)
        raise typer.Exit(1) from None
    data = encode(program)
    if output is None:
        typer.echo(data.decode())
    else:
        output.write_bytes(data)
        _err.print(
            f"{output}: program {program.version} for {gateway}: {len(program.groups)} groups, "
            f"{len(program.luminaires)} luminaires, {len(data)} bytes",
            markup=False,
        )
