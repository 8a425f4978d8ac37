"""A light corridor crossing a cabinet boundary, end to end: two gateway daemons (real field
readers, executors and MQTT links) on two simulated cabinets whose luminaires continue one
path of Strömstråket, through a real Mosquitto running the shipped production config and ACL.
A detection on one cabinet's bus lights exactly the preview's corridor: the detecting gateway
its own part, the neighbour its part from the presence event it reads through the broker.
And the ACL lets each gateway read exactly its neighbours' event topics."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fieldsim.cabinet import SimulatedCabinet
from gateway.daemon import Gateway
from gateway.program_runner import PresenceSensor, ProgramRunner
from lykta.cli.demo_site import write_shared_path_site
from lykta.clock import ScaledClock
from lykta.contract import Event, EventKind, Topic, TopicKind, encode
from lykta.mqtt import make_client
from lykta.signing import sign_program
from lykta.strategy import Detection, Strategy, compile_program, evaluate, load_strategy
from tests.security.broker import SITE, SecureBroker
from tests.waiting import eventually

NIGHT = dt.datetime(2027, 1, 15, 0, 30, tzinfo=dt.UTC)  # "late": the boost is above schedule
ZONE = "stromstraket"
A, B, OTHER = "gw-centrum", "gw-saltangen", "gw-ektorp"  # neighbours in the shipped ACL
N = 8  # luminaires per cabinet
SPACING = 25.0


def _preview(strategy: Strategy, position_m: float, at: dt.datetime) -> set[str]:
    det = {ZONE: [Detection(position_m, at)]}
    return {
        lum.id for lum in strategy.zone_path(ZONE)
        if evaluate(strategy, lum.id, at, presence=det).level > evaluate(strategy, lum.id, at).level
    }  # fmt: skip


@contextlib.asynccontextmanager
async def _gateway(
    gw: str, cab: SimulatedCabinet, strategy: Strategy, key: Ed25519PrivateKey,
    broker: SecureBroker, clock: ScaledClock, tmp: Path,
) -> AsyncIterator[Gateway]:  # fmt: skip
    program = sign_program(
        msgspec.structs.replace(
            compile_program(strategy, gw, NIGHT - dt.timedelta(hours=2), 12), site=SITE
        ),
        key,
    )
    reader = cab.field_reader(interval_s=5, energy_interval_s=3600, prefix=f"{gw}-L",
                              wall_clock=clock.seconds)  # fmt: skip
    async with reader:
        driver = reader.drivers[0]
        # one sensor at each end of the cabinet's stretch of the path
        base = SPACING * (N if gw == B else 0)
        sensors = [PresenceSensor(cab.dali.name, 0, ZONE, base),
                   PresenceSensor(cab.dali.name, 1, ZONE, base + SPACING * (N - 1))]  # fmt: skip
        runner = ProgramRunner(
            site=SITE, gateway=gw, drivers={cab.dali.name: driver},
            luminaires={lum.id: cab.dali.name for lum in driver.luminaires},
            state_dir=tmp / gw / "program", public_key=key.public_key(),
            latitude=58.59, longitude=16.19, presence_sensors=sensors, clock=clock.now_ms,
        )  # fmt: skip
        await runner.on_program(program, encode(program))
        async with Gateway(SITE, gw, broker.cfg(gw), reader, tmp / gw / "gw",
                           telemetry_interval_s=30, runner=runner,
                           clock=clock.now_ms) as g:  # fmt: skip
            yield g


async def _lit(g: Gateway, cab: SimulatedCabinet) -> set[str]:
    """The luminaires the gateway holds at presence whose gear has reached the boost."""
    assert g.runner is not None
    lums = {x.id: x for x in g.runner.program.luminaires}  # type: ignore[union-attr]
    return {
        lid for lid, src in g.runner.sources.items()
        if src == "presence"
        and cab.dali_bus.by_short_address(lums[lid].short_address).actual_level
        == (lums[lid].boost_level or 0)
    }  # fmt: skip


async def test_a_corridor_across_two_cabinets_lights_exactly_the_previews_luminaires(
    tmp_path: Path,
) -> None:
    broker = SecureBroker(tmp_path / "broker", gateways=[A, B, OTHER])
    broker.start()
    clock = ScaledClock(int(NIGHT.timestamp() * 1000))
    try:
        cabs = [SimulatedCabinet(N, sensors=2, pedestrians_per_hour=0, cyclists_per_hour=0,
                                 now=clock.seconds, seed=i) for i in range(2)]  # fmt: skip
        async with cabs[0], cabs[1]:
            site = write_shared_path_site(
                tmp_path / "site", cabs, [A, B], zone=ZONE, spacing_m=SPACING
            )
            strategy = load_strategy(site)
            key = Ed25519PrivateKey.generate()
            async with (
                _gateway(A, cabs[0], strategy, key, broker, clock, tmp_path) as ga,
                _gateway(B, cabs[1], strategy, key, broker, clock, tmp_path) as gb,
            ):
                assert ga.runner is not None and gb.runner is not None
                assert ga.link.neighbours == {B} and gb.link.neighbours == {A}
                for g in (ga, gb):
                    await eventually(lambda g=g: g.link.connected.is_set()
                                     and g.runner.steps > 0, within_s=20)  # fmt: skip
                await asyncio.sleep(0.5)  # the neighbour subscriptions are in place
                # A's sensor at its last luminaire (175 m), then B's at its first (200 m)
                for cab, sensor, pos in ((cabs[0], 1, 175.0), (cabs[1], 0, 200.0)):
                    for x in (ga, gb):
                        x.runner.end_presence_holds()
                    await eventually(lambda: all(
                        "presence" not in x.runner.sources.values() for x in (ga, gb)))  # fmt: skip
                    at = dt.datetime.fromtimestamp(clock.now_ms() / 1000, dt.UTC)
                    want = _preview(strategy, pos, at)
                    owners = {lum.id: lum.gateway for lum in strategy.luminaires}
                    assert {owners[x] for x in want} == {A, B}  # it does cross the boundary
                    cab.dali_bus.occupancy_event(sensor)
                    got: set[str] = set()
                    for _ in range(200):
                        got = await _lit(ga, cabs[0]) | await _lit(gb, cabs[1])
                        if got == want:
                            break
                        await asyncio.sleep(0.05)
                    assert got == want, (pos, sorted(got), sorted(want))
                    await asyncio.sleep(0.5)  # and nothing else follows
                    got = await _lit(ga, cabs[0]) | await _lit(gb, cabs[1])
                    assert got == want
                assert ga.runner.neighbour_stats["reactions"] == 1
                assert gb.runner.neighbour_stats["reactions"] == 1
                assert ga.link.stats["neighbour_malformed"] == 0
                assert ga.healthy() and gb.healthy()
            # the ACL: B reads A's events (and nothing else of A's); C, no neighbour, nothing
            await _acl(broker, clock)
    finally:
        broker.stop()


async def _acl(broker: SecureBroker, clock: ScaledClock) -> None:
    def t(gw: str, kind: TopicKind) -> str:
        return str(Topic(SITE, gw, kind))

    async def received(user: str, topics: list[str]) -> set[str]:
        """What ``user`` is delivered of A's topics while A publishes on them."""
        got: set[str] = set()
        async with make_client(broker.cfg(user), user, timeout_s=5) as c:
            for topic in topics:
                await c.subscribe(topic, qos=1)
            await asyncio.sleep(0.3)
            async with make_client(broker.cfg(A), A, timeout_s=5) as pub:
                ev = Event(ts=clock.now_ms(), kind=EventKind.PRESENCE, source="x",
                           detail={"zone": ZONE, "position_m": 0.0})  # fmt: skip
                await pub.publish(t(A, TopicKind.EVENT), encode(ev), qos=1)
                await pub.publish(t(A, TopicKind.TELEMETRY), b"{}", qos=1)
                await pub.publish(t(A, TopicKind.STATE), b"{}", qos=1)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    async for m in c.messages:
                        got.add(str(m.topic))
        return got

    everything = [t(A, k) for k in (TopicKind.EVENT, TopicKind.TELEMETRY, TopicKind.STATE)]
    assert await received(B, everything) == {t(A, TopicKind.EVENT)}
    assert await received(OTHER, everything) == set()
