"""The demo's site: Norrköping's strategy with an inventory for the demo's simulated cabinets.

Each demo gateway gets one zone of the Norrköping strategy (walking route, park, bus stops,
…) in turn, and its cabinet's luminaires become that zone's path, addressed and grouped exactly
as the simulated DALI bus is. The controller compiles and signs programs for these gateways
from this strategy, as it would for the real city.
"""

from __future__ import annotations

import csv
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from fieldsim.cabinet import SimulatedCabinet

NORRKOPING = Path(__file__).parents[2] / "config" / "norrkoping"
# zones in the order the demo's gateways get them: the safety routes first
ZONE_ORDER = [
    "stromstraket",
    "strompparken",
    "busshallplatser",
    "resecentrum",
    "ektorp",
    "soderleden",
    "kungsgatan",
]


METRES_PER_DEGREE = 111_320.0  # of latitude; of longitude times cos(latitude)


def _on_the_map(like: dict[str, str], row: int, position_m: float) -> dict[str, str]:
    """Latitude/longitude of a demo luminaire: its zone's first luminaire in the example
    inventory, then ``position_m`` eastwards (each further gateway of a zone 30 m north)."""
    if not like.get("latitude") or not like.get("longitude"):
        return {}
    lat = float(like["latitude"]) + 30.0 * row / METRES_PER_DEGREE
    lon = float(like["longitude"]) + position_m / (
        METRES_PER_DEGREE * math.cos(math.radians(lat))
    )
    return {"latitude": f"{lat:.6f}", "longitude": f"{lon:.6f}"}


@dataclass(frozen=True, slots=True)
class DemoGateway:
    """One demo gateway: its id, zone and the luminaire ids on its cabinet's DALI bus."""

    id: str
    zone: str
    bus: str
    luminaires: dict[int, str]  # short address -> luminaire id


def write_demo_site(
    directory: Path, cabinets: list[SimulatedCabinet], gateway_ids: list[str]
) -> tuple[Path, list[DemoGateway]]:
    """Write ``strategy.toml`` + ``inventory.csv`` for the cabinets into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    strategy = directory / "strategy.toml"
    shutil.copyfile(NORRKOPING / "strategy.toml", strategy)  # names inventory.csv beside it
    with open(NORRKOPING / "inventory.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    zone_like: dict[str, dict[str, str]] = {}  # zone -> a row of it (a luminaire to copy)
    for r in rows:
        zone_like.setdefault(r["zone"], r)
    zones = [z for z in ZONE_ORDER if z in zone_like] or sorted(zone_like)
    out_rows, gateways = [], []
    for i, (cab, gw) in enumerate(zip(cabinets, gateway_ids, strict=True)):
        zone = zones[i % len(zones)]
        like = zone_like[zone]
        group_of = {a: g for g, members in cab.groups.items() for a in members}
        n = len(cab.dali_bus.gear)
        lums = {}
        for g in cab.dali_bus.gear:
            a = g.shortaddr
            lums[a] = f"{gw}-L{a:02d}"
            position_m = round(cab.path.length_m * (a + 0.5) / n, 1)
            out_rows.append(
                {
                    "id": lums[a],
                    "zone": zone,
                    "position_m": position_m,
                    "gateway": gw,
                    "bus": cab.dali.name,
                    "short_address": a,
                    "group": group_of.get(a, ""),
                    "design_class": like["design_class"],
                    # the simulated gear's own rating, so a healthy demo raises no energy alarm
                    "rated_power_w": g.rated_power_w,
                    **_on_the_map(like, i, position_m),
                }
            )
        gateways.append(DemoGateway(gw, zone, cab.dali.name, lums))
    with open(directory / "inventory.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(out_rows)
    return strategy, gateways


def write_shared_path_site(
    directory: Path,
    cabinets: list[SimulatedCabinet],
    gateway_ids: list[str],
    *,
    zone: str = "stromstraket",
    spacing_m: float = 25.0,
) -> Path:
    """Like :func:`write_demo_site`, but every cabinet's luminaires continue one path of
    ``zone``, cabinet after cabinet ``spacing_m`` apart (a corridor crossing cabinets, for
    tests and benchmarks). Returns the strategy file."""
    strategy, _ = write_demo_site(directory, cabinets, gateway_ids)
    inv = directory / "inventory.csv"
    with open(inv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(NORRKOPING / "inventory.csv", newline="", encoding="utf-8") as f:
        like = next(r for r in csv.DictReader(f) if r["zone"] == zone)
    offset = {gw: sum(len(c.dali_bus.gear) for c in cabinets[:i])
              for i, gw in enumerate(gateway_ids)}  # fmt: skip
    for r in rows:
        r["zone"], r["design_class"] = zone, like["design_class"]
        r["position_m"] = str(spacing_m * (offset[r["gateway"]] + int(r["short_address"])))
    with open(inv, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return strategy
