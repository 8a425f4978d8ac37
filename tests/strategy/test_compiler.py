"""Compiling programs and executing them at the gateway: the street agrees with the preview."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lykta.contract import Program, decode, encode
from lykta.contract.program import signing_payload
from lykta.strategy import (
    CompileError,
    Override,
    ProgramNotValid,
    compile_program,
    enforce_floor,
    evaluate,
    in_lit_window,
    load_strategy,
    parse_strategy,
    presence_corridor,
    program_level,
    program_target,
    program_valid,
)
from lykta.strategy.astronomy import utc_ms

from .conftest import NORRKOPING, mini_doc

NK = load_strategy(NORRKOPING)
MINI = parse_strategy(mini_doc(), "mini.toml")
START = datetime(2026, 11, 25, 11, tzinfo=UTC)
starts = st.integers(0, 365 * 24 - 1).map(
    lambda h: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=h)
)


def _settled(points, t_ms: int) -> bool:
    """True when ``t_ms`` is not inside a fade of ``points``."""
    return all(not (p.ts <= t_ms < p.ts + p.fade_ms) for p in points)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(starts, st.lists(st.floats(0, 1), min_size=5, max_size=20), st.sampled_from(["s", "n"]))
def test_program_agrees_with_the_evaluator(start: datetime, fractions, which: str) -> None:
    """Invariant: outside fades, the level the gateway executes from the program equals the
    level the evaluator (and so the preview) gives, for every luminaire."""
    strategy, gw = (MINI, "gw1") if which == "s" else (NK, "gw-centrum")
    prog = compile_program(strategy, gw, start, 48)
    lums = [lum for lum in strategy.luminaires if lum.gateway == gw]
    for f in fractions:
        t_ms = prog.valid_from + int(f * (prog.valid_until - prog.valid_from - 1))
        t = datetime.fromtimestamp(t_ms / 1000, UTC)
        for lum in lums[:: max(1, len(lums) // 7)]:
            pts = next(x for x in prog.luminaires if x.id == lum.id).points or next(
                g.points for g in prog.groups if (g.bus, g.group) == (lum.bus, lum.group)
            )
            if not _settled(pts, t_ms):
                continue
            assert (
                program_level(prog, t_ms, luminaire=lum.id) == evaluate(strategy, lum.id, t).level
            )


@settings(max_examples=25, deadline=None)
@given(starts)
def test_steps_down_are_never_faster_than_fade_down(start: datetime) -> None:
    prog = compile_program(NK, "gw-soderleden", start, 48)
    for g in prog.groups:
        z = NK.zones[g.zone]
        for a, b in zip(g.points, g.points[1:], strict=False):
            assert b.level != a.level  # a point is a change: one group frame per change
            if b.level < a.level:
                assert b.fade_ms >= z.fade_down_s * 1000
            if in_lit_window(prog, b.ts) and b.level > 0:
                assert b.level >= g.floor_level


def test_program_round_trips_the_wire_contract() -> None:
    prog = compile_program(NK, "gw-centrum", START, 48)
    assert decode(encode(prog), Program) == prog
    assert prog.valid_until - prog.valid_from == 48 * 3600 * 1000
    assert {(g.bus, g.group) for g in prog.groups} == {("dali1", 0), ("dali2", 1), ("dali2", 2)}
    assert len(prog.luminaires) == sum(lum.gateway == "gw-centrum" for lum in NK.luminaires)
    assert all(not lum.points for lum in prog.luminaires)  # all follow their groups
    assert {r.zone for r in prog.presence} == {"stromstraket", "strompparken", "busshallplatser"}
    assert set(prog.safety_routes) == {"stromstraket", "strompparken"}
    # deterministic: same input, same version; the version changes with the content
    assert compile_program(NK, "gw-centrum", START, 48).version == prog.version
    assert compile_program(NK, "gw-centrum", START, 24).version != prog.version
    assert b'"signature"' not in signing_payload(prog)


def test_ungrouped_and_overridden_luminaires_get_their_own_points() -> None:
    ov = Override.model_validate({
        "id": "i", "kind": "incident", "luminaires": ["p5"], "class": "P1",
        "starts": START + timedelta(hours=10), "expires": START + timedelta(hours=11)})  # fmt: skip
    prog = compile_program(MINI, "gw1", START, 24, overrides=[ov])
    own = {lum.id for lum in prog.luminaires if lum.points}
    assert own == {"s0", "p5"}
    t = utc_ms(START + timedelta(hours=10, minutes=30))
    assert program_level(prog, t, luminaire="p5") == 254
    assert program_level(prog, t, luminaire="p4") < 254


def test_execution_helpers() -> None:
    prog = compile_program(MINI, "gw1", START, 24)
    night = utc_ms(datetime(2026, 11, 26, 2, tzinfo=UTC))
    day = utc_ms(datetime(2026, 11, 26, 10, tzinfo=UTC))
    assert in_lit_window(prog, night) and not in_lit_window(prog, day)
    floor = next(lum.floor_level for lum in prog.luminaires if lum.id == "p1")
    assert enforce_floor(prog, "p1", 0, night) == floor  # a command cannot go below the floor
    assert enforce_floor(prog, "p1", 0, day) == 0
    assert program_target(prog, night, group=("b1", 0)).level >= floor
    assert program_valid(prog, prog.valid_from) and not program_valid(prog, prog.valid_until)
    with pytest.raises(ProgramNotValid):
        program_level(prog, prog.valid_until, luminaire="p1")
    with pytest.raises(KeyError, match="no 'zz'"):
        program_level(prog, night, luminaire="zz")
    hit = presence_corridor(prog, "path", 61.0)
    assert [lum.id for lum, _ in hit] == ["p2", "p3", "p4", "p5"]
    assert all(level == 254 for _, level in hit)
    assert presence_corridor(prog, "street", 0.0) == []  # no presence rule there


def test_fade_is_executed_part_way() -> None:
    prog = compile_program(MINI, "gw1", START, 24)
    pts = next(g.points for g in prog.groups if (g.bus, g.group) == ("b1", 0))
    down = next(p for a, p in zip(pts, pts[1:], strict=False) if 0 < p.level < a.level)
    before = program_level(prog, down.ts - 1, group=("b1", 0))
    mid = program_level(prog, down.ts + down.fade_ms // 2, group=("b1", 0))
    assert before > mid > down.level
    assert program_level(prog, down.ts + down.fade_ms, group=("b1", 0)) == down.level


def test_compile_errors() -> None:
    with pytest.raises(CompileError, match="gateway 'gw9' has no luminaires.*known: gw1"):
        compile_program(MINI, "gw9", START, 24)
    with pytest.raises(CompileError, match="hours"):
        compile_program(MINI, "gw1", START, 0)
    with pytest.raises(ValueError, match="no time zone"):
        compile_program(MINI, "gw1", datetime(2026, 1, 1), 24)


@pytest.mark.parametrize(
    ("start", "switch_utc"),
    [
        # spring forward: "02:30" does not exist, the switch happens at 03:00 CEST
        (datetime(2026, 3, 28, 11, tzinfo=UTC), datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        # fall back: the first 02:30 (CEST) counts, and the switch does not repeat
        (datetime(2026, 10, 24, 10, tzinfo=UTC), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
    ],
)
def test_dst_nights_compile_to_one_switch(start: datetime, switch_utc: datetime) -> None:
    prog = compile_program(MINI, "gw1", start, 24)
    pts = next(g.points for g in prog.groups if (g.bus, g.group) == ("b2", 1))  # street
    at = [p for p in pts if p.ts == utc_ms(switch_utc)]
    assert len(at) == 1 and at[0].fade_ms == 45_000  # late P5 -> night P6: a step down
    assert sum(1 for p in pts if p.level == at[0].level) == 1


def test_lux_switching_program() -> None:
    from lykta.strategy import lux_program_level

    doc = mini_doc()
    doc["switching"]["lux"] = {"sensor": "lux-1", "on_below_lx": 20, "off_above_lx": 40}
    s = parse_strategy(doc)
    prog = compile_program(s, "gw1", START, 24)
    assert prog.lux is not None and prog.lux.sensor == "lux-1"
    g = ("b1", 0)
    floor = next(x.floor_level for x in prog.groups if (x.bus, x.group) == g)
    # a dark, stormy afternoon before astronomical dusk: the evening's level, as the evaluator
    storm = datetime(2026, 11, 25, 13, 30, tzinfo=UTC)
    expected = evaluate(s, "p1", storm, lux_lit=True).level
    assert lux_program_level(prog, utc_ms(storm), True, group=g) == expected == 254
    # a grey morning after astronomical dawn: the morning's (last) level, never below floor
    grey = datetime(2026, 11, 26, 7, 30, tzinfo=UTC)
    got = lux_program_level(prog, utc_ms(grey), True, luminaire="p1")
    assert got == evaluate(s, "p1", grey, lux_lit=True).level >= floor
    # the sensor says light: off, even inside the astronomical window
    night = utc_ms(datetime(2026, 11, 25, 20, tzinfo=UTC))
    assert lux_program_level(prog, night, False, group=g) == 0
    assert enforce_floor(prog, "p1", 0, night, lit=False) == 0
    assert enforce_floor(prog, "p1", 0, utc_ms(grey), lit=True) == floor
