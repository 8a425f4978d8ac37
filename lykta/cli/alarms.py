"""`lykta alarms`: list the controller's alarms, priority 1 (safety routes) first."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from lykta.cli.controller import load, registry

app = typer.Typer(help="Faults and alarms of the site (from the controller's registry).")


def _t(ms: int | None) -> str:
    return "" if ms is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))


@app.callback(invoke_without_command=True)
def alarms(
    config: Path = typer.Option(..., "--config", "-c", help="controller.toml"),
    all_: bool = typer.Option(False, "--all", "-a", help="also cleared alarms"),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table"),
    limit: int = typer.Option(200, help="at most this many"),
) -> None:
    """List open alarms (or all with --all): priority, kind, source, zone, since, message."""
    cfg = load(config)
    rows = registry(cfg).alarms(cfg.site, active=None if all_ else True, limit=limit)
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r, ensure_ascii=False))
        return
    t = Table("id", "prio", "kind", "source", "gateway", "zone", "raised (UTC)", "cleared",
              "ack", "message", title=f"{len(rows)} {'' if all_ else 'open '}alarm(s), "
              f"site {cfg.site}")  # fmt: skip
    for r in rows:
        t.add_row(
            str(r["id"]),
            str(r["priority"]),
            r["kind"],
            r["source"],
            r["gateway"] or "",
            r["zone"] or "",
            _t(r["raised_ts"]),
            _t(r["cleared_ts"]),
            r["acked_by"] or "",
            r["message"],
        )
    Console(width=200).print(t)
