"""`lykta alarms`: list the controller's alarms, priority 1 (safety routes) first.

Reads the registry named by ``--config`` on the controller's machine, or asks a controller's
HTTP API (``--url`` with a viewer token) from anywhere else.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from lykta.cli.controller import load, registry
from lykta.cli.output import error

app = typer.Typer(help="Faults and alarms of the site (from the controller).")
_err = Console(stderr=True)


def _t(ms: int | None) -> str:
    return "" if ms is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))


def _from_api(url: str, token: str | None, all_: bool, limit: int) -> list[dict[str, Any]]:
    if not token:
        error(_err, "--url needs --token (or LYKTA_TOKEN)")
        raise typer.Exit(2)
    params: dict[str, Any] = {"limit": limit}
    if not all_:
        params["active"] = "true"
    try:
        r = httpx.get(
            f"{url.rstrip('/')}/api/v1/alarms",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
    except httpx.HTTPError as e:
        error(_err, f"{url}: {e}")
        raise typer.Exit(1) from None
    if r.status_code != 200:
        detail = r.json().get("detail") if r.headers.get("content-type", "").startswith(
            "application/json") else r.text  # fmt: skip
        error(_err, f"{url}: HTTP {r.status_code}: {detail}")
        raise typer.Exit(1)
    return r.json()


@app.callback(invoke_without_command=True)
def alarms(
    config: Path | None = typer.Option(None, "--config", "-c", help="controller.toml"),
    url: str | None = typer.Option(None, help="a controller's API, e.g. http://host:8080"),
    token: str | None = typer.Option(None, envvar="LYKTA_TOKEN", help="bearer token (viewer)"),
    all_: bool = typer.Option(False, "--all", "-a", help="also cleared alarms"),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table"),
    limit: int = typer.Option(200, help="at most this many"),
) -> None:
    """List open alarms (or all with --all): priority, kind, source, zone, since, message."""
    if url is not None:
        rows, where = _from_api(url, token, all_, limit), url
    elif config is not None:
        cfg = load(config)
        rows = registry(cfg).alarms(cfg.site, active=None if all_ else True, limit=limit)
        where = f"site {cfg.site}"
    else:
        error(_err, "give --config (local registry) or --url (a controller's API)")
        raise typer.Exit(2)
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r, ensure_ascii=False))
        return
    t = Table("id", "prio", "kind", "source", "gateway", "zone", "raised (UTC)", "cleared",
              "ack", "message",
              title=f"{len(rows)} {'' if all_ else 'open '}alarm(s), {where}")  # fmt: skip
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
