"""What ``lykta dashboards check`` checks, apart from starting anything.

1. **The SDK's models**: each committed dashboard read by the foundation SDK and written back
   is the same JSON (the SDK drops keys it does not know, so a key Grafana would not know
   shows up as a difference), and it is what the generator builds now (not stale).
2. **Completeness**: every dashboard has the variables site / zone / gateway; every panel a
   description, a unit and thresholds.
3. **The queries**: every panel target and every variable query, macros expanded for a real
   time range, runs on InfluxDB without error, and every panel returns at least one series.
"""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from lykta.cli.dashboard_influxql import expand, register
from lykta.stack import influx_query

REQUIRED_VARIABLES = ("site", "zone", "gateway")
ALL = ".*"  # what a variable set to All expands to (its allValue)

Query = Callable[[str], dict[str, Any]]
"""Runs one InfluxQL statement; returns InfluxDB's ``results[0]`` (``series``, ``error``)."""


def influx_runner(url: str, db: str) -> Query:
    """A :data:`Query` on InfluxDB's ``/query`` (1.x, or 2.x/3.x's v1 compatibility API);
    a refused statement comes back as ``{"error": reason}`` as a panel would show it."""

    def run(q: str) -> dict[str, Any]:
        try:
            result: dict[str, Any] = influx_query(url, q, db)["results"][0]
        except urllib.error.HTTPError as e:
            try:
                return {"error": json.loads(e.read())["error"]}
            except (ValueError, KeyError):
                return {"error": f"HTTP {e.code} {e.reason}"}
        return result

    return run


def to_json(model: Any) -> dict[str, Any]:
    """A foundation-SDK model as plain JSON data (what Grafana reads)."""
    out: dict[str, Any] = json.loads(json.dumps(model, cls=JSONEncoder))
    return out


def render(model: Dashboard) -> str:
    """The committed text of a dashboard (stable: same model, same bytes)."""
    return json.dumps(to_json(model), indent=2, ensure_ascii=False) + "\n"


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where ``a`` and ``b`` first differ (a JSON path), or ``None`` when equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in b:
                return f"{path}.{k} (dropped)"
            if k not in a:
                return f"{path}.{k} (added)"
            if (d := first_difference(a[k], b[k], f"{path}.{k}")) is not None:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path} (length {len(a)} != {len(b)})"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if (d := first_difference(x, y, f"{path}[{i}]")) is not None:
                return d
        return None
    return None if a == b else f"{path} ({a!r} != {b!r})"


def round_trip_problem(data: dict[str, Any]) -> str | None:
    """``None`` if the SDK reads ``data`` and writes it back unchanged, else where it differs."""
    register()
    try:
        back = to_json(Dashboard.from_json(data))
    except (KeyError, TypeError, ValueError) as e:
        return f"the SDK cannot read it: {e!r}"
    return first_difference(data, back, "$")


def panels(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, also those inside rows."""
    for p in data.get("panels") or []:
        if p.get("type") == "row":
            yield from p.get("panels") or []
        else:
            yield p


def completeness_problems(data: dict[str, Any]) -> list[str]:
    """Missing variables, and panels without a description, unit or thresholds."""
    out = []
    names = {v.get("name") for v in data.get("templating", {}).get("list", [])}
    out += [f"no variable {v!r}" for v in REQUIRED_VARIABLES if v not in names]
    for p in panels(data):
        defaults = (p.get("fieldConfig") or {}).get("defaults") or {}
        what = [k for k, ok in (("description", p.get("description")),
                                ("unit", defaults.get("unit")),
                                ("thresholds", (defaults.get("thresholds") or {}).get("steps")),
                                ("query", p.get("targets"))) if not ok]  # fmt: skip
        if what:
            out.append(f"panel {p.get('title')!r} has no {', '.join(what)}")
    return out


def variable_values(data: dict[str, Any]) -> dict[str, str]:
    """Each variable's value as the check expands it: All (``.*``), or a text box's default."""
    out = {}
    for v in data.get("templating", {}).get("list", []):
        if v.get("type") == "query" and v.get("includeAll"):
            out[v["name"]] = v.get("allValue") or ALL
        else:
            q = v.get("query")
            out[v["name"]] = q if isinstance(q, str) else ""
    return out


@dataclass
class PanelResult:
    """One panel's (or variable's) queries: series returned, errors."""

    dashboard: str
    title: str
    queries: int = 0
    series: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No query failed and at least one series came back."""
        return not self.errors and self.series > 0

    def line(self) -> str:
        """One line for the terminal."""
        mark = "ok  " if self.ok else "FAIL"
        detail = "; ".join(self.errors) if self.errors else (
            f"{self.queries} quer{'y' if self.queries == 1 else 'ies'}, {self.series} series"
            + ("" if self.series else " (no data)")
        )  # fmt: skip
        return f"{mark} {self.dashboard} / {self.title}: {detail}"


def _run(result: PanelResult, query: Query, text: str, **expand_args: Any) -> None:
    result.queries += 1
    try:
        q = expand(text, **expand_args)
    except KeyError as e:
        result.errors.append(f"unknown variable ${e.args[0]}")
        return
    try:
        r = query(q)
    except Exception as e:  # noqa: BLE001 - any failure of the query is this panel's result
        result.errors.append(f"{type(e).__name__}: {e}")
        return
    if r.get("error"):
        result.errors.append(f"InfluxDB: {r['error']} in: {q}")
        return
    result.series += len(r.get("series") or [])


def run_queries(
    name: str, data: dict[str, Any], query: Query, *, from_ms: int, to_ms: int
) -> list[PanelResult]:
    """Every variable query and every panel's targets of one dashboard, expanded and run."""
    values = variable_values(data)
    args = {"from_ms": from_ms, "to_ms": to_ms, "variables": values}
    out = []
    for v in data.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            r = PanelResult(name, f"variable ${v['name']}")
            _run(r, query, v.get("query") or "", **args)
            out.append(r)
    for p in panels(data):
        r = PanelResult(name, p.get("title") or "?")
        for t in p.get("targets") or []:
            _run(r, query, t.get("query") or "", **args,
                 max_data_points=int(p.get("maxDataPoints") or 1000))  # fmt: skip
        out.append(r)
    return out
