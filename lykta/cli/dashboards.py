"""``lykta dashboards build / check / push``: Lykta's Grafana dashboards.

``build`` writes ``dashboards/*.json`` from :mod:`lykta.cli.dashboard_defs`; ``check`` proves
them (SDK round trip, not stale, complete, every query returns data on a real InfluxDB — a
private demo stack when no ``--influx`` is given); ``push`` uploads them to a Grafana.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console

from lykta.cli.dashboard_check import (
    PanelResult,
    completeness_problems,
    first_difference,
    influx_runner,
    panels,
    render,
    round_trip_problem,
    run_queries,
)
from lykta.cli.dashboard_defs import (
    DEFAULT_PRICE_SEK_PER_KWH,
    DEFAULT_TIMEZONE,
    BoardSettings,
    boards,
)
from lykta.cli.output import error
from lykta.stack import LocalStack, StackError, influx_query

DASHBOARDS_DIR = Path(__file__).parents[2] / "dashboards"
DEMO_AT = "2027-01-15T20:00"  # a winter night in Norrköping: dark from the first minute
DEMO_SPEED = 10.0  # 10x: a demo minute every 6 s, and every reading well inside a minute
DEMO_SECONDS = 36.0  # long enough for every measurement and each staged event

console = Console(soft_wrap=True, highlight=False)
app = typer.Typer(help="Grafana dashboards: build the JSON, check it on InfluxDB, push it.",
                  no_args_is_help=True)  # fmt: skip


def _built(settings: BoardSettings) -> dict[str, str]:
    """name -> the text ``build`` writes."""
    return {b.name: render(b.dashboard) for b in boards(settings)}


@app.command()
def build(
    out: Path = typer.Option(DASHBOARDS_DIR, help="Where the JSON goes."),
    price: float = typer.Option(DEFAULT_PRICE_SEK_PER_KWH, min=0,
                                help="Default energy price, SEK/kWh (a dashboard variable)."),
    timezone: str = typer.Option(DEFAULT_TIMEZONE, help="The site's IANA time zone: where a "
                                 "day begins in per-day panels (a dashboard variable)."),
) -> None:  # fmt: skip
    """Write every dashboard's JSON (OUT/NAME.json) from the generator."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        error(console, f"--timezone {timezone!r}: not an IANA time zone (e.g. Europe/Stockholm)")
        raise typer.Exit(2) from None
    out.mkdir(parents=True, exist_ok=True)
    for name, text in _built(BoardSettings(price, timezone)).items():
        path = out / f"{name}.json"
        old = path.read_text() if path.exists() else None
        path.write_text(text)
        console.print(f"{path}: {'unchanged' if old == text else 'written'}")


