"""The commissioning report (pure): what was found against what the site plan expects.

:func:`build_report` turns the journal's results into a JSON-able dict; :func:`render_html`
renders it as one self-contained page a technician can open on a phone or print.
"""

from __future__ import annotations

import csv
import html
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class PlannedLuminaire:
    """One row of the site plan (inventory CSV) for this gateway's bus."""

    id: str
    zone: str
    short_address: int | None
    group: int | None
    luminaire_id: int | None = None
    position_m: float | None = None


def _num(row: dict[str, str], key: str, kind: type = int) -> Any:
    value = (row.get(key) or "").strip()
    return kind(value) if value else None


def load_plan(path: Path, *, gateway: str | None = None, bus: str | None = None
              ) -> list[PlannedLuminaire]:
    """The rows of inventory CSV ``path`` for ``gateway``/``bus`` (columns ``id``, ``zone``,
    ``gateway``, ``bus``, ``short_address``, ``group``; optional ``luminaire_id`` = the D4i
    luminaire id from memory bank 1, ``position_m``). Errors name the file and row."""
    out: list[PlannedLuminaire] = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the site plan ({exc.strerror})") from None
    for n, row in enumerate(csv.DictReader(text.splitlines(),
                                           delimiter=";" if ";" in text[:200] else ","), 2):
        if gateway and row.get("gateway") not in (None, "", gateway):
            continue
        if bus and row.get("bus") not in (None, "", bus):
            continue
        try:
            out.append(PlannedLuminaire(
                id=row["id"].strip(), zone=(row.get("zone") or "").strip(),
                short_address=_num(row, "short_address"), group=_num(row, "group"),
                luminaire_id=_num(row, "luminaire_id"),
                position_m=_num(row, "position_m", float)))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path}: row {n}: {exc}") from None
    return out


def match_plan(found: dict[int, dict[str, Any]], plan: list[PlannedLuminaire]
               ) -> tuple[dict[int, PlannedLuminaire], list[PlannedLuminaire], list[int]]:
    """Which found gear (short address -> info) is which planned luminaire: by D4i luminaire
    id where the plan has one, else by short address. Returns (matches, missing, unexpected
    short addresses)."""
    by_lum_id = {info.get("luminaire_id"): a for a, info in found.items()
                 if info.get("luminaire_id") is not None}
    matches: dict[int, PlannedLuminaire] = {}
    missing: list[PlannedLuminaire] = []
    for p in plan:
        short = by_lum_id.get(p.luminaire_id) if p.luminaire_id is not None else \
            (p.short_address if p.short_address in found else None)
        if short is None or short in matches:
            missing.append(p)
        else:
            matches[short] = p
    unexpected = sorted(a for a in found if a not in matches) if plan else []
    return matches, missing, unexpected


