"""Commissioning benchmark: DALI bus time and frames to address 64 unaddressed gear.

Ours (``lykta commission scan dali``'s session: existing-address scan, duplicate check,
random address allocation) against python-dali's own ``dali.sequences.Commissioning`` on an
identical simulated bus (same seed: same random addresses), in the same run. Bus time is the
simulator's own account of every frame (IEC 62386-101 timing, ``gateway.dali.timing``), not
the session's, so the baseline does not depend on the code it judges. Goal: <= 130 s where
python-dali needs about 259 s.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from dali.sequences import Commissioning

from fieldsim.dali import GearSpec, SimulatedDaliBus, SimulatedDaliTransport
from gateway.commissioning.journal import Journal
from gateway.commissioning.runner import SequenceRunner
from gateway.commissioning.session import CommissionSession, ScanOptions

GEAR = 64
SEEDS = (1, 2, 3, 4, 5)


def _bus(seed: int) -> SimulatedDaliBus:
    return SimulatedDaliBus([GearSpec(None) for _ in range(GEAR)], now=time.monotonic,
                            seed=seed)


async def _no_wait(_: float) -> None:
    await asyncio.sleep(0)


async def ours(seed: int) -> tuple[float, int, float]:
    """(bus time s, frames, session's own bus-time figure) for one bus."""
    bus = _bus(seed)
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal.create(Path(tmp), {"bus": "bench"})
        session = CommissionSession(SimulatedDaliTransport(bus), journal, sleep_fn=_no_wait)
        report = await session.scan_dali(ScanOptions(control_devices=False, inventory=False))
    shorts = [g.shortaddr for g in bus.gear]
    assert None not in shorts and len(set(shorts)) == GEAR, "not all gear addressed"
    return bus.bus_time_s, bus.frames, report["bus_time_s"]


async def python_dali(seed: int) -> tuple[float, int]:
    """python-dali's Commissioning sequence on the same bus."""
    bus = _bus(seed)
    await SequenceRunner(SimulatedDaliTransport(bus), sleep_fn=_no_wait).run(Commissioning())
    shorts = [g.shortaddr for g in bus.gear]
    assert None not in shorts and len(set(shorts)) == GEAR, "python-dali left gear unaddressed"
    return bus.bus_time_s, bus.frames


def main() -> None:
    """Print bus time and frames per seed, medians and the ratio."""
    print(f"{GEAR} unaddressed gear, bus time as the simulator accounts it")
    print(f"{'seed':>4} {'ours s':>8} {'frames':>7} {'python-dali s':>14} {'frames':>7} "
          f"{'ratio':>6}")
    rows = []
    for seed in SEEDS:
        t, f, counted = asyncio.run(ours(seed))
        bt, bf = asyncio.run(python_dali(seed))
        # the session's own account agrees with the simulator's (+ the RANDOMISE pause)
        assert abs(counted - (t + 0.1)) < 0.01, (counted, t)
        rows.append((t, f, bt, bf))
        print(f"{seed:4} {t:8.1f} {f:7} {bt:14.1f} {bf:7} {t / bt:6.2f}")
    med = [statistics.median(r[i] for r in rows) for i in range(4)]
    print(f"median: ours {med[0]:.1f} s / {med[1]:.0f} frames, python-dali {med[2]:.1f} s / "
          f"{med[3]:.0f} frames; ratio {med[0] / med[2]:.2f} (goal <= 130 s: "
          f"{'met' if med[0] <= 130 else 'NOT met'})")
