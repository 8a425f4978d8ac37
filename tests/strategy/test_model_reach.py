"""What the model expresses beyond one global schedule: per-zone calendars, plain levels and
part-night off, astro limits and per-zone switching, 24-hour zones, calendar events, honest
energy. Each proved on the evaluator (the one the preview, energy and compiler share)."""

from __future__ import annotations

import copy
import tomllib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from lykta.strategy import (
    StrategyError,
    compile_program,
    estimate_energy,
    evaluate,
    parse_strategy,
    program_level,
)
from lykta.strategy.astronomy import utc_ms
from lykta.strategy.dali_curve import arc_level_at_least, arc_level_to_percent
from lykta.strategy.schedule import night_plan
from lykta.strategy.wallclock import zone as tzone

from .conftest import NORRKOPING, mini_doc

TZ = tzone("Europe/Stockholm")


def _local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=TZ).astimezone(UTC)


def _problems(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(StrategyError) as e:
        parse_strategy(doc, "strategy.toml")
    return [str(p) for p in e.value.problems]


def _nk_doc() -> dict[str, Any]:
    doc = tomllib.loads(NORRKOPING.read_text(encoding="utf-8"))
    return doc


def _nk(doc: dict[str, Any]):
    return parse_strategy(doc, "strategy.toml", NORRKOPING.parent)


# --- per-zone calendars ----------------------------------------------------------------------


def test_residential_dimming_does_not_touch_the_safety_routes() -> None:
    """Moving Ektorp's residential dimming changes Ektorp only, minute by minute and in kWh."""
    base = _nk(_nk_doc())
    doc = _nk_doc()
    doc["profiles"]["residential_weekday"]["periods"][1]["start"] = "22:00"
    moved = _nk(doc)
    night = date(2026, 6, 17)  # a June Wednesday: the shared "late" period starts 22:00 too
    lum_of = {z: next(x.id for x in base.luminaires if x.zone == z) for z in base.zones}
    t = night_plan(base, night).start
    changed: set[str] = set()
    while t < night_plan(base, night).end:
        for z, lid in lum_of.items():
            if evaluate(base, lid, t).level != evaluate(moved, lid, t).level:
                changed.add(z)
        t += timedelta(minutes=5)
    assert changed == {"ektorp"}
    # in September it is dark at 22:30: Ektorp dims at 22:00 now, Strömstråket is P3 in both
    at = _local(2026, 9, 16, 22, 30)
    assert evaluate(moved, lum_of["ektorp"], at).setting == "P6"
    assert evaluate(base, lum_of["ektorp"], at).setting == "P4"
    assert evaluate(moved, lum_of["stromstraket"], at).setting == "P3"
    e0 = estimate_energy(base, date(2026, 11, 1), date(2026, 11, 30))
    e1 = estimate_energy(moved, date(2026, 11, 1), date(2026, 11, 30))
    for z in base.zones:
        if z == "ektorp":
            assert e1.zones[z].kwh < e0.zones[z].kwh
        else:
            assert e1.zones[z].kwh == pytest.approx(e0.zones[z].kwh, rel=1e-12), z


def test_calendar_problems_have_key_paths() -> None:
    doc = mini_doc()
    doc["profiles"]["short"] = {"periods": [{"name": "evening", "start": "dusk"},
                                            {"name": "quiet", "start": "23:00"}]}  # fmt: skip
    doc["calendars"] = {"streets": [{"profile": "short", "weekdays": ["fri"]}],
                        "other": [{"profile": "nope"}]}  # fmt: skip
    doc["zones"]["street"]["calendar"] = "streets"
    doc["zones"]["path"]["calendar"] = "missing"
    probs = _problems(doc)
    assert ("strategy.toml: calendars.streets[0]: the last rule must have no conditions, so every "
            "night has a profile") in probs  # fmt: skip
    assert "strategy.toml: calendars.other[0].profile: no profile 'nope'" in probs
    assert ("strategy.toml: zones.street.classes: no class for period 'quiet' (used by profile "
            "'short')") in probs  # fmt: skip
    assert any(p.startswith("strategy.toml: zones.path.calendar: no calendar 'missing'")
               for p in probs)  # fmt: skip


def test_zone_calendar_picks_its_own_profile() -> None:
    doc = mini_doc()
    doc["profiles"]["short"] = {"periods": [{"name": "evening", "start": "dusk"},
                                            {"name": "night", "start": "21:00"}]}  # fmt: skip
    doc["calendars"] = {"streets": [{"profile": "short"}]}
    doc["zones"]["street"]["calendar"] = "streets"
    s = parse_strategy(doc)
    at = _local(2026, 11, 25, 21, 30)
    st, path = evaluate(s, "s1", at), evaluate(s, "p1", at)
    assert (st.profile, st.period, st.setting) == ("short", "night", "P6")
    assert (path.profile, path.period, path.setting) == ("weekday", "evening", "P2")


# --- plain levels and part-night off --------------------------------------------------------


def _nattslackning() -> dict[str, Any]:
    doc = mini_doc()
    z = doc["zones"]["street"]
    z.pop("safety_floor")
    z["classes"] = {"evening": "60%", "late": "30%", "night": "off"}
    return doc


def test_plain_levels_and_part_night_off() -> None:
    s = parse_strategy(_nattslackning())
    ev = evaluate(s, "s1", _local(2026, 11, 25, 18))
    late = evaluate(s, "s1", _local(2026, 11, 25, 23))
    night = evaluate(s, "s1", _local(2026, 11, 26, 3))
    assert (ev.level, ev.setting) == (arc_level_at_least(60), "60%")
    assert (late.level, late.setting) == (arc_level_at_least(30), "30%")
    assert night.lit and (night.level, night.setting, night.floor_level) == (0, "off", 0)
    # the safety route next to it keeps its floor
    assert evaluate(s, "p1", _local(2026, 11, 26, 3)).level >= evaluate(s, "p1", _local(
        2026, 11, 26, 3)).floor_level > 0  # fmt: skip
    # the compiled program switches the group off and the gateway executes it
    prog = compile_program(s, "gw1", _local(2026, 11, 25, 12), 24)
    assert program_level(prog, utc_ms(_local(2026, 11, 26, 3)), luminaire="s1") == 0
    assert program_level(prog, utc_ms(_local(2026, 11, 26, 3)), luminaire="p1") > 0


def test_floor_wins_over_off_and_low_levels_with_a_warning() -> None:
    doc = mini_doc()
    doc["zones"]["street"]["classes"] = {"evening": "P4", "late": "1%", "night": "off"}
    s = parse_strategy(doc, "strategy.toml")
    warnings = [str(w) for w in s.warnings]
    assert any(w.startswith("strategy.toml: zones.street.classes.night: off in a zone with "
                            "safety floor P6") for w in warnings)  # fmt: skip
    assert any(w.startswith("strategy.toml: zones.street.classes.late: 1% is below the safety "
                            "floor P6") for w in warnings)  # fmt: skip
    tg = evaluate(s, "s1", _local(2026, 11, 26, 3))
    assert tg.level == tg.floor_level > 0 and tg.source == "floor"


def test_levels_problems() -> None:
    doc = mini_doc()
    doc["zones"]["street"]["classes"]["late"] = "130%"
    doc["zones"]["path"].pop("safety_floor")  # a safety route without a floor
    probs = _problems(doc)
    assert "strategy.toml: zones.street.classes.late: '130%': a level is 0–100 %" in probs
    assert "strategy.toml: zones.path: a safety route needs a safety_floor" in probs


# --- switching: astro limits, own elevation, around the clock --------------------------------


def _switching(**kw: Any):
    doc = mini_doc()
    doc["zones"]["street"]["switching"] = kw
    return parse_strategy(doc)


def test_astro_limits() -> None:
    night = date(2026, 4, 14)  # dawn (−4°) about 05:15 local, dusk about 20:45
    base = night_plan(parse_strategy(mini_doc()), night, "street").lit
    kept = night_plan(_switching(off_not_before="07:30"), night, "street").lit
    assert kept[0][0] == base[0][0] and kept[-1][1] == _local(2026, 4, 15, 7, 30)
    late_on = night_plan(_switching(on_not_before="22:15"), night, "street").lit
    assert late_on[0][0] == _local(2026, 4, 14, 22, 15)
    early_off = night_plan(_switching(off_not_after="01:00"), night, "street").lit
    assert early_off[-1][1] == _local(2026, 4, 15, 1, 0)
    early_on = night_plan(_switching(on_not_after="19:00"), night, "street").lit
    assert early_on[0][0] == _local(2026, 4, 14, 19, 0)
    # the limits shape the zone only; the path next to it keeps the sun's times
    s = _switching(off_not_before="07:30")
    at = _local(2026, 4, 15, 7)
    assert evaluate(s, "s1", at).lit and not evaluate(s, "p1", at).lit
    assert evaluate(s, "s1", at).level >= evaluate(s, "s1", at).floor_level > 0
    # midnight sun stays unlit: limits shape nights that have a lit window
    far = mini_doc()
    far["site"]["latitude"] = 68.35
    far["zones"]["street"]["switching"] = {"on_not_after": "20:00", "off_not_before": "06:00"}
    assert night_plan(parse_strategy(far), date(2026, 6, 21), "street").lit == ()


def test_own_switching_elevation_and_24_hour_zone() -> None:
    night = date(2026, 11, 25)
    base = night_plan(parse_strategy(mini_doc()), night, "street").lit[0]
    deeper = night_plan(_switching(sun_elevation_deg=-8.0), night, "street").lit[0]
    assert deeper[0] > base[0] and deeper[1] < base[1]
    later = night_plan(_switching(on_offset_min=15), night, "street").lit[0]
    assert later[0] - base[0] == timedelta(minutes=15) and later[1] == base[1]
    tunnel = _switching(always_lit=True)
    noon = _local(2026, 11, 25, 13)
    tg = evaluate(tunnel, "s1", noon)
    assert tg.lit and tg.level >= tg.floor_level > 0 and tg.setting == "P4"
    assert not evaluate(tunnel, "p1", noon).lit
    # the tunnel's dusk is still the sun's: "late" at 22:00, "evening" from sunset on
    plan = night_plan(tunnel, night, "street")
    assert plan.starts[0] == night_plan(tunnel, night, "path").lit[0][0]


def test_lux_switching_excludes_zone_switching() -> None:
    doc = mini_doc()
    doc["switching"]["lux"] = {"sensor": "lux-1", "on_below_lx": 20, "off_above_lx": 40}
    doc["zones"]["street"]["switching"] = {"always_lit": True}
    assert any(p.startswith("strategy.toml: zones.street.switching: not possible with lux")
               for p in _problems(doc))  # fmt: skip


def test_program_lit_windows_are_where_every_floored_zone_is_lit() -> None:
    s = _switching(off_not_before="07:30")
    prog = compile_program(s, "gw1", _local(2026, 4, 14, 12), 24)
    path = night_plan(s, date(2026, 4, 14), "path").lit
    assert [(w.from_ts, w.until_ts) for w in prog.lit] == [
        (utc_ms(a), utc_ms(b)) for a, b in path
    ]
    # the street's own extra lit half-hours still run at or above its floor
    t = utc_ms(_local(2026, 4, 15, 7, 15))
    assert program_level(prog, t, luminaire="s1") >= next(
        x.floor_level for x in prog.luminaires if x.id == "s1"
    ) > 0


# --- calendar events -----------------------------------------------------------------------


def _market() -> dict[str, Any]:
    doc = mini_doc()
    doc["events"] = [{"id": "julmarknad", "zones": ["street"], "class": "P3", "from": "15:00",
                      "to": "21:00", "weekdays": ["sat"],
                      "dates": [{"from": "12-01", "to": "12-23"}]}]  # fmt: skip
    return doc


def test_recurring_event_runs_on_its_nights_only() -> None:
    s = parse_strategy(_market())
    sat, fri, jan = date(2026, 12, 12), date(2026, 12, 11), date(2027, 1, 9)
    for night, expect in ((sat, "P3"), (fri, "P4"), (jan, "P4")):
        at = datetime.combine(night, datetime.min.time()).replace(hour=20, tzinfo=TZ)
        tg = evaluate(s, "s1", at.astimezone(UTC))
        assert tg.setting == expect, night
        if expect == "P3":
            assert tg.source == "event:julmarknad"
    # it ends at 21:00 local; the path is untouched
    assert evaluate(s, "s1", _local(2026, 12, 12, 21, 1)).setting == "P4"
    assert evaluate(s, "p1", _local(2026, 12, 12, 20)).source == "schedule"
    # the compiled program carries it and the energy counts it
    prog = compile_program(s, "gw1", _local(2026, 12, 12, 12), 24)
    lvl = program_level(prog, utc_ms(_local(2026, 12, 12, 20)), luminaire="s2")
    assert lvl == 254  # P3 on a P3 luminaire
    e0 = estimate_energy(parse_strategy(mini_doc()), sat, sat)
    e1 = estimate_energy(s, sat, sat)
    watts = sum(x["rated_power_w"] for x in mini_doc()["luminaires"] if x["zone"] == "street")
    p4 = arc_level_to_percent(evaluate(parse_strategy(mini_doc()), "s1", _local(
        2026, 12, 12, 20)).level)  # fmt: skip
    # from dusk (after 15:00 in December: events apply while lit) to 21:00 at 100 %, not P4
    dusk = night_plan(s, sat, "street").lit[0][0]
    hours = (_local(2026, 12, 12, 21) - dusk).total_seconds() / 3600
    assert 5 < hours < 6
    assert e1.zones["street"].kwh - e0.zones["street"].kwh == pytest.approx(
        watts * (100 - p4) / 100 * hours / 1000, rel=1e-9
    )


def test_event_brighter_than_the_luminaires_is_a_warning() -> None:
    doc = _market()
    doc["events"][0]["class"] = "P1"  # the street's luminaires are P3
    w = [str(x) for x in parse_strategy(doc, "strategy.toml").warnings]
    assert any(x.startswith("strategy.toml: events[0].class: P1 is brighter than design class P3")
               for x in w)  # fmt: skip


def test_event_problems() -> None:
    doc = _market()
    doc["events"][0]["zones"] = ["street", "ghost"]
    doc["events"][0]["class"] = "M2"
    probs = _problems(doc)
    assert "strategy.toml: events[0].zones: no zone 'ghost'" in probs
    assert "strategy.toml: events[0].class: M2 does not fit zone street's P classes" in probs


# --- honest energy -------------------------------------------------------------------------


def test_standby_driver_loss_and_clo_energy() -> None:
    doc = mini_doc()
    for lum in doc["luminaires"]:
        if lum["zone"] == "street":
            lum.update(standby_w=0.5, driver_loss_w=2.0, clo_maintenance_factor=0.8)
    night = date(2026, 11, 25)
    plain = estimate_energy(parse_strategy(mini_doc()), night, night).zones["street"]
    s = parse_strategy(doc)
    honest = estimate_energy(s, night, night).zones["street"]
    # brute force, independently: every minute of the night, per luminaire
    plan = night_plan(s, night, "street")
    t, kwh = plan.start, 0.0
    while t < plan.end:
        for lum in (x for x in s.luminaires if x.zone == "street"):
            out = arc_level_to_percent(evaluate(s, lum.id, t).level)
            w = 0.5 if out == 0 else 2.0 + (lum.rated_power_w - 2.0) * 0.9 * out / 100
            kwh += w / 60 / 1000
        t += timedelta(minutes=1)
    assert honest.kwh == pytest.approx(kwh, rel=2e-3)  # minute sampling vs exact edges
    assert honest.standby_kwh > 0 and honest.kwh != plain.kwh
    assert sum(honest.months.values()) == pytest.approx(honest.kwh)


def test_inventory_energy_columns_are_validated() -> None:
    doc = mini_doc()
    doc["luminaires"][0]["driver_loss_w"] = 40  # rated 30
    doc["luminaires"][1]["clo_maintenance_factor"] = 1.5
    probs = _problems(doc)
    assert ("strategy.toml: luminaires[0]: driver_loss_w must be below rated_power_w (it is part "
            "of it)") in probs  # fmt: skip
    assert any(p.startswith("strategy.toml: luminaires[1].clo_maintenance_factor:") for p in probs)


def test_norrkoping_example_uses_the_new_reach() -> None:
    s = _nk(_nk_doc())
    assert s.zones["ektorp"].calendar == "residential"
    assert s.zones["stromstraket"].calendar is None
    assert s.zone_switching("resecentrum").always_lit
    noon = _local(2026, 12, 5, 13)
    lid = next(x.id for x in s.luminaires if x.zone == "resecentrum")
    assert evaluate(s, lid, noon).lit and evaluate(s, lid, noon).setting == "C2"
    park = next(x.id for x in s.luminaires if x.zone == "strompparken")
    assert evaluate(s, park, _local(2026, 12, 5, 17)).source == "event:julmarknad"
    assert copy.deepcopy(s.events[0]).id == "julmarknad"


# --- the preview PNG -----------------------------------------------------------------------


def test_preview_png_says_what_a_person_needs(tmp_path) -> None:
    from lykta.strategy import preview_night
    from lykta.strategy.preview import plot_night

    s = _nk(_nk_doc())
    night = date(2026, 10, 24)  # the autumn DST night
    png = tmp_path / "n.png"
    summary = plot_night(s, "ektorp", night, preview_night(s, "ektorp", night), png)
    on, off = night_plan(s, night, "ektorp").lit[0]
    kwh = estimate_energy(s, night, night).zones["ektorp"].kwh
    assert summary.startswith(
        f"on {on.astimezone(TZ):%H:%M} CEST – off {off.astimezone(TZ):%H:%M} CET"
    )
    assert f"{kwh:,.1f} kWh this night (120 luminaires)" in summary
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    far = mini_doc()
    far["site"]["latitude"] = 68.35
    fs = parse_strategy(far)
    summer = date(2026, 6, 21)
    got = plot_night(fs, "path", summer, preview_night(fs, "path", summer), tmp_path / "m.png")
    assert got.startswith("no lit window (midnight sun)")
    tunnel = plot_night(s, "resecentrum", night, preview_night(s, "resecentrum", night),
                        tmp_path / "t.png")  # fmt: skip
    assert tunnel.startswith("lit around the clock") and "more than all-on" in tunnel


def test_a_copy_with_other_zones_does_not_reuse_the_originals_night_plans() -> None:
    s = parse_strategy(mini_doc())
    night = date(2026, 11, 25)
    before = night_plan(s, night, "street").lit
    street = s.zones["street"].model_copy(update={"switching": _switching(
        always_lit=True).zones["street"].switching})  # fmt: skip
    c = s.model_copy(update={"zones": {**s.zones, "street": street}})
    assert night_plan(c, night, "street").lit != before
    assert night_plan(s, night, "street").lit == before
    assert c.luminaire("s1").zone == "street"
