"""The second section of ``./run.sh bench presence`` — a corridor across two cabinets,
through the broker: presence event on gateway A's bus -> first corridor frame on gateway B's
bus.

Two gateways (``gateway.daemon.Gateway``: real field readers, executors and MQTT links) drive
two simulated cabinets whose luminaires continue one path of Strömstråket; both DALI buses
take the real wire time of every frame and both telemetry loops read every luminaire's state
back to back (interval 0), as in ``bench_presence``'s loaded run. A Part 303 occupancy event
is put on A's bus at A's sensor next to the boundary; its corridor holds luminaires of both
cabinets. Observers on the simulated buses themselves stamp the first DAPC that reaches a
corridor luminaire on A's bus (the local reaction) and on B's bus (the neighbour's, after A's
live ``presence`` event went through Mosquitto to B's link and executor).

Printed, for the same detections: p50 / p99 / max of the cross-cabinet latency and of A's
local one, and as baselines measured in the same run: the broker hop alone (one QoS 1
publish -> delivery between two plain clients on the same broker) and the ratio cross/local.
The goal is p99 <= 150 ms across the two gateways.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from dali.address import GearBroadcast, GearGroup, GearShort
from dali.command import Command
from dali.gear.general import DAPC

from fieldsim.cabinet import SimulatedCabinet
from gateway.daemon import Gateway
from gateway.program_runner import PresenceSensor, ProgramRunner
from lykta.cli.demo_site import write_shared_path_site
from lykta.clock import ScaledClock
from lykta.config import MqttConfig
from lykta.contract import encode
from lykta.mqtt import make_client
from lykta.signing import sign_program
from lykta.stack import LocalStack
from lykta.strategy import Strategy, compile_program, load_strategy, presence_corridor

LUMINAIRES = 12  # per cabinet
SPACING_M = 25.0
SAMPLES = 60
ZONE = "stromstraket"
SITE = "bench"
A, B = "gwA", "gwB"
NIGHT = dt.datetime(2027, 1, 15, 0, 30, tzinfo=dt.UTC)  # "late" period: boost > schedule


def pct(xs: list[float], q: float) -> float:
    """The ``q`` quantile of ``xs`` (nearest rank)."""
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def observer(cab: SimulatedCabinet, target: set[int], hits: list[float],
             luminaires: int = LUMINAIRES) -> Callable:
    """A bus frame listener stamping the first DAPC that reaches a gear in ``target`` (read at
    each frame, so the caller may refill it between samples) into ``hits``."""

    def observe(frame) -> None:  # noqa: ANN001
        if hits:
            return
        cmd = Command.from_frame(frame)
        if not isinstance(cmd, DAPC):
            return
        d = cmd.destination
        if isinstance(d, GearShort):
            reached = {d.address}
        elif isinstance(d, GearGroup):
            reached = set(cab.groups.get(d.group, ()))
        elif isinstance(d, GearBroadcast):
            reached = set(range(luminaires))
        else:
            return
        if reached & target:
            hits.append(time.monotonic())

    return observe


@contextlib.asynccontextmanager
async def _gateway(
    gw: str, cab: SimulatedCabinet, strategy: Strategy, key: Ed25519PrivateKey,
    mqtt: MqttConfig, clock: ScaledClock, tmp: Path,
) -> AsyncIterator[tuple[Gateway, ProgramRunner, list[PresenceSensor]]]:  # fmt: skip
    compiled = compile_program(strategy, gw, NIGHT - dt.timedelta(hours=2), 12)
    program = sign_program(msgspec.structs.replace(compiled, site=SITE), key)
    reader = cab.field_reader(interval_s=1.0, energy_interval_s=10_000, prefix=f"{gw}-L",
                              wall_clock=clock.seconds)  # fmt: skip
    async with reader:
        driver = reader.drivers[0]
        base = SPACING_M * (LUMINAIRES if gw == B else 0)
        last = base + SPACING_M * (LUMINAIRES - 1)
        sensors = [PresenceSensor(cab.dali.name, 0, ZONE, base),
                   PresenceSensor(cab.dali.name, 1, ZONE, last)]  # fmt: skip
        runner = ProgramRunner(
            site=SITE, gateway=gw, drivers={cab.dali.name: driver},
            luminaires={lum.id: cab.dali.name for lum in driver.luminaires},
            state_dir=tmp / gw / "program", public_key=key.public_key(),
            latitude=58.59, longitude=16.19, presence_sensors=sensors, clock=clock.now_ms,
        )  # fmt: skip
        await runner.on_program(program, encode(program))
        async with Gateway(SITE, gw, mqtt, reader, tmp / gw / "gw", telemetry_interval_s=0.0,
                           runner=runner, clock=clock.now_ms) as g:  # fmt: skip
            yield g, runner, sensors


async def _settled(*runners: ProgramRunner) -> None:
    while any(r.steps == 0 or any(v != "program" for v in r.sources.values()) for r in runners):
        await asyncio.sleep(0.05)


async def _cross(mqtt: MqttConfig, tmp: Path) -> tuple[list[float], list[float], dict]:
    clock = ScaledClock(int(NIGHT.timestamp() * 1000))
    cabs = [SimulatedCabinet(LUMINAIRES, sensors=2, pedestrians_per_hour=0,
                             cyclists_per_hour=0, wire_time=True, now=clock.seconds, seed=i)
            for i in range(2)]  # fmt: skip
    async with cabs[0], cabs[1]:
        strategy = load_strategy(
            write_shared_path_site(tmp / "site", cabs, [A, B], zone=ZONE, spacing_m=SPACING_M)
        )
        key = Ed25519PrivateKey.generate()
        async with (
            _gateway(A, cabs[0], strategy, key, mqtt, clock, tmp) as (ga, ra, sensors),
            _gateway(B, cabs[1], strategy, key, mqtt, clock, tmp) as (gb, rb, _),
        ):
            boundary = sensors[1]
            assert ra.program is not None and rb.program is not None
            at = boundary.position_m
            local = {x.short_address for x, _ in presence_corridor(ra.program, ZONE, at)}
            remote = {x.short_address for x, _ in presence_corridor(rb.program, ZONE, at)}
            assert local and remote, "the boundary corridor must cross the cabinets"
            await _settled(ra, rb)
            await asyncio.sleep(3.0)  # the first fade-time settings are done
            while not (ga.link.connected.is_set() and gb.link.connected.is_set()):
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # B's subscription to A's events is in place
            cross: list[float] = []
            here: list[float] = []
            for i in range(SAMPLES):
                hits_a: list[float] = []
                hits_b: list[float] = []
                cabs[0].dali_bus.frame_listener = observer(cabs[0], local, hits_a)
                cabs[1].dali_bus.frame_listener = observer(cabs[1], remote, hits_b)
                await asyncio.sleep(0.6 + (i % 7) * 0.013)
                t0 = time.monotonic()
                cabs[0].dali_bus.occupancy_event(boundary.short_address)
                deadline = t0 + 5
                while not (hits_a and hits_b) and time.monotonic() < deadline:
                    await asyncio.sleep(0.001)
                if hits_b:
                    cross.append((hits_b[0] - t0) * 1000)
                if hits_a:
                    here.append((hits_a[0] - t0) * 1000)
                await asyncio.sleep(0.3)  # the corridor's frames are out
                for r in (ra, rb):
                    r.end_presence_holds()
                await _settled(ra, rb)
            for cab in cabs:
                cab.dali_bus.frame_listener = None
            stats = {
                "missed": SAMPLES - len(cross),
                "neighbour": dict(rb.neighbour_stats),
                "live_published": ga.link.stats["live_published"],
                "readings": ga.readings_read + gb.readings_read,
            }
    return cross, here, stats


async def _broker_hop(mqtt: MqttConfig) -> list[float]:
    """One QoS 1 publish -> delivery between two plain clients: the hop's own cost."""
    topic = f"lykta/v1/{SITE}/hop/event"
    out: list[float] = []
    async with make_client(mqtt, "bench-hop-sub") as sub, make_client(mqtt, "bench-hop-pub") as pub:
        await sub.subscribe(topic, qos=0)
        await asyncio.sleep(0.2)
        messages = sub.messages
        for _ in range(SAMPLES):
            t0 = time.monotonic()
            await pub.publish(topic, b"{}", qos=1)
            await anext(aiter(messages))
            out.append((time.monotonic() - t0) * 1000)
            await asyncio.sleep(0.02)
    return out


