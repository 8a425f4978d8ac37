"""Line protocol: Lykta's encoder against ``influxdb_client.Point``, same readings, same run.

Three ways to turn 20 000 luminaire readings (5 tags, 5 fields) into line protocol:

- baseline: ``Point(...).tag(...).field(...).time(ts, MS).to_line_protocol()`` per reading;
- ``encode_line``: the generic fast encoder (same output, proven by the hypothesis test);
- ``telemetry_lines``: the data model's hot path over contract ``TelemetryBatch``es of 100.

Prints the median lines/s of 7 runs of each and the ratio against the baseline.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

from influxdb_client import Point, WritePrecision

from controller.datamodel import telemetry_lines
from controller.lineprotocol import encode_line
from lykta.contract import LuminaireReading, TelemetryBatch

N = 20_000
RUNS = 7
T0 = 1_764_000_000_000


def _readings() -> list[LuminaireReading]:
    rng = random.Random(6)
    return [
        LuminaireReading(
            id=f"L{i % 2000:04d}",
            ts=T0 + i * 10,
            level=rng.randrange(0, 255),
            power_w=round(rng.uniform(0, 60), 2),
            energy_wh=round(rng.uniform(0, 1e5), 1),
            status=rng.choice((0, 0, 0, 2)),
            temperature_c=None if i % 4 else round(rng.uniform(-10, 40), 1),
        )
        for i in range(N)
    ]


def _place(lid: str) -> tuple[str, str]:
    n = int(lid[1:])
    return ("Östra Promenaden" if n % 3 else "Norra Parken", str(n % 16))


def _median_rate(fn: Callable[[], int]) -> float:
    rates = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    """Print lines/s medians and ratios against ``Point``."""
    readings = _readings()
    placement = {r.id: _place(r.id) for r in readings}
    batches = [
        TelemetryBatch(seq=i, ts=T0, luminaires=readings[i : i + 100])
        for i in range(0, N, 100)
    ]

    def tags(r: LuminaireReading) -> dict[str, str | None]:
        zone, group = placement[r.id]
        return {"site": "norrkoping", "gateway": "gw-07", "luminaire": r.id, "zone": zone,
                "group": group}

    def fields(r: LuminaireReading) -> dict:
        return {"level": r.level, "power_w": r.power_w, "energy_wh": r.energy_wh,
                "status": r.status, "temperature_c": r.temperature_c}

    def with_point() -> int:
        out = []
        for r in readings:
            p = Point("luminaire")
            for k, v in tags(r).items():
                p.tag(k, v)
            for k, v in fields(r).items():
                p.field(k, v)
            out.append(p.time(r.ts, WritePrecision.MS).to_line_protocol())
        return len(out)

    def with_encode_line() -> int:
        return len([encode_line("luminaire", tags(r), fields(r), r.ts) for r in readings])

    def with_datamodel() -> int:
        n = 0
        for b in batches:
            n += len(telemetry_lines("norrkoping", "gw-07", b, placement=placement))
        return n

    # Same output first (the benchmark compares equal work).
    sample = batches[0]
    assert telemetry_lines("norrkoping", "gw-07", sample, placement=placement)[:5] == [
        encode_line("luminaire", tags(r), fields(r), r.ts) for r in sample.luminaires[:5]
    ]
    base = _median_rate(with_point)
    print(f"Point.to_line_protocol (baseline): {base:12,.0f} lines/s")
    for name, fn in (("encode_line", with_encode_line), ("telemetry_lines", with_datamodel)):
        rate = _median_rate(fn)
        print(f"{name:33s}: {rate:12,.0f} lines/s  ({rate / base:.1f} x Point)")
    print(f"(median of {RUNS} runs of {N:,} luminaire readings each)")


if __name__ == "__main__":
    main()
