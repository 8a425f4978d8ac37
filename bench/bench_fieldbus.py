"""Field bus efficiency: Modbus read plans and DALI frames per schedule step.

Modbus, per shipped profile (computed from the plans, RTU at 9600 baud 8E1):
  transactions and wire time per poll cycle of the planner's plan, against
  - the theoretical minimum: the cheapest valid plan for the same registers and device limits,
    each transaction costing (13 + 2N) characters plus two 3.5-character silences
    (exhaustive optimum over every gap-fill choice; goal: plan <= 1.1 x minimum),
  - the adjacency floor: as if all wanted registers were contiguous (not reachable; shown to
    say how scattered a register map is),
  - one register per request and one value per request (goal: >= 5 x fewer transactions).
Measured: median poll-cycle time of the SDM630 plan against one-value-per-request polling, over
a real pymodbus RTU server on a pseudo-terminal line that takes the real character time.

DALI: for the Norrköping example strategy, frames per schedule step (all gateways, one night)
with the group planner against one DAPC per changed luminaire, and the bus time that costs.
Measured: latency of a presence boost (one group frame) on a simulated bus with real wire time,
idle against while D4i bank reads run in the background at the default 50 % budget.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from fieldsim.modbus import ModbusRtuSimulator, SimulatedModbusDevice
from gateway.dali.planner import BusLayout, plan_levels
from gateway.dali.timing import COMMAND_S
from gateway.modbus.planner import plan_profile
from gateway.modbus.poller import ModbusDevice, ModbusPoller, SerialLine
from gateway.modbus.profile import DeviceProfile, load_profiles
from gateway.modbus.wire import char_time_s, minimum_chars, plan_chars, read_chars

ROOT = Path(__file__).resolve().parents[1]


def brute_force_min_chars(profile: DeviceProfile, max_gap: int = 125) -> int:
    """The least wire time (characters) of any valid plan, by trying every way to cut the
    profile's sorted spans into requests: independent of the planner it judges. Frame sizes
    come from the RTU layout (8-byte request, 5 + 2N reply, two 3.5-character silences)."""
    import itertools

    spans = sorted({(r.function, r.address, r.address + r.count - 1) for r in profile.registers})
    best = None
    for cuts in itertools.product([False, True], repeat=len(spans) - 1):
        groups = [[spans[0]]]
        for span, cut in zip(spans[1:], cuts, strict=True):
            (groups.append([span]) if cut else groups[-1].append(span))
        chars = 0
        for g in groups:
            lo, hi = g[0][1], max(s[2] for s in g)
            wanted = sorted({a for s in g for a in range(s[1], s[2] + 1)})
            if len({s[0] for s in g}) > 1 or hi - lo + 1 > profile.max_registers \
                    or any(b - a - 1 > max_gap for a, b in itertools.pairwise(wanted)) \
                    or any(f.function == g[0][0] and lo <= f.end and f.start <= hi
                           for f in profile.forbidden):
                break
            chars += 8 + 5 + 2 * (hi - lo + 1) + 7
        else:
            best = chars if best is None else min(best, chars)
    assert best is not None
    return best


def modbus_plans() -> None:
    """Print plan figures for every shipped profile."""
    char_s = char_time_s(9600, "E", 1)
    print(f"Modbus RTU 9600 8E1, {char_s * 1e3:.3f} ms per character")
    print(f"{'profile':16} {'values':>6} {'tx':>3} {'regs':>4} {'wire ms':>8} {'min ms':>7} "
          f"{'ratio':>6} {'floor ms':>8} {'tx 1reg':>7} {'x':>5} {'tx 1val':>7} {'x':>5}")
    for name, p in load_profiles().items():
        plan = plan_profile(p)
        best_chars = brute_force_min_chars(p)
        wanted = sum(r.count for r in p.registers)
        per_reg = wanted
        per_val = len(p.registers)
        print(f"{name:16} {len(p.registers):6} {len(plan):3} {sum(r.count for r in plan):4} "
              f"{plan_chars(plan) * char_s * 1e3:8.1f} {best_chars * char_s * 1e3:7.1f} "
              f"{plan_chars(plan) / best_chars:6.2f} "
              f"{minimum_chars(wanted, p.max_registers) * char_s * 1e3:8.1f} "
              f"{per_reg:7} {per_reg / len(plan):5.1f} {per_val:7} {per_val / len(plan):5.1f}")
    # the architecture's example: 10 devices x 20 contiguous registers
    block = 10 * read_chars(20) * char_s
    single = 10 * 20 * read_chars(1) * char_s
    print(f"10 devices x 20 registers: {block * 1e3:.0f} ms as blocks, {single * 1e3:.0f} ms "
          f"one register per request ({single / block:.1f} x)")


async def _poll_cycle_s(profile: DeviceProfile, runs: int, baudrate: int) -> float:
    device = SimulatedModbusDevice(profile, 1, {r.field: 1.0 for r in profile.registers})
    times = []
    async with ModbusRtuSimulator([device], baudrate=baudrate, wire_time=True) as sim, \
            ModbusPoller(SerialLine(sim.client_port, baudrate, "N"),
                         [ModbusDevice("d", 1, profile)], timeout_s=1.0, retries=0) as poller:
        await poller.poll_device("d")  # warm up: connection, imports
        for _ in range(runs):
            t0 = time.perf_counter()
            messages = await poller.poll_device("d")
            times.append(time.perf_counter() - t0)
            assert any(getattr(m, "values", None) for m in messages), messages
    return statistics.median(times)


def modbus_measured(runs: int = 5, baudrate: int = 19200) -> None:
    """Median poll-cycle time over a pty line with real character timing."""
    sdm630 = load_profiles()["eastron_sdm630"].model_copy(update={"pause_s": 0.0})
    per_value = sdm630.model_copy(update={"max_registers": 2, "max_gap": 0})
    planned = asyncio.run(_poll_cycle_s(sdm630, runs, baudrate))
    baseline = asyncio.run(_poll_cycle_s(per_value, runs, baudrate))
    print(f"SDM630 poll cycle over RTU pty at {baudrate} 8N1 (median of {runs}): planned "
          f"{planned * 1e3:.1f} ms, one value per request {baseline * 1e3:.1f} ms "
          f"-> {baseline / planned:.1f} x faster")


def dali_steps() -> None:
    """Frames per schedule step for the Norrköping example."""
    from lykta.strategy import compile_program, load_strategy
    from lykta.strategy.execution import program_target

    strategy = load_strategy(ROOT / "config" / "norrkoping" / "strategy.toml")
    start = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    planned_frames: list[int] = []
    single_frames: list[int] = []
    plan_us: list[float] = []
    luminaires = 0
    for gw in strategy.gateways():
        program = compile_program(strategy, gw, start, 24)
        luminaires += len(program.luminaires)
        instants = sorted({p.ts for g in program.groups for p in g.points}
                          | {p.ts for lum in program.luminaires for p in lum.points})
        buses: dict[str, list] = {}
        for lum in program.luminaires:
            buses.setdefault(lum.bus, []).append(lum)
        current: dict[str, dict[int, int | None]] = {
            b: {lum.short_address: None for lum in lums} for b, lums in buses.items()}
        for ts in instants:
            if not program.valid_from <= ts < program.valid_until:
                continue
            step_planned = step_single = 0
            for bus, lums in buses.items():
                groups: dict[int, set[int]] = {}
                for lum in lums:
                    if lum.group is not None:
                        groups.setdefault(lum.group, set()).add(lum.short_address)
                layout = BusLayout.of({lum.short_address for lum in lums}, groups)
                wanted = {lum.short_address: program_target(program, ts, luminaire=lum.id).level
                          for lum in lums}
                t0 = time.perf_counter()
                frames = plan_levels(layout, current[bus], wanted)
                plan_us.append((time.perf_counter() - t0) * 1e6)
                step_planned += len(frames)
                step_single += sum(1 for a, lvl in wanted.items() if current[bus][a] != lvl)
                current[bus].update(wanted)
            if step_single:
                planned_frames.append(step_planned)
                single_frames.append(step_single)
    print(f"Norrköping: {len(strategy.gateways())} gateways, {luminaires} luminaires, "
          f"{len(planned_frames)} gateway schedule steps in 24 h "
          "(incl. each gateway's first, which sets all)")
    print(f"frames per step: planned median {statistics.median(planned_frames):.0f}, max "
          f"{max(planned_frames)}; one DAPC per luminaire median "
          f"{statistics.median(single_frames):.0f}, max {max(single_frames)}")
    total_p, total_s = sum(planned_frames), sum(single_frames)
    print(f"frames in 24 h: planned {total_p}, per luminaire {total_s} -> "
          f"{total_s / total_p:.1f} x fewer; bus time {total_p * COMMAND_S:.2f} s vs "
          f"{total_s * COMMAND_S:.2f} s (at {COMMAND_S * 1e3:.1f} ms per command)")
    print(f"planner time per bus and step: median {statistics.median(plan_us):.0f} µs")


async def _boost_latencies(background: bool, runs: int) -> list[float]:
    from fieldsim.dali import SimulatedDaliBus, SimulatedDaliTransport
    from gateway.dali.driver import DaliLuminaireDriver, Luminaire

    bus = SimulatedDaliBus(16, groups={0: range(8), 1: range(8, 16)}, now=time.monotonic)
    driver = DaliLuminaireDriver(
        SimulatedDaliTransport(bus, wire_time=True),
        [Luminaire(f"L{i}", i, frozenset({0 if i < 8 else 1})) for i in range(16)])
    task = asyncio.create_task(driver.run_energy_reads(0)) if background else None
    latencies = []
    try:
        for i in range(runs):
            await asyncio.sleep(0.13)  # land at varying points of the background reads
            t0 = time.perf_counter()
            await driver.set_group_level(0, 254 if i % 2 else 100)
            latencies.append(time.perf_counter() - t0)
    finally:
        if task is not None:
            task.cancel()
    return latencies


def dali_presence_latency(runs: int = 15) -> None:
    """Presence boost latency with and without background bank reads."""
    idle = asyncio.run(_boost_latencies(False, runs))
    busy = asyncio.run(_boost_latencies(True, runs))
    print(f"presence boost (1 group frame, real wire time): idle median "
          f"{statistics.median(idle) * 1e3:.1f} ms; during D4i bank reads median "
          f"{statistics.median(busy) * 1e3:.1f} ms, max {max(busy) * 1e3:.1f} ms "
          f"(ratio {statistics.median(busy) / statistics.median(idle):.2f}; "
          f"a bank read of one luminaire is ~700 ms)")


def main() -> None:
    """Run all field bus benchmarks."""
    modbus_plans()
    modbus_measured()
    dali_steps()
    dali_presence_latency()


if __name__ == "__main__":
    main()
