"""Adaptive classes by traffic (EN 13201 adaptive lighting): the pure flow -> steps rules,
their place in the one evaluator, the compiled program, the gateway's levels and the operator
tools; and the invariants over random strategies and flow histories:

1. whenever a zone is lit, no luminaire is below its floor, whatever the traffic;
2. adaptation only lowers: never above the level without it (same instant, same inputs);
3. no flow (unknown) is exactly the unadapted result — in the evaluator and on the street.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gateway.levels import desired_levels
from lykta.cli.main import app
from lykta.strategy import (
    StrategyError,
    compile_program,
    estimate_energy,
    evaluate,
    parse_strategy,
    preview_night,
)
from lykta.strategy.adaptive import next_steps, step_down, steps_for_flow
from lykta.strategy.astronomy import utc_ms
from lykta.strategy.en13201 import LightingClass
from lykta.strategy.evaluator import class_level
from lykta.strategy.schedule import night_plan

from .conftest import NORRKOPING, mini_doc
from .test_invariants import NIGHTS, _overrides, city

RULES = [(200.0, 1), (50.0, 2)]
EVENING = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)  # a Tuesday, 19:00 local: evening


def _doc(**adaptive: Any) -> dict[str, Any]:
    doc = mini_doc()
    doc["zones"]["street"]["adaptive"] = {
        "thresholds": [{"below_per_h": 200, "step": 1}, {"below_per_h": 50, "step": 2}],
        **adaptive,
    }
    return doc


# -- the pure rules -------------------------------------------------------------------------


def test_steps_for_a_steady_flow_and_unknown_is_not_zero() -> None:
    assert steps_for_flow(RULES, None) == 0
    assert steps_for_flow(RULES, 0.0) == 2
    assert steps_for_flow(RULES, 49.9) == 2
    assert steps_for_flow(RULES, 50.0) == 1
    assert steps_for_flow(RULES, 199.0) == 1
    assert steps_for_flow(RULES, 200.0) == 0


def test_hysteresis_down_at_once_up_only_past_the_margin() -> None:
    h = 20.0  # back up at 240/h and 60/h
    s = 0
    trace = []
    for flow in [300, 190, 230, 239, 240, 40, 55, 59, 60, 250, None, 10]:
        s = next_steps(RULES, flow, s, h)
        trace.append(s)
    #        300 190 230 239 240 40 55 59 60 250 None 10
    assert trace == [0, 1, 1, 1, 0, 2, 2, 2, 1, 0, 0, 2]
    # from the unadapted state a steady flow gives what the evaluator uses
    for flow in (0.0, 49.0, 55.0, 199.0, 230.0, 500.0):
        assert next_steps(RULES, flow, 0, h) == steps_for_flow(RULES, flow)


def test_step_down_stays_in_the_series_and_above_the_floor() -> None:
    p = LightingClass.parse
    assert step_down(p("P3"), 1, None) == p("P4")
    assert step_down(p("P3"), 5, None) == p("P6")  # the series ends at P6
    assert step_down(p("P3"), 2, p("P4")) == p("P4")  # never below the floor
    assert step_down(p("P5"), 1, p("P4")) == p("P5")  # already below the floor: not raised here
    assert step_down(p("M2"), 2, p("M5")) == p("M4")
    assert step_down(p("C0"), 0, None) == p("C0")


# -- the strategy file ------------------------------------------------------------------------


def test_adaptive_problems_say_where_and_why() -> None:
    def problems(doc: dict[str, Any]) -> list[str]:
        with pytest.raises(StrategyError) as e:
            parse_strategy(doc, "s.toml")
        return [str(p) for p in e.value.problems]

    bad = _doc()
    bad["zones"]["street"]["adaptive"]["thresholds"] = [
        {"below_per_h": 200, "step": 2}, {"below_per_h": 50, "step": 1}]  # fmt: skip
    assert any(
        x.startswith("s.toml: zones.street.adaptive.thresholds: below 50/h steps 1")
        for x in problems(bad)
    ), problems(bad)
    assert "s.toml: zones.street.adaptive.periods[1]: no period 'dawn' in classes " \
        "(periods: evening, late, night)" in problems(_doc(periods=["late", "dawn"]))
    levels = _doc(periods=["late"])
    levels["zones"]["street"]["classes"]["late"] = "30%"
    assert "s.toml: zones.street.adaptive.periods[0]: late sets a level, not a class: " \
        "adaptation steps EN 13201 classes" in problems(levels)
    plain = _doc()
    plain["zones"]["street"]["classes"] = {"evening": "60%", "late": "30%", "night": "off"}
    del plain["zones"]["street"]["safety_floor"]
    assert "s.toml: zones.street.adaptive: no period has an EN 13201 class to step down" \
        in problems(plain)
    zero = _doc(thresholds=[{"below_per_h": 0, "step": 1}])
    assert any("adaptive.thresholds[0].below_per_h" in x for x in problems(zero))
    many = _doc(thresholds=[{"below_per_h": 10, "step": 6}])
    assert any("adaptive.thresholds[0].step" in x for x in problems(many))
    assert any("adaptive.window_min" in x for x in problems(_doc(window_min=0)))


def test_a_safety_route_that_adapts_is_a_warning() -> None:
    doc = mini_doc()
    doc["zones"]["path"]["adaptive"] = {"thresholds": [{"below_per_h": 100, "step": 1}]}
    s = parse_strategy(doc, "s.toml")
    assert any(str(w).startswith("s.toml: zones.path.adaptive: a safety route that dims")
               for w in s.warnings)  # fmt: skip
    assert not any("adaptive" in str(w) for w in parse_strategy(_doc(), "s.toml").warnings)


# -- the one evaluator, the program, the street -------------------------------------------------


def test_evaluator_steps_the_schedule_class_down_only_with_a_flow() -> None:
    s = parse_strategy(_doc(), "s.toml")
    lum = "s1"  # design P3, evening P4, floor P6
    plain = evaluate(s, lum, EVENING)
    assert plain.setting == "P4" and plain.source == "schedule"
    assert evaluate(s, lum, EVENING, flow_per_h=None) == plain
    assert evaluate(s, lum, EVENING, flow_per_h=500) == plain
    one = evaluate(s, lum, EVENING, flow_per_h=120)
    assert (one.setting, one.source) == ("P5", "adaptive")
    assert one.level == class_level(LightingClass.parse("P3"), LightingClass.parse("P5"))
    two = evaluate(s, lum, EVENING, flow_per_h=0)
    assert two.setting == "P6" and two.level == two.floor_level  # P4 two down: the floor
    # the safety route has no adaptive rule: traffic changes nothing there
    assert evaluate(s, "p1", EVENING, flow_per_h=0) == evaluate(s, "p1", EVENING)
    # by day nothing is lit, with or without traffic
    noon = EVENING.replace(hour=11)
    assert evaluate(s, lum, noon, flow_per_h=0).level == 0


def test_only_the_stated_periods_adapt_and_events_do_not() -> None:
    doc = _doc(periods=["late"])
    doc["events"] = [{"id": "marknad", "zones": ["street"], "class": "P3", "from": "18:30",
                      "to": "19:30"}]  # fmt: skip
    s = parse_strategy(doc, "s.toml")
    assert evaluate(s, "s1", EVENING.replace(hour=16), flow_per_h=0).source == "schedule"
    ev = evaluate(s, "s1", EVENING, flow_per_h=0)
    assert ev.source == "event:marknad" and ev.setting == "P3"
    late = EVENING.replace(hour=22)  # 23:00 local: late, P5 -> P6
    assert evaluate(s, "s1", late, flow_per_h=0).setting == "P6"


def test_the_program_carries_the_stepped_levels_and_the_street_runs_them() -> None:
    s = parse_strategy(_doc(), "s.toml")
    plan = night_plan(s, EVENING.date())
    prog = compile_program(s, "gw1", plan.start, 24)
    [rule] = prog.adaptive
    assert (rule.zone, rule.window_ms, rule.hysteresis_percent) == ("street", 900_000, 20.0)
    assert [(t.below_per_h, t.step) for t in rule.thresholds] == RULES
    assert all(not p.adapted for g in prog.groups if g.zone == "path" for p in g.points)
    ids = [lum.id for lum in s.luminaires]
    for minutes in range(0, 24 * 60, 7):
        t = plan.start + timedelta(minutes=minutes)
        for steps in (0, 1, 2, 3):
            adapt = {"street": steps} if steps else None
            street = desired_levels(prog, utc_ms(t), ids, fail_safe_level=254,
                                    adaptive_steps=adapt)  # fmt: skip
            flow = {0: None, 1: 120.0, 2: 0.0, 3: 0.0}[steps]
            for lum in s.luminaires:
                tg = evaluate(s, lum.id, t, flow_per_h=flow)
                if abs(utc_ms(t) - utc_ms(plan.start)) > 100_000:  # not mid-fade
                    assert street[lum.id] == tg.level, (lum.id, t, steps)


def test_energy_what_if_agrees_with_the_classes_written_out() -> None:
    week = (date(2026, 11, 23), date(2026, 11, 29))
    adaptive = parse_strategy(_doc(), "s.toml")
    base = estimate_energy(adaptive, *week)
    assert estimate_energy(adaptive, *week, flow_per_h=None).zones == base.zones
    assert estimate_energy(adaptive, *week, flow_per_h=1000).zones == base.zones
    # 120/h: one class down; written out by hand: evening P4 -> P5, late P5 -> P6, night P6
    one = estimate_energy(adaptive, *week, flow_per_h=120)
    by_hand = mini_doc()
    by_hand["zones"]["street"]["classes"] = {"evening": "P5", "late": "P6", "night": "P6"}
    expected = estimate_energy(parse_strategy(by_hand), *week)
    assert one.zones["street"].kwh == pytest.approx(expected.zones["street"].kwh, rel=1e-12)
    assert one.zones["street"].kwh < base.zones["street"].kwh
    assert one.zones["path"].kwh == base.zones["path"].kwh


def test_norrkoping_ektorp_adapts_and_the_safety_routes_do_not(norrkoping) -> None:
    assert [z for z, v in norrkoping.zones.items() if v.adaptive] == ["ektorp"]
    assert not norrkoping.zones["ektorp"].safety_route
    night = date(2026, 11, 24)
    quiet = preview_night(norrkoping, "ektorp", night, flow_per_h=5)
    plain = preview_night(norrkoping, "ektorp", night)
    assert any(r.source == "adaptive" for r in quiet)
    for q, p in zip(quiet, plain, strict=True):
        assert q.level <= p.level
        assert not q.lit or q.level >= q.floor_level
    for zone in ("stromstraket", "strompparken", "resecentrum"):
        assert preview_night(norrkoping, zone, night, flow_per_h=0) == preview_night(
            norrkoping, zone, night
        )


def test_cli_preview_and_energy_take_a_flow(tmp_path) -> None:
    cli = CliRunner()
    res = cli.invoke(app, ["strategy", "preview", str(NORRKOPING), "--zone", "ektorp",
                           "--date", "2026-11-24", "--flow", "30", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert '"source": "adaptive"' in res.output
    assert "ektorp: 30 people/h steps its classes 1 down" in res.output
    png = tmp_path / "ektorp.png"
    res = cli.invoke(app, ["strategy", "preview", str(NORRKOPING), "--zone", "stromstraket",
                           "--date", "2026-11-24", "--flow", "30", "--png", str(png)])  # fmt: skip
    assert res.exit_code == 0 and png.stat().st_size > 10_000
    assert "no zone here adapts to traffic" in res.output
    res = cli.invoke(app, ["strategy", "preview", str(NORRKOPING), "--zone", "ektorp",
                           "--date", "2026-11-24", "--flow", "-3"])  # fmt: skip
    assert res.exit_code == 2


# -- invariants over random strategies and flow histories -----------------------------------


@st.composite
def adaptive_rule(draw) -> dict[str, Any]:
    n = draw(st.integers(1, 3))
    belows = sorted(draw(st.lists(st.integers(1, 400), min_size=n, max_size=n, unique=True)),
                    reverse=True)  # fmt: skip
    steps = sorted(draw(st.lists(st.integers(1, 5), min_size=n, max_size=n, unique=True)))
    return {
        "thresholds": [{"below_per_h": b, "step": k} for b, k in zip(belows, steps, strict=True)],
        "hysteresis_percent": draw(st.sampled_from([0, 20, 50])),
    }


def _adaptive_strategy(data):
    doc = data.draw(city())
    for z in doc["zones"].values():
        if any(c.startswith("P") for c in z["classes"].values()) and data.draw(
            st.integers(0, 3)
        ):
            z["adaptive"] = data.draw(adaptive_rule())
    night = data.draw(NIGHTS)
    doc["overrides"] = _overrides(data.draw, doc, night)
    return parse_strategy(doc, "random.toml"), night


FLOW = st.one_of(st.none(), st.sampled_from([0.0, 5.0, 30.0]), st.floats(0, 600, allow_nan=False))


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_traffic_never_breaks_the_floor_never_brightens_and_unknown_changes_nothing(
    data,
) -> None:
    s, night = _adaptive_strategy(data)
    plan0 = night_plan(s, night)
    prog = compile_program(s, "gw", plan0.start, (plan0.end - plan0.start).total_seconds() / 3600)
    ids = [lum.id for lum in s.luminaires]
    rules = {r.zone: r for r in prog.adaptive}
    steps: dict[str, int] = {}
    # a history of counts, in time order, mostly in the evening and the night
    minutes = st.sampled_from(range(4 * 60, 24 * 60, 7))  # uniform, not hypothesis' edges
    offsets = [60 * m for m in data.draw(st.lists(minutes, min_size=1, max_size=12))]
    for off in sorted(offsets):
        t = plan0.start + timedelta(seconds=off)
        t_ms = utc_ms(t)
        flows = {zn: data.draw(FLOW) for zn in s.zones}  # the zones' counted flow this step
        for zn, r in rules.items():  # the gateway's hysteresis over the history
            rs = [(x.below_per_h, x.step) for x in r.thresholds]
            steps[zn] = next_steps(rs, flows[zn], steps.get(zn, 0), r.hysteresis_percent)
        unadapted = desired_levels(prog, t_ms, ids, fail_safe_level=254)
        street = desired_levels(prog, t_ms, ids, fail_safe_level=254, adaptive_steps=steps)
        unknown = desired_levels(prog, t_ms, ids, fail_safe_level=254,
                                 adaptive_steps={zn: 0 for zn in s.zones})  # fmt: skip
        assert unknown == unadapted
        for lum in s.luminaires:
            z = s.zones[lum.zone]
            plain = evaluate(s, lum.id, t)
            seen = evaluate(s, lum.id, t, flow_per_h=flows[lum.zone])
            assert evaluate(s, lum.id, t, flow_per_h=None) == plain
            assert seen.level <= plain.level, (lum.id, t, seen, plain)
            assert street[lum.id] <= unadapted[lum.id], (lum.id, t)
            maint_off = plain.source.startswith("maintenance:") and plain.level == 0
            if plain.lit and not (maint_off and not z.safety_route):
                assert seen.level >= seen.floor_level, (lum.id, t, seen)
                floor = next(x.floor_level for x in prog.luminaires if x.id == lum.id)
                assert street[lum.id] >= floor, (lum.id, t, steps)
            if not plain.lit:
                assert seen.level == plain.level  # never adapted outside the lit window
