"""Incident overrides, the pure part: area selection, caps, commands per gateway and level."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.incidents import (
    IncidentError,
    Point,
    distance_m,
    incident_override,
    luminaires_within,
    override_commands,
)
from lykta.strategy import Strategy, class_level
from lykta.strategy.en13201 import LightingClass

NOW = 1_790_000_000_000


def test_distance_and_radius() -> None:
    # one arc-minute of latitude is a nautical mile
    assert distance_m(58.0, 16.0, 58.0 + 1 / 60, 16.0) == pytest.approx(1853, rel=0.002)
    pos = {"a": (58.59, 16.19), "b": (58.5905, 16.19), "c": (None, None), "d": (58.6, 16.19)}
    assert luminaires_within(Point(58.59, 16.19, 60), pos) == ["a", "b"]


def test_request_errors(norrkoping: Strategy) -> None:
    kw = dict(lighting_class="P1", now_ms=NOW, max_minutes=120)
    with pytest.raises(IncidentError, match="exceeds the cap of 120 min"):
        incident_override(norrkoping, "i", minutes=121, zones=["stromstraket"], **kw)
    with pytest.raises(IncidentError, match="names no zones and no luminaires"):
        incident_override(norrkoping, "i", minutes=10, **kw)
    with pytest.raises(IncidentError, match="no zone 'nowhere'"):
        incident_override(norrkoping, "i", minutes=10, zones=["nowhere"], **kw)
    with pytest.raises(IncidentError, match="no luminaire 'X-1'"):
        incident_override(norrkoping, "i", minutes=10, luminaires=["X-1"], **kw)
    with pytest.raises(IncidentError, match="class: P9 is not an EN 13201 class"):
        incident_override(norrkoping, "i", minutes=10, zones=["ektorp"],
                          **{**kw, "lighting_class": "P9"})  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_commands_cover_exactly_the_area_at_the_class_level(
    norrkoping: Strategy, data: st.DataObject
) -> None:
    """Invariant: the commands name every luminaire of the area exactly once, on its own
    gateway, at the arc level of the requested class for its design class, until the
    override's expiry."""
    series = data.draw(st.sampled_from(["P", "C", "M"]))
    zones = [n for n, z in norrkoping.zones.items() if z.safety_floor.series == series]
    chosen = data.draw(st.lists(st.sampled_from(zones), min_size=1, unique=True))
    cls = data.draw(st.sampled_from([c for c in ("P1", "P3", "C1", "C2", "M1", "M3")
                                     if c[0] == series]))  # fmt: skip
    minutes = data.draw(st.integers(1, 240))
    ov = incident_override(norrkoping, "inc-1", lighting_class=cls, now_ms=NOW,
                           minutes=minutes, max_minutes=240, zones=chosen)  # fmt: skip
    cmds = override_commands(norrkoping, ov)
    seen: list[str] = []
    for gw, arg_list in cmds.items():
        ids = [a["id"] for a in arg_list]
        assert len(set(ids)) == len(ids)
        for a in arg_list:
            assert a["until_ms"] == NOW + minutes * 60_000 and a["mode"] == "raise"
            assert a["override"]["kind"] == "incident" and a["override"]["class"] == cls
            for lid in a["luminaires"]:
                lum = norrkoping.luminaire(lid)
                assert lum.gateway == gw
                assert a["level"] == class_level(lum.design_class, LightingClass(cls))
            seen += a["luminaires"]
    expected = sorted(lum.id for lum in norrkoping.luminaires if lum.zone in chosen)
    assert sorted(seen) == expected


def test_maintenance_levels_and_errors(norrkoping: Strategy) -> None:
    from controller.incidents import maintenance_override, override_level
    from lykta.strategy.dali_curve import arc_level_at_least

    kw = dict(now_ms=NOW, minutes=60, max_minutes=720, zones=["ektorp"])
    half = maintenance_override(norrkoping, "m1", level_percent=50, **kw)
    [cmd] = override_commands(norrkoping, half)["gw-ektorp"]
    assert cmd["mode"] == "set" and cmd["level"] == arc_level_at_least(50)
    assert cmd["override"]["kind"] == "maintenance" and len(cmd["luminaires"]) == 120
    off = maintenance_override(norrkoping, "m2", off=True, **kw)
    assert override_level(off, LightingClass("P4")) == 0
    p6 = maintenance_override(norrkoping, "m3", lighting_class="P6", **kw)
    assert override_level(p6, LightingClass("P4")) == class_level(
        LightingClass("P4"), LightingClass("P6"))  # fmt: skip
    with pytest.raises(IncidentError, match="exactly one of class, level_percent, off"):
        maintenance_override(norrkoping, "m4", off=True, level_percent=10, **kw)
    with pytest.raises(IncidentError, match="exceeds the cap of 720 min"):
        maintenance_override(norrkoping, "m5", off=True, **{**kw, "minutes": 721})