def _committed_settings(directory: Path) -> BoardSettings:
    """What the committed dashboards were built with (``build --price --timezone``)."""
    found: dict[str, str] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            for v in json.loads(path.read_text()).get("templating", {}).get("list", []):
                if v.get("name") in ("price", "timezone"):
                    found.setdefault(v["name"], str(v["query"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # reported as not the generator's output by the check itself
    try:
        price = float(found.get("price", DEFAULT_PRICE_SEK_PER_KWH))
    except ValueError:
        price = DEFAULT_PRICE_SEK_PER_KWH  # then reported stale against the generator
    return BoardSettings(price, found.get("timezone", DEFAULT_TIMEZONE))


def _static_problems(
    directory: Path, settings: BoardSettings
) -> tuple[dict[str, dict], list[str]]:
    """The committed dashboards, and what is wrong with them without a database."""
    found: dict[str, dict] = {}
    problems: list[str] = []
    for name, text in _built(settings).items():
        path = directory / f"{name}.json"
        if not path.exists():
            problems.append(f"{path}: missing (run: lykta dashboards build)")
            continue
        data = json.loads(path.read_text())
        found[name] = data
        if (d := first_difference(data, json.loads(text), "$")) is not None:
            problems.append(f"{path}: stale against the generator at {d} "
                            "(run: lykta dashboards build)")  # fmt: skip
        if (d := round_trip_problem(data)) is not None:
            problems.append(f"{path}: not the SDK's model (round trip differs at {d})")
        problems += [f"{path}: {p}" for p in completeness_problems(data)]
    return found, problems


def _newest_ms(influx: str, db: str) -> int | None:
    r = influx_query(influx, 'SELECT last("online") FROM "gateway_health"', db)["results"][0]
    series = r.get("series") or []
    return int(series[0]["values"][0][0]) if series else None


def _check_queries(found: dict[str, dict], influx: str, db: str, hours: float) -> bool:
    newest = _newest_ms(influx, db)
    if newest is None:
        error(console, f"{influx} database {db}: no gateway_health yet (is a controller "
                       "writing there?)")  # fmt: skip
        return False
    to_ms = newest + 60_000
    from_ms = to_ms - int(hours * 3_600_000)

    query = influx_runner(influx, db)
    results: list[PanelResult] = []
    for name, data in found.items():
        for r in run_queries(name, data, query, from_ms=from_ms, to_ms=to_ms):
            console.print(r.line(), markup=False)
            results.append(r)
    failed = [r for r in results if not r.ok]
    n_panels = sum(1 for d in found.values() for _ in panels(d))
    if failed:
        console.print(f"{len(found)} dashboards, {n_panels} panels, {len(failed)} failing "
                      "(no data or a query error)", markup=False)  # fmt: skip
        return False
    console.print(f"{len(found)} dashboards, {n_panels} panels, all queries return data")
    return True


def _demo_pipeline(work: Path, seconds: float) -> tuple[str, str]:
    """Run ``lykta demo`` (staged night, accelerated) on a private stack it keeps up;
    return (InfluxDB URL, database)."""
    summary = work / "summary.json"
    argv = [sys.executable, "-m", "lykta.cli.main", "demo", "--at", DEMO_AT, "--speed",
            str(DEMO_SPEED), "--duration", str(seconds), "--gateways", "3", "--luminaires", "8",
            # power from the D4i banks every 12 s (8 luminaires: half the bus time)
            "--energy-interval", "12", "--stage", "--keep-stack", "--data-dir", str(work / "demo"),
            "--summary-json", str(summary)]  # fmt: skip
    console.print(f"running the demo pipeline on a private stack for {seconds:.0f} s (night of "
                  f"{DEMO_AT}, {DEMO_SPEED:g}x, staged faults and an incident) ...")  # fmt: skip
    log = work / "demo.log"
    with open(log, "wb") as out:
        rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=seconds + 120,
                            check=False).returncode  # fmt: skip
    if not summary.exists():
        tail = log.read_text(errors="replace")[-2000:]
        raise StackError(f"the demo failed (exit {rc}); its output ends:\n{tail}")
    s = json.loads(summary.read_text())
    if rc != 0:
        console.print(f"warning: the demo exited {rc}: {s['readings_stored']} of "
                      f"{s['readings_published']} readings stored")  # fmt: skip
    return s["influx_url"], s["database"]


@app.command()
def check(
    influx: str | None = typer.Option(None, "--influx", help="InfluxDB URL holding Lykta's "
                                      "data (default: a private stack with the demo's)."),
    db: str = typer.Option("lykta", "--db", help="Database (2.x/3.x: the DBRP-mapped name)."),
    hours: float = typer.Option(6, min=0.1, help="Time range the queries run over, ending at "
                                "the newest data."),
    directory: Path = typer.Option(DASHBOARDS_DIR, "--dir", help="The committed dashboards."),
    seconds: float = typer.Option(DEMO_SECONDS, min=10, help="Without --influx: how long the "
                                  "demo pipeline runs."),
) -> None:  # fmt: skip
    """Check the dashboards: SDK round trip, up to date, complete, every query has data."""
    found, problems = _static_problems(directory, _committed_settings(directory))
    for p in problems:
        error(console, p)
    if problems:
        raise typer.Exit(1)
    console.print(f"{len(found)} dashboards: the SDK's models, up to date with the generator, "
                  "every panel with description, unit and thresholds")  # fmt: skip
    if influx is not None:
        if urlsplit(influx).scheme not in ("http", "https") or not urlsplit(influx).netloc:
            # urllib would end in a ValueError traceback (no scheme) or open file:// itself
            error(console, f"--influx {influx}: write http(s)://HOST:PORT")
            raise typer.Exit(1)
        try:
            ok = _check_queries(found, influx.rstrip("/"), db, hours)
        except OSError as e:  # refused, unknown host, timeout (urllib's URLError is one)
            error(console, f"cannot reach InfluxDB at {influx}: {getattr(e, 'reason', e)}")
            ok = False
        if not ok:
            raise typer.Exit(1)
        return
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lykta-dashboards-") as tmp:
        work = Path(tmp)
        stack = LocalStack(work / "demo" / "stack")
        try:
            url, demo_db = _demo_pipeline(work, seconds)
            ok = _check_queries(found, url, demo_db, hours)
        except (StackError, subprocess.TimeoutExpired) as e:
            error(console, e)
            ok = False
        finally:
            stack.down()
    console.print(f"(demo pipeline and check: {time.monotonic() - t0:.0f} s)")
    if not ok:
        raise typer.Exit(1)


@app.command()
def push(
    url: str = typer.Option(..., "--url", help="Grafana, e.g. http://grafana:3000"),
    token: str = typer.Option(..., "--token", envvar="GRAFANA_TOKEN",
                              help="Service-account token (Editor; Admin to add the data "
                              "source). Or GRAFANA_TOKEN."),
    folder: str = typer.Option("Lykta", "--folder", help="Folder the dashboards go in."),
    influx_url: str = typer.Option("http://127.0.0.1:8086", help="InfluxDB URL for the data "
                                   "source (when Grafana has none yet), as Grafana reaches it."),
    influx_db: str = typer.Option("lykta", help="Database for the data source."),
    influx_token: str | None = typer.Option(None, envvar="LYKTA_INFLUX_TOKEN",
                                            help="InfluxDB 2.x/3.x token (InfluxQL via DBRP)."),
    directory: Path = typer.Option(DASHBOARDS_DIR, "--dir", help="The dashboards to push."),
) -> None:  # fmt: skip
    """Upload the dashboards to Grafana by uid (idempotent); create folder and data source."""
    from lykta.cli.grafana_push import PushError
    from lykta.cli.grafana_push import push as do_push

    dashboards = {}
    for b in boards():
        path = directory / f"{b.name}.json"
        if not path.exists():
            error(console, f"{path}: missing (run: lykta dashboards build)")
            raise typer.Exit(1)
        try:
            dashboards[b.name] = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            # a hand-edited or truncated file: say which, push none of them
            error(console, f"{path}: not a dashboard JSON file ({e}; run: lykta dashboards build)")
            raise typer.Exit(1) from None
    try:
        changes = do_push(url.rstrip("/"), token, dashboards, folder=folder,
                          influx_url=influx_url, database=influx_db,
                          influx_token=influx_token)  # fmt: skip
    except PushError as e:
        error(console, e)
        raise typer.Exit(1) from None
    for c in changes:
        console.print(c, markup=False)
    changed = sum(not c.endswith("unchanged") for c in changes)
    console.print(f"{changed} change(s) in Grafana at {url}" if changed
                  else f"Grafana at {url} already has these dashboards")  # fmt: skip
