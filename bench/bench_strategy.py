"""Strategy engine: compile 48 h for a 40,000-luminaire city; evaluator query latency.

Targets (issue 3): compiling 48 h of programs for 40,000 luminaires in 2,000 DALI groups in
< 10 s; one evaluator level query in < 50 µs. Baselines measured in the same run: JSON-encoding
the compiled programs (msgspec), and one bare astral sun-elevation call.
"""

from __future__ import annotations

import random
import statistics
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from lykta.strategy import Detection, compile_program, evaluate, parse_strategy
from lykta.strategy.astronomy import lit_windows, sun_elevation

ROOT = Path(__file__).resolve().parents[1]
GATEWAYS, BUSES, GROUPS_PER_BUS, PER_GROUP = 100, 10, 2, 20  # 40,000 luminaires, 2,000 groups
START = datetime(2026, 11, 25, 11, tzinfo=UTC)
REPEAT = 3


def city():
    """The Norrköping strategy with a synthetic 40,000-luminaire inventory."""
    doc = tomllib.loads((ROOT / "config/norrkoping/strategy.toml").read_text(encoding="utf-8"))
    doc.pop("inventory")
    design = {"P": "P2", "C": "C1", "M": "M2"}
    zones = list(doc["zones"])
    lums = []
    pos: dict[str, float] = dict.fromkeys(zones, 0.0)
    g = 0
    for gw in range(GATEWAYS):
        for bus in range(BUSES):
            for grp in range(GROUPS_PER_BUS):
                zone = zones[g % len(zones)]
                g += 1
                series = doc["zones"][zone]["safety_floor"][0]
                for k in range(PER_GROUP):
                    pos[zone] += 25.0
                    lums.append({
                        "id": f"L{gw:03d}-{bus}-{grp}-{k:02d}", "zone": zone,
                        "position_m": pos[zone], "gateway": f"gw{gw:03d}", "bus": f"dali{bus}",
                        "short_address": grp * PER_GROUP + k, "group": grp,
                        "design_class": design[series], "rated_power_w": 40.0,
                    })  # fmt: skip
    doc["luminaires"] = lums
    return parse_strategy(doc, "bench")


def main() -> None:
    """Print medians and ratios against the baselines."""
    t0 = time.perf_counter()
    s = city()
    groups = GATEWAYS * BUSES * GROUPS_PER_BUS
    loaded = time.perf_counter() - t0
    print(f"city: {len(s.luminaires)} luminaires, {GATEWAYS} gateways, {groups} groups "
          f"(loaded in {loaded:.1f} s)")  # fmt: skip
    gws = s.gateways()
    compile_times, encode_times = [], []
    for _ in range(REPEAT):
        s._cache.clear()  # cold: night plans and sun crossings recomputed
        lit_windows.cache_clear()
        t0 = time.perf_counter()
        programs = [compile_program(s, gw, START, 48) for gw in gws]
        compile_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        size = sum(len(msgspec.json.encode(p)) for p in programs)
        encode_times.append(time.perf_counter() - t0)
    c, e = statistics.median(compile_times), statistics.median(encode_times)
    points = sum(len(g.points) for p in programs for g in p.groups)
    print(
        f"compile 48 h, all gateways: median {c:.2f} s (target < 10 s) — {points} group "
        f"switch points, {size / 1e6:.1f} MB JSON"
    )
    print(
        f"baseline JSON encode of the same programs: median {e:.3f} s; ratio compile/encode "
        f"{c / e:.1f}"
    )

    rng = random.Random(3)
    ids = [lum.id for lum in s.luminaires]
    queries = [
        (rng.choice(ids), START + timedelta(seconds=rng.randrange(0, 48 * 3600)))
        for _ in range(20000)
    ]
    for lid, at in queries[:200]:  # warm the night plans (a running controller/gateway has them)
        evaluate(s, lid, at)
    presence = {z: [Detection(1000.0, START + timedelta(hours=10))] for z in s.zones}
    results = {}
    for name, kw in (("schedule", {}), ("with presence", {"presence": presence})):
        runs = []
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            for lid, at in queries:
                evaluate(s, lid, at, **kw)
            runs.append((time.perf_counter() - t0) / len(queries) * 1e6)
        results[name] = statistics.median(runs)
    runs = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        for _lid, at in queries:
            sun_elevation(58.59, 16.19, at)
        runs.append((time.perf_counter() - t0) / len(queries) * 1e6)
    base = statistics.median(runs)
    for name, us in results.items():
        print(
            f"evaluate ({name}): median {us:.1f} µs per query (target < 50 µs); "
            f"ratio to one sun-elevation call {us / base:.2f}"
        )
    print(f"baseline astral sun elevation: median {base:.1f} µs per call")
    bench_energy()


def bench_energy() -> None:
    """A year's energy for the Norrköping example (per-zone calendars, a 24-hour zone, events)
    against a brute-force minute integration of the evaluator over one week, measured here."""
    from datetime import date

    from lykta.strategy import estimate_energy, load_strategy, year_energy
    from lykta.strategy.dali_curve import arc_level_to_percent
    from lykta.strategy.energy import luminaire_power_w
    from lykta.strategy.evaluator import unit_target
    from lykta.strategy.schedule import night_plan

    s = load_strategy(ROOT / "config/norrkoping/strategy.toml")
    runs = []
    for _ in range(REPEAT):
        s._cache.clear()
        lit_windows.cache_clear()
        t0 = time.perf_counter()
        r = year_energy(s, 2026)
        runs.append(time.perf_counter() - t0)
    year_s = statistics.median(runs)
    first, last = date(2026, 12, 7), date(2026, 12, 13)  # a December week: the market Saturday
    week = estimate_energy(s, first, last)
    t0 = time.perf_counter()
    brute = 0.0
    by_unit: dict[tuple[str, str], list] = {}
    for lum in s.luminaires:
        by_unit.setdefault((lum.zone, lum.design_class.name), []).append(lum)
    night = first
    while night <= last:
        for (zone, _design), lums in by_unit.items():
            plan = night_plan(s, night, zone)
            t = plan.start
            while t < plan.end:
                tg = unit_target(s, zone, lums[0].design_class, t, overrides=s.overrides,
                                 plan=plan)  # fmt: skip
                out = arc_level_to_percent(tg.level)
                brute += sum(luminaire_power_w(x, out) for x in lums) / 60 / 1000
                t += timedelta(minutes=1)
        night += timedelta(days=1)
    brute_s = time.perf_counter() - t0
    print(
        f"energy, Norrköping year 2026 ({len(s.luminaires)} luminaires, {len(s.zones)} zones): "
        f"median {year_s:.2f} s, {r.kwh:,.0f} kWh ({r.saving_percent:.1f} % below all-on)"
    )
    print(
        f"baseline minute-by-minute integration of one week: {brute_s:.2f} s, {brute:,.1f} kWh "
        f"vs {week.kwh:,.1f} kWh exact ({100 * (week.kwh - brute) / brute:+.3f} %); "
        f"ratio per night exact/minute {(year_s / 365) / (brute_s / 7):.3f}"
    )


if __name__ == "__main__":
    main()