def build_report(journal: dict[str, Any], *, plan: list[PlannedLuminaire] | None = None,
                 bus: str = "dali", cost: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report of a commissioning run from its journal data."""
    steps = journal["steps"]
    units = journal["units"]
    gear = {int(a): info for a, info in units["gear"].items()}
    devices = {int(a): info for a, info in units["device"].items()}
    matches, missing, unexpected = match_plan(gear, plan or [])
    duplicates = steps.get("duplicates", {}).get("resolved", [])
    selftest = steps.get("selftest", {}).get("results", {})
    firmware = Counter(str(i.get("firmware")) for i in gear.values() if i.get("firmware"))
    cost = cost or journal.get("cost", {})
    return {
        "bus": bus,
        "gear_found": len(gear),
        # gear without a short address that got one (duplicates moved are counted there)
        "addressed": len([a for a in journal["assigned"]["gear"]
                          if a.get("short_address") is not None and a.get("why") == "new"]),
        "kept": len(steps.get("existing_gear", {}).get("present", [])),
        "unaddressable": len([a for a in journal["assigned"]["gear"]
                              if a.get("short_address") is None]),
        "duplicates_resolved": duplicates,
        "control_devices": [{"short_address": a, **info} for a, info in sorted(devices.items())],
        "gear": [{"short_address": a, **info,
                  **({"plan_id": matches[a].id, "zone": matches[a].zone} if a in matches else {})}
                 for a, info in sorted(gear.items())],
        "missing": [{"id": p.id, "zone": p.zone, "short_address": p.short_address,
                     "luminaire_id": p.luminaire_id} for p in missing],
        "unexpected": [{"short_address": a, **gear[a]} for a in unexpected],
        "selftest_failed": sorted(a for a, r in selftest.items() if not r.get("ok")),
        "selftest": selftest,
        "firmware_versions": dict(firmware),
        "bus_time_s": round(float(cost.get("bus_time_s", 0.0)), 3),
        "frames": int(cost.get("frames", 0)),
        "steps": cost.get("by_step", {}),
        "interrupted": journal.get("interrupted", 0),
        **modbus_report(journal),
    }


def modbus_report(journal: dict[str, Any]) -> dict[str, Any]:
    """``modbus_devices`` (line, unit, settings, proposed profile, how it was decided, serial
    number, the runner-up) and ``modbus_lines`` (settings tried, requests, time) of the
    journal's Modbus scans."""
    devices = []
    lines = []
    for port, rec in sorted(journal.get("modbus", {}).get("lines", {}).items()):
        for _, d in sorted(rec["found"].items(), key=lambda kv: int(kv[0])):
            verdicts = d.get("verdicts", [])
            runner_up = next((v for v in verdicts if v["profile"] != d.get("profile")), None)
            devices.append({"line": port, "unit": d["unit"], "settings": d["settings"],
                            "profile": d.get("profile"), "by": d.get("by"),
                            "reason": d.get("reason"), "serial_number": d.get("serial_number"),
                            "runner_up": (f"{runner_up['profile']} ({runner_up['score']})"
                                          if runner_up else None)})
        lines.append({"line": port, "settings_tried": rec["done"],
                      "settings_refused": sorted(rec.get("refused", {})),
                      "ids": len(rec["args"]["ids"]), "found": len(rec["found"]),
                      "requests": rec["requests"], "time_s": rec["elapsed_s"],
                      "finished": rec["finished"]})
    return {"modbus_devices": devices, "modbus_lines": lines}


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>"
                                    for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(report: dict[str, Any], *, title: str = "Commissioning report") -> str:
    """A self-contained HTML page of ``report``."""
    summary = [
        ("Control gear found", report["gear_found"]),
        ("Addressed now", report["addressed"]),
        ("Existing addresses kept", report["kept"]),
        ("Duplicates resolved", len(report["duplicates_resolved"])),
        ("Control devices", len(report["control_devices"])),
        ("Missing (in plan, not found)", len(report["missing"])),
        ("Unexpected (found, not in plan)", len(report["unexpected"])),
        ("Failed self-tests", len(report["selftest_failed"])),
        ("DALI bus time", f"{report['bus_time_s']:.1f} s in {report['frames']} frames"),
        ("Modbus devices found", len(report.get("modbus_devices", []))),
        ("Modbus devices without a profile",
         len([d for d in report.get("modbus_devices", []) if not d["profile"]])),
    ]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in summary)
    failed = [{"short_address": a, **report["selftest"].get(a, {})}
              for a in report["selftest_failed"]]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:sans-serif;margin:1em;max-width:60em}}table{{border-collapse:collapse;
margin-bottom:1em}}td,th{{border:1px solid #999;padding:.2em .5em;text-align:left}}
.bad{{color:#b00}}</style></head><body>
<h1>{html.escape(title)}{' — bus ' + html.escape(report['bus']) if report['bus'] else ''}</h1>
<table>{rows}</table>
<h2 class="bad">Missing luminaires</h2>{_table(report['missing'],
                                               ['id', 'zone', 'short_address', 'luminaire_id'])}
<h2 class="bad">Unexpected luminaires</h2>{_table(report['unexpected'],
                                                  ['short_address', 'luminaire_id', 'gtin'])}
<h2>Duplicates resolved</h2>{_table(report['duplicates_resolved'],
                                    ['short_address', 'units', 'moved_to'])}
<h2 class="bad">Failed self-tests</h2>{_table(failed, ['short_address', 'problems'])}
<h2>Control gear</h2>{_table(report['gear'], ['short_address', 'plan_id', 'zone',
                                              'luminaire_id', 'gtin', 'year', 'week',
                                              'rated_power_w', 'light_output_lm',
                                              'device_types', 'firmware'])}
<h2>Control devices (DALI-2 sensors)</h2>{_table(report['control_devices'],
                                                 ['short_address', 'instances', 'firmware'])}
<h2>Firmware versions</h2>{_table([{'version': k, 'count': v}
                                   for k, v in report['firmware_versions'].items()],
                                  ['version', 'count'])}
<h2>Modbus devices</h2>{_table(report.get('modbus_devices', []),
                                ['line', 'unit', 'settings', 'profile', 'by', 'reason',
                                 'serial_number', 'runner_up'])}
<h2>Modbus lines scanned</h2>{_table(report.get('modbus_lines', []),
                                     ['line', 'settings_tried', 'settings_refused', 'ids',
                                      'found', 'requests', 'time_s', 'finished'])}
<h2>Bus time per step</h2>{_table([{'step': k, **v} for k, v in report['steps'].items()],
                                  ['step', 'frames', 'bus_time_s'])}
</body></html>
"""
