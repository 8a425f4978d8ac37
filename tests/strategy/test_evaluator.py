"""The pure evaluator: schedule, overrides, presence, the safety floor, DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lykta.strategy import Detection, Override, evaluate, load_strategy, parse_strategy
from lykta.strategy.dali_curve import arc_level_to_percent
from lykta.strategy.evaluator import class_level
from lykta.strategy.model import override_problems

from .conftest import NORRKOPING, mini_doc

# loaded here rather than as fixtures: hypothesis prints its arguments on failure
NK = load_strategy(NORRKOPING)
MINI = parse_strategy(mini_doc(), "mini.toml")

T0 = datetime(2026, 1, 1, tzinfo=UTC)
instants = st.integers(0, 365 * 24 * 3600 - 1).map(lambda s: T0 + timedelta(seconds=s))


def _ov(**kw) -> Override:
    return Override.model_validate(kw)


def _series_class(series: str) -> st.SearchStrategy[str]:
    n = {"M": range(1, 7), "C": range(0, 6), "P": range(1, 7)}[series]
    return st.sampled_from([f"{series}{i}" for i in n])


@st.composite
def scenario(draw, strategy):
    """A luminaire, an instant, a few overrides around it, a few detections."""
    lum = draw(st.sampled_from(strategy.luminaires))
    series = strategy.zones[lum.zone].safety_floor.series
    at = draw(instants)
    ovs = []
    for i in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["incident", "maintenance", "event"]))
        target = draw(st.sampled_from(["zone", "lum"]))
        kw = {"id": f"o{i}", "kind": kind,
              "starts": at - timedelta(minutes=draw(st.integers(-30, 120))),
              "expires": at + timedelta(minutes=draw(st.integers(-30, 120)) + 31)}  # fmt: skip
        kw["zones" if target == "zone" else "luminaires"] = [
            lum.zone if target == "zone" else lum.id
        ]
        if kind == "maintenance":
            what = draw(st.sampled_from(["off", "level_percent", "class"]))
            kw[what] = {
                "off": True,
                "level_percent": draw(st.floats(0, 100)),
                "class": draw(_series_class(series)),
            }[what]
        else:
            kw["class"] = draw(_series_class(series))
        if kw["starts"] < kw["expires"]:
            ovs.append(_ov(**kw))
    dets = [
        Detection(draw(st.floats(0, 3000)), at - timedelta(seconds=draw(st.integers(0, 300))))
        for _ in range(draw(st.integers(0, 3)))
    ]
    return lum, at, ovs, {lum.zone: dets}


def _check_floor(strategy, lum, at, ovs, presence) -> None:
    tg = evaluate(strategy, lum.id, at, overrides=ovs, presence=presence)
    z = strategy.zones[lum.zone]
    active = sorted(
        (o for o in ovs if o.active(at) and (lum.zone in o.zones or lum.id in o.luminaires)),
        key=lambda o: -{"incident": 3, "maintenance": 2, "event": 1}[o.kind],
    )
    top = active[0] if active else None
    assert 0 <= tg.level <= 254
    assert tg.floor_level == class_level(lum.design_class, z.safety_floor)
    if tg.lit:
        maintenance_off = top is not None and top.kind == "maintenance" and top.off
        if maintenance_off and not z.safety_route:
            assert tg.level == 0
        else:
            assert tg.level >= tg.floor_level, (tg, top)
    elif top is None or top.kind == "event":
        assert tg.level == 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_never_below_floor_while_lit_norrkoping(data) -> None:
    """Invariant: while lit, no luminaire is below its zone's safety floor, whatever the
    schedule, presence or overrides; only maintenance 'off' outside a safety route is dark."""
    _check_floor(NK, *data.draw(scenario(NK)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_never_below_floor_while_lit_mini(data) -> None:
    _check_floor(MINI, *data.draw(scenario(MINI)))


def test_schedule_levels_follow_the_classes(mini) -> None:
    # night of Wed 25 Nov 2026: dusk ~14:48 UTC; late from 22:00 local (21:00 UTC)
    tg = evaluate(mini, "p3", datetime(2026, 11, 25, 18, tzinfo=UTC))
    assert (tg.period, tg.lighting_class.name, tg.level) == ("evening", "P2", 254)
    tg = evaluate(mini, "p3", datetime(2026, 11, 25, 21, 30, tzinfo=UTC))
    assert (tg.period, tg.lighting_class.name) == ("late", "P3")
    assert arc_level_to_percent(tg.level) >= 75.0 > arc_level_to_percent(tg.level - 1)
    tg = evaluate(mini, "p3", datetime(2026, 11, 26, 3, tzinfo=UTC))
    assert tg.period == "night" and tg.lighting_class.name == "P5"
    assert tg.level == tg.floor_level and tg.source == "floor"  # P5 is below the P4 floor
    tg = evaluate(mini, "p3", datetime(2026, 11, 26, 11, tzinfo=UTC))
    assert (tg.lit, tg.level, tg.source) == (False, 0, "off")


def test_dst_spring_forward_night(mini) -> None:
    # night of 28 March 2026; "night" starts 02:30 local, which does not exist: it happens at
    # the jump, 03:00 CEST = 01:00 UTC
    before = evaluate(mini, "p1", datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC))
    after = evaluate(mini, "p1", datetime(2026, 3, 29, 1, 0, tzinfo=UTC))
    assert (before.period, after.period) == ("late", "night")


def test_dst_fall_back_night(mini) -> None:
    # night of 24 October 2026; 02:30 happens twice, the first (00:30 UTC) counts
    assert evaluate(mini, "p1", datetime(2026, 10, 25, 0, 29, 59, tzinfo=UTC)).period == "late"
    assert evaluate(mini, "p1", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)).period == "night"
    assert evaluate(mini, "p1", datetime(2026, 10, 25, 1, 45, tzinfo=UTC)).period == "night"
    # 01:45 UTC is the second 02:45 local: still "night", the switch does not repeat


NIGHT = datetime(2026, 11, 25, 23, tzinfo=UTC)  # lit, period "late"


def test_override_priorities(mini) -> None:
    exp = NIGHT + timedelta(hours=1)
    incident = _ov(id="i", kind="incident", zones=["street"], **{"class": "P1"}, expires=exp)
    maint = _ov(id="m", kind="maintenance", zones=["street"], off=True, expires=exp)
    event = _ov(id="e", kind="event", zones=["street"], **{"class": "P2"}, expires=exp)
    full = class_level(mini.luminaire("s2").design_class, incident.lighting_class)
    assert evaluate(mini, "s2", NIGHT, overrides=[event, maint, incident]).level == full
    assert evaluate(mini, "s2", NIGHT, overrides=[event, maint]).level == 0  # not a safety route
    ev = evaluate(mini, "s2", NIGHT, overrides=[event])
    assert ev.source == "event:e" and ev.lighting_class.name == "P2"
    # incident never lowers: a P6 incident leaves the P5 schedule alone
    low = _ov(id="i2", kind="incident", zones=["street"], **{"class": "P6"}, expires=exp)
    assert evaluate(mini, "s2", NIGHT, overrides=[low]).source == "schedule"
    # expired overrides do nothing
    old = _ov(id="x", kind="maintenance", zones=["street"], off=True, expires=NIGHT)
    assert evaluate(mini, "s2", NIGHT, overrides=[old]).source == "schedule"


def test_maintenance_cannot_darken_a_safety_route(mini) -> None:
    off = _ov(id="m", kind="maintenance", luminaires=["p4"], off=True,
              expires=NIGHT + timedelta(hours=1))  # fmt: skip
    tg = evaluate(mini, "p4", NIGHT, overrides=[off])
    assert tg.level == tg.floor_level > 0
    # in daylight maintenance may switch it (burn test / off)
    noon = datetime(2026, 11, 25, 11, tzinfo=UTC)
    on = _ov(id="b", kind="maintenance", luminaires=["p4"], level_percent=100,
             expires=noon + timedelta(hours=1))  # fmt: skip
    assert evaluate(mini, "p4", noon, overrides=[on]).level == 254


def test_presence_corridor_boosts(mini) -> None:
    # path luminaires every 20 m; a detection at 61 m is nearest p3: corridor p2..p5
    presence = {"path": [Detection(61.0, NIGHT - timedelta(seconds=10))]}
    levels = {f"p{i}": evaluate(mini, f"p{i}", NIGHT, presence=presence) for i in range(10)}
    boosted = sorted(k for k, t in levels.items() if t.source == "presence")
    assert boosted == ["p2", "p3", "p4", "p5"]
    assert levels["p3"].fade_up_s == 1.0  # the presence fade-up
    # after the hold time (60 s) the boost is gone
    later = evaluate(mini, "p3", NIGHT + timedelta(seconds=51), presence=presence)
    assert later.source != "presence"
    # no boost in daylight
    noon = datetime(2026, 11, 25, 11, tzinfo=UTC)
    day = {"path": [Detection(61.0, noon)]}
    assert evaluate(mini, "p3", noon, presence=day).level == 0


def test_unknown_luminaire_and_naive_time(mini) -> None:
    with pytest.raises(KeyError, match="no luminaire 'zz'"):
        evaluate(mini, "zz", NIGHT)
    with pytest.raises(ValueError, match="no time zone"):
        evaluate(mini, "p1", datetime(2026, 1, 1))


def test_override_of_the_wrong_series_is_a_problem(mini) -> None:
    ov = _ov(id="i", kind="incident", zones=["path"], **{"class": "M1"},
             expires=NIGHT)  # fmt: skip
    assert [str(p) for p in override_problems(mini, ov)] == [
        "<override>: override.class: M1 does not fit zone path's P classes"
    ]
    with pytest.raises(ValueError, match="override i: class M1 does not fit zone path"):
        evaluate(mini, "p1", NIGHT - timedelta(hours=1), overrides=[ov])
