"""Invariants over random strategies that combine every feature of the model: per-zone
calendars, plain levels and part-night off, zones without a floor, per-zone switching with
astro limits and 24-hour zones, recurring events and overrides.

1. While a zone is lit no luminaire is below its safety floor — not in the evaluator and not
   in what the gateway executes from the compiled program (``gateway.levels.desired_levels``,
   the production path), which agrees with the evaluator outside fades.
2. The energy estimate equals a brute-force minute integration of the levels the gateway
   executes, with the power model written out here independently.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.levels import desired_levels
from lykta.strategy import compile_program, estimate_energy, evaluate, parse_strategy
from lykta.strategy.astronomy import utc_ms
from lykta.strategy.dali_curve import arc_level_to_percent
from lykta.strategy.schedule import night_plan

CLASSES = [f"P{i}" for i in range(1, 7)]
PERIODS = ("evening", "late", "night")
clock = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30]))


@st.composite
def setting(draw) -> str:
    kind = draw(st.sampled_from(["class", "level", "off"]))
    if kind == "class":
        return draw(st.sampled_from(CLASSES))
    if kind == "level":
        return f"{draw(st.integers(1, 100))}%"
    return "off"


@st.composite
def switching(draw) -> dict[str, Any] | None:
    if draw(st.booleans()):
        return None
    sw: dict[str, Any] = {}
    if draw(st.integers(0, 5)) == 0:
        sw["always_lit"] = True
    if draw(st.booleans()):
        sw["sun_elevation_deg"] = draw(st.sampled_from([-8.0, -6.0, -2.0, 0.0]))
    if draw(st.booleans()):
        sw["on_offset_min"] = draw(st.integers(-60, 60))
    for key in ("on_not_before", "on_not_after", "off_not_before", "off_not_after"):
        if draw(st.integers(0, 3)) == 0:
            sw[key] = draw(clock)
    return sw


@st.composite
def city(draw) -> dict[str, Any]:
    """A random strategy document with two or three zones on one gateway."""
    doc: dict[str, Any] = {
        "site": {"name": "R", "latitude": draw(st.sampled_from([58.59, 63.8, 67.9])),
                 "longitude": 16.19, "timezone": "Europe/Stockholm"},
        "profiles": {
            "a": {"periods": [{"name": "evening", "start": "dusk"},
                              {"name": "late", "start": draw(clock)},
                              {"name": "night", "start": "dawn-60"}]},
            "b": {"periods": [{"name": "evening", "start": "dusk+15"},
                              {"name": "late", "start": "23:00"},
                              {"name": "night", "start": "02:00"}]},
        },
        "calendar": [{"profile": "b", "weekdays": ["fri", "sat"]}, {"profile": "a"}],
        "calendars": {"own": [{"profile": "b"}]},
        "zones": {},
        "luminaires": [],
        "events": [],
        "overrides": [],
    }  # fmt: skip
    names = [f"z{i}" for i in range(draw(st.integers(2, 3)))]
    for zi, zn in enumerate(names):
        floor = draw(st.sampled_from([None, "P3", "P4", "P5", "P6"]))
        z: dict[str, Any] = {
            "kind": "pedestrian_cycle_path",
            "classes": {p: draw(setting()) for p in PERIODS},
            "fade_down_s": draw(st.sampled_from([0.0, 45.0, 90.0])),
        }
        if floor is not None:
            z["safety_floor"] = floor
            z["safety_route"] = draw(st.booleans())
            if draw(st.booleans()):
                z["presence"] = {"boost": "P1", "hold_s": 60}
        if draw(st.booleans()):
            z["calendar"] = "own"
        if (sw := draw(switching())) is not None:
            z["switching"] = sw
        doc["zones"][zn] = z
        for k in range(2):
            doc["luminaires"].append({
                "id": f"{zn}-{k}", "zone": zn, "position_m": 10.0 * k, "gateway": "gw",
                "bus": "b", "short_address": zi * 2 + k, "design_class": draw(st.sampled_from(
                    ["P1", "P2", "P3"])), "rated_power_w": draw(st.sampled_from([20.0, 35.0])),
                "standby_w": draw(st.sampled_from([0.0, 0.4])),
                "driver_loss_w": draw(st.sampled_from([0.0, 3.0])),
                **({"group": zi} if k == 0 else {}),
                **({"clo_maintenance_factor": 0.8} if draw(st.booleans()) else {}),
            })  # fmt: skip
        # grouped luminaires share a design class
    for i in range(draw(st.integers(0, 2))):
        doc["events"].append({
            "id": f"e{i}", "zones": draw(st.lists(st.sampled_from(names), min_size=1,
                                                   max_size=2, unique=True)),
            "class": draw(st.sampled_from(CLASSES)), "from": draw(clock), "to": draw(clock),
            **({"weekdays": [draw(st.sampled_from(["mon", "wed", "sat"]))]}
               if draw(st.booleans()) else {}),
        })  # fmt: skip
    return doc


NIGHTS = st.dates(date(2026, 1, 1), date(2026, 12, 30))


def _overrides(draw, doc: dict[str, Any], night: date) -> list[dict[str, Any]]:
    out = []
    base = datetime(night.year, night.month, night.day, 12, tzinfo=UTC)
    for i in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["incident", "event", "maintenance"]))
        ov: dict[str, Any] = {
            "id": f"o{i}", "kind": kind, "zones": [draw(st.sampled_from(list(doc["zones"])))],
            "starts": base + timedelta(minutes=draw(st.integers(0, 1400))),
        }  # fmt: skip
        ov["expires"] = ov["starts"] + timedelta(minutes=draw(st.integers(1, 600)))
        if kind == "maintenance":
            what = draw(st.sampled_from(["off", "level_percent", "class"]))
            ov[what] = {"off": True, "level_percent": float(draw(st.integers(0, 100))),
                        "class": draw(st.sampled_from(CLASSES))}[what]  # fmt: skip
        else:
            ov["class"] = draw(st.sampled_from(CLASSES))
        out.append(ov)
    return out


def _strategy(data):
    doc = data.draw(city())
    # a grouped luminaire's design class is its group's: one group, one class
    night = data.draw(NIGHTS)
    doc["overrides"] = _overrides(data.draw, doc, night)
    return parse_strategy(doc, "random.toml"), night


def _settled(points, t_ms: int) -> bool:
    return all(not (p.ts <= t_ms < p.ts + p.fade_ms) for p in points)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_floor_holds_and_the_gateway_runs_what_the_evaluator_says(data) -> None:
    s, night = _strategy(data)
    plan0 = night_plan(s, night)
    prog = compile_program(s, "gw", plan0.start, (plan0.end - plan0.start).total_seconds() / 3600)
    ids = [lum.id for lum in s.luminaires]
    for _ in range(12):
        t = plan0.start + timedelta(seconds=data.draw(st.integers(0, 86_399)))
        t_ms = utc_ms(t)
        street = desired_levels(prog, t_ms, ids, fail_safe_level=254)
        for lum in s.luminaires:
            z = s.zones[lum.zone]
            tg = evaluate(s, lum.id, t)
            zone_lit = night_plan(s, night, lum.zone).is_lit(t)
            assert tg.lit == zone_lit
            mprog = next(x for x in prog.luminaires if x.id == lum.id)
            maint_off = tg.source.startswith("maintenance:") and tg.level == 0
            if tg.lit and not (maint_off and not z.safety_route):
                assert tg.level >= tg.floor_level, (lum.id, t, tg)
                assert street[lum.id] >= mprog.floor_level == tg.floor_level, (lum.id, t)
            pts = mprog.points or next(g.points for g in prog.groups if g.group == lum.group)
            if _settled(pts, t_ms) and not maint_off:
                assert street[lum.id] == tg.level, (lum.id, t, tg, street[lum.id])


def _watts(lum, level: int) -> float:
    out = arc_level_to_percent(level)
    if out == 0:
        return lum.standby_w
    clo = 1.0 if lum.clo_maintenance_factor is None else (1 + lum.clo_maintenance_factor) / 2
    return lum.driver_loss_w + (lum.rated_power_w - lum.driver_loss_w) * clo * out / 100


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_energy_equals_a_minute_integration_of_what_the_gateway_runs(data) -> None:
    from lykta.strategy import program_level

    s, night = _strategy(data)
    plan0 = night_plan(s, night)
    hours = (plan0.end - plan0.start).total_seconds() / 3600
    prog = compile_program(s, "gw", plan0.start, hours)
    report = estimate_energy(s, night, night)
    for zn, ze in report.zones.items():
        lums = [x for x in s.luminaires if x.zone == zn]
        kwh, slack = 0.0, 0.0
        for lum in lums:
            m = next(x for x in prog.luminaires if x.id == lum.id)
            pts = m.points or next(g.points for g in prog.groups if g.group == lum.group)
            # minute sampling misses at most a minute (plus the fade) at each switch point
            slack += sum((p.fade_ms / 1000 + 60) / 3600 * lum.rated_power_w / 1000 for p in pts)
            t = prog.valid_from + 30_000
            while t < prog.valid_until:
                kwh += _watts(lum, program_level(prog, t, luminaire=lum.id)) / 60 / 1000
                t += 60_000
        assert abs(ze.kwh - kwh) <= slack + 1e-9, (zn, ze.kwh, kwh, slack)