async def _main() -> None:
    with tempfile.TemporaryDirectory(prefix="lykta-bench-cross-") as d:
        tmp = Path(d)
        with LocalStack(tmp / "stack") as stack:
            mqtt = MqttConfig(host="127.0.0.1", port=stack.mqtt_port)
            hop = await _broker_hop(mqtt)
            cross, here, stats = await _cross(mqtt, tmp)
    print(f"across two gateways through the broker: presence event on A's bus -> first corridor"
          f" DAPC on B's bus, {SAMPLES} detections, {LUMINAIRES} luminaires per cabinet, real"
          f" DALI wire time, both telemetry loops reading back to back")  # fmt: skip
    for name, xs in (("A -> B", cross), ("A local", here), ("broker hop", hop)):
        if not xs:
            print(f"  {name:10s}: no samples")
            continue
        print(f"  {name:10s}: p50 {statistics.median(xs):6.1f} ms  p99 {pct(xs, 0.99):6.1f} ms  "
              f"max {max(xs):6.1f} ms")  # fmt: skip
    print(f"  ({stats})")
    if cross and here:
        print(f"  ratio A->B / A local p50: "
              f"{statistics.median(cross) / max(statistics.median(here), 1e-9):.2f}   p99: "
              f"{pct(cross, 0.99) / max(pct(here, 0.99), 1e-9):.2f}")  # fmt: skip
    if cross:
        p99 = pct(cross, 0.99)
        print(
            f"  goal p99 <= 150 ms across two gateways: "
            f"{'met' if p99 <= 150 and not stats['missed'] else 'NOT met'} ({p99:.1f} ms)"
        )


def main() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())


if __name__ == "__main__":
    main()
