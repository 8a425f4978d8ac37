"""A neighbouring gateway's presence event at the runner: it lights this gateway's part of the
corridor, only boosts, only while lit, never after the hold counted from the detection, and
anything else is ignored and counted."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lykta.contract import Event, EventKind, encode
from lykta.contract.program import Program
from lykta.strategy import Detection, evaluate, load_strategy, presence_corridor
from tests.gateway.conftest import STRATEGY
from tests.gateway.test_program_runner import NIGHT, NOON, runner

NEIGHBOUR = "gw-saltangen"  # drives STR-046.. of Strömstråket, next to gw-centrum's STR-045


def _seen(ts: int, position_m: float, zone: str = "stromstraket", **detail: object) -> Event:
    detail = {"occupied": True, "zone": zone, "position_m": position_m, **detail}
    return Event(ts=ts, kind=EventKind.PRESENCE, source="dali1/sensor-0", detail=detail)


async def test_a_neighbours_detection_lights_our_part_of_the_previews_corridor(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    clock = [NIGHT]
    r, field = runner(program, signing_key, tmp_path, clock, [])
    await r.on_program(program, encode(program))
    assert r.neighbour_gateways() == [NEIGHBOUR]
    # its own detections go out live only where a neighbour shares the zone
    assert r.has_neighbours("stromstraket") and not r.has_neighbours("strompparken")
    await r.step()
    clock[0] += 100_000
    await r.step()
    at = clock[0]
    assert r.on_neighbour_presence(NEIGHBOUR, _seen(at - 2_000, 1137.0)) is None
    # the preview's corridor, over the whole path of both cabinets
    strategy = load_strategy(STRATEGY)
    when = dt.datetime.fromtimestamp((at - 2_000) / 1000, dt.UTC)
    det = {"stromstraket": [Detection(1137.0, when)]}
    preview = {
        lum.id for lum in strategy.zone_path("stromstraket")
        if evaluate(strategy, lum.id, when, presence=det).level
        > evaluate(strategy, lum.id, when).level
    }  # fmt: skip
    ours = {lum.id for lum in strategy.luminaires if lum.gateway == program.gateway}
    assert set(r.boosts) == preview & ours == {"STR-045"}
    rule = next(p for p in program.presence if p.zone == "stromstraket")
    # the hold ends counted from the neighbour's detection, not from when it arrived
    assert r.boosts["STR-045"].until_ms == at - 2_000 + rule.hold_ms
    await r.step()
    clock[0] += rule.fade_up_ms
    boost = next(lv for lum, lv in presence_corridor(program, "stromstraket", 1137.0)
                 if lum.id == "STR-045")  # fmt: skip
    assert field.level("STR-045") == boost
    assert r.neighbour_stats["reactions"] == 1
    # a late copy of the same detection does not extend the hold
    clock[0] += 10_000
    assert r.on_neighbour_presence(NEIGHBOUR, _seen(at - 2_000, 1137.0)) is None
    assert r.boosts["STR-045"].until_ms == at - 2_000 + rule.hold_ms


async def test_stale_foreign_and_malformed_neighbour_events_light_nothing(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    clock = [NIGHT + 100_000]
    r, _ = runner(program, signing_key, tmp_path, clock, [])
    await r.on_program(program, encode(program))
    now = clock[0]
    hold = next(p for p in program.presence if p.zone == "stromstraket").hold_ms
    cases = [
        (NEIGHBOUR, _seen(now - hold - 1, 1137.0), "stale"),
        (NEIGHBOUR, _seen(now + 60_000, 1137.0), "future"),
        ("gw-ektorp", _seen(now, 1137.0), "not_neighbour"),  # not on this path
        (NEIGHBOUR, _seen(now, 50.0, zone="strompparken"), "not_neighbour"),  # not shared
        (NEIGHBOUR, _seen(now, 1137.0, zone="nowhere"), "not_neighbour"),
        (NEIGHBOUR, Event(ts=now, kind=EventKind.PRESENCE, source="x", detail={}), "unplaced"),
        (NEIGHBOUR, _seen(now, None), "bad_detail"),  # type: ignore[arg-type]
        (NEIGHBOUR, _seen(now, "1137"), "bad_detail"),  # type: ignore[arg-type]
        (NEIGHBOUR, _seen(now, True), "bad_detail"),
        (NEIGHBOUR, _seen(now, float("inf")), "bad_detail"),
        (NEIGHBOUR, _seen(now, 1300.0), "out_of_reach"),  # far inside the neighbour's part
    ]
    for gw, event, reason in cases:
        assert r.on_neighbour_presence(gw, event) == reason, (gw, event)
    # not detections at all: neither acted on nor counted
    assert r.on_neighbour_presence(NEIGHBOUR, _seen(now, 1137.0, occupied=False)) is None
    lamp = Event(ts=now, kind=EventKind.LAMP_FAILURE, source="STR-046", detail={})
    assert r.on_neighbour_presence(NEIGHBOUR, lamp) is None
    assert r.boosts == {}
    assert sum(r.neighbour_stats.values()) == len(cases)
    assert r.neighbour_stats["bad_detail"] == 4


async def test_neighbour_events_only_ever_raise_and_never_in_daylight(
    program: Program, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """Invariant: whatever neighbour events arrive, every luminaire's wanted level is at least
    the level without them, and at least its floor while lit; at noon they change nothing."""
    rnd = random.Random(11)
    for start in (NIGHT + 3_600_000, NOON):
        clock = [start]
        r, _ = runner(program, signing_key, tmp_path / str(start), clock, [])
        await r.on_program(program, encode(program))
        base = {k: w.level for k, w in r.wanted(start).items()}
        for _ in range(40):
            r.on_neighbour_presence(NEIGHBOUR, _seen(start - rnd.randrange(0, 100_000),
                                                     rnd.uniform(900.0, 1300.0)))  # fmt: skip
        now = start + 1_000
        lums = {lum.id: lum for lum in program.luminaires}
        with_events = r.wanted(now)
        for lum_id, w in with_events.items():
            assert w.level >= base[lum_id]
        if start == NOON:
            assert with_events == r.wanted(now) and all(w.level == 0 for w in with_events.values())
            assert r.neighbour_stats["not_lit"] > 0 and r.neighbour_stats["reactions"] == 0
        else:
            assert all(w.level >= lums[k].floor_level for k, w in with_events.items())
            assert any(w.source == "presence" for w in with_events.values())
