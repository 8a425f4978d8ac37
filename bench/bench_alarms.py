"""Alarm rules on the ingest hot path, and the cost of signing programs.

1. Readings/s through the alarm engine (``AlarmEngine.on_telemetry``: lamp status, day-burning,
   energy anomaly for every luminaire reading) beside the baseline measured in the same run:
   ingest's own per-reading work, ``telemetry_lines`` (the line-protocol hot path). The ratio
   says how much the alarm hook slows ingest down.
2. Program distribution for Norrköping (4 gateways, 390 luminaires, 48 h): compile vs
   Ed25519 sign vs verify, medians in ms (signing must be noise next to compiling).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.alarms import AlarmEngine, AlarmRules, LuminaireInfo, SiteMap, expected_power_w
from controller.datamodel import telemetry_lines
from lykta.contract import LuminaireReading, TelemetryBatch
from lykta.signing import sign_program, verify_program
from lykta.strategy import compile_program, load_strategy

N = 50_000
LUMINAIRES = 5_000
RUNS = 7
T0 = 1_795_212_000_000  # 2026-11-20 22:00 UTC: dark in Norrköping
STRATEGY = Path(__file__).parents[1] / "config" / "norrkoping" / "strategy.toml"


def _median(fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(RUNS))


def _batches(failing: float) -> tuple[list[TelemetryBatch], SiteMap]:
    """Readings of LUMINAIRES luminaires at night; power within 5 % of what the level draws,
    a fraction ``failing`` with the lamp-failure bit and standby power."""
    rng = random.Random(6)
    site_map = SiteMap(
        58.59,
        16.19,
        {f"L{i:05d}": LuminaireInfo("gw-07", f"z{i % 7}", 40.0, 1 + i % 3)
         for i in range(LUMINAIRES)},
    )  # fmt: skip
    readings = []
    for i in range(N):
        level = rng.choice((0, 170, 200, 254))
        failed = rng.random() < failing
        power = 0.3 if failed else expected_power_w(40.0, level) * rng.uniform(0.95, 1.05)
        readings.append(
            LuminaireReading(
                id=f"L{i % LUMINAIRES:05d}",
                ts=T0 + (i // LUMINAIRES) * 10_000,
                level=level,
                power_w=round(power, 2),
                energy_wh=round(rng.uniform(0, 1e5), 1),
                status=2 if failed else 0,
            )
        )
    batches = [
        TelemetryBatch(seq=i, ts=T0, luminaires=readings[i : i + 100]) for i in range(0, N, 100)
    ]
    return batches, site_map


def main() -> None:
    """Print readings/s medians and the ratio against the line-protocol baseline."""
    for failing in (0.0, 0.2):
        _hot_path(failing)
    _programs()


def _hot_path(failing: float) -> None:
    batches, site_map = _batches(failing)
    placement = {lid: (info.zone, "3") for lid, info in site_map.luminaires.items()}

    def lines() -> float:
        t0 = time.perf_counter()
        for b in batches:
            telemetry_lines("norrkoping", "gw-07", b, placement=placement)
        return N / (time.perf_counter() - t0)

    def alarms() -> float:
        eng = AlarmEngine(AlarmRules(), site_map)
        t0 = time.perf_counter()
        for b in batches:
            eng.on_telemetry("gw-07", b)
        return N / (time.perf_counter() - t0)

    base, alarm = _median(lines), _median(alarms)
    both = 1 / (1 / base + 1 / alarm)
    print(f"{N:,} readings, {failing:.0%} with a failed lamp:")
    print(
        f"  line protocol (ingest baseline) {base:10,.0f} readings/s  {1e6 / base:5.2f} us/reading"
    )
    print(
        f"  alarm engine                    "
        f"{alarm:10,.0f} readings/s  {1e6 / alarm:5.2f} us/reading"
        f"  ({alarm / base:.2f}x the baseline rate)"
    )
    print(f"  lines + alarms                  {both:10,.0f} readings/s")


def _programs() -> None:
    strategy = load_strategy(STRATEGY)
    key = Ed25519PrivateKey.generate()
    start = datetime(2026, 12, 1, 12, tzinfo=UTC)

    def timed(fn: Callable[[], object]) -> float:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1000

    gws = strategy.gateways()
    programs = {gw: compile_program(strategy, gw, start, 48) for gw in gws}
    signed = {gw: sign_program(p, key) for gw, p in programs.items()}
    compile_ms = _median(lambda: timed(lambda: [compile_program(strategy, g, start, 48)
                                                 for g in gws]))  # fmt: skip
    sign_ms = _median(lambda: timed(lambda: [sign_program(p, key) for p in programs.values()]))
    pub = key.public_key()
    verify_ms = _median(lambda: timed(lambda: [verify_program(p, pub) for p in signed.values()]))
    print(f"Norrköping, {len(gws)} gateways, 48 h: compile {compile_ms:.1f} ms, "
          f"sign {sign_ms:.2f} ms ({sign_ms / compile_ms:.3f} of compile), "
          f"verify {verify_ms:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
