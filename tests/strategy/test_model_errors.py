"""Loading: every problem is reported with file, key path and reason; nothing half-loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from lykta.strategy import StrategyError, load_strategy, parse_strategy

from .conftest import NORRKOPING, mini_doc


def _problems(doc: dict, file: str = "strategy.toml") -> list[str]:
    with pytest.raises(StrategyError) as e:
        parse_strategy(doc, file)
    return [str(p) for p in e.value.problems]


def test_example_loads(norrkoping) -> None:
    assert len(norrkoping.zones) >= 5
    assert len(norrkoping.luminaires) >= 300
    assert len(norrkoping.gateways()) >= 3


def test_bad_class_names_the_key_path() -> None:
    doc = mini_doc()
    doc["zones"]["path"]["safety_floor"] = "P7"
    assert _problems(doc) == ["strategy.toml: zones.path.safety_floor: P7 is not an EN 13201 class"]


def test_all_problems_are_listed() -> None:
    doc = mini_doc()
    doc["zones"]["street"]["classes"]["late"] = "X1"
    doc["site"]["timezone"] = "Mars/Olympus"
    doc["switching"]["typo"] = 1
    doc["luminaires"][3]["short_address"] = 64
    doc["luminaires"][4]["zone"] = "nowhere"
    probs = _problems(doc)
    assert (
        'strategy.toml: zones.street.classes.late: X1 is not an EN 13201 class, a level ("30%") '
        'or "off"' in probs
    )
    assert any(p.startswith("strategy.toml: site.timezone: 'Mars/Olympus' is not") for p in probs)
    assert "strategy.toml: switching.typo: unknown key" in probs
    assert any(p.startswith("strategy.toml: luminaires[3].short_address:") for p in probs)
    # the reference check still runs next to the structural errors
    assert "strategy.toml: luminaires[4].zone: no zone 'nowhere'" in probs
    # a zone that is broken is reported once, not again where it is referenced
    doc = mini_doc()
    doc["zones"]["path"]["safety_floor"] = "P7"
    doc["calendar"].insert(0, {"profile": "nope", "weekdays": ["fri"]})
    assert _problems(doc) == [
        "strategy.toml: zones.path.safety_floor: P7 is not an EN 13201 class",
        "strategy.toml: calendar[0].profile: no profile 'nope'",
    ]


def test_cross_references() -> None:
    doc = mini_doc()
    doc["calendar"].insert(0, {"profile": "holiday", "special_nights": ["nyårsafton"]})
    doc["zones"]["street"]["classes"].pop("night")
    doc["luminaires"][4]["zone"] = "nowhere"
    doc["luminaires"][5]["design_class"] = "M2"
    doc["luminaires"][6]["short_address"] = 7
    doc["luminaires"][12]["bus"] = "b1"
    doc["luminaires"][12]["group"] = 0
    doc["luminaires"][12]["short_address"] = 40
    probs = _problems(doc)
    assert "strategy.toml: calendar[0].profile: no profile 'holiday'" in probs
    assert (
        "strategy.toml: zones.street.classes: no class for period 'night' (used by profile "
        "'weekday')" in probs
    )
    assert "strategy.toml: luminaires[4].zone: no zone 'nowhere'" in probs
    assert any(p.startswith("strategy.toml: luminaires[5].design_class: M2 cannot") for p in probs)
    assert any(
        p.startswith("strategy.toml: luminaires[7].short_address: 7 on gw1/b1") for p in probs
    )
    assert any(
        p.startswith("strategy.toml: luminaires[12].group: group 0 on gw1/b1 mixes") for p in probs
    )


def test_calendar_must_end_unconditionally_and_special_nights_known() -> None:
    doc = mini_doc()
    doc["calendar"] = [{"profile": "weekday", "special_nights": ["walpurgis"]}]
    probs = _problems(doc)
    assert any("calendar[0].special_nights: unknown special night(s) walpurgis" in p for p in probs)
    doc["calendar"] = [{"profile": "weekday", "weekdays": ["fri"]}]
    assert _problems(doc) == [
        "strategy.toml: calendar[0]: the last rule must have no conditions, so every night has a "
        "profile"
    ]


def test_override_rules() -> None:
    doc = mini_doc()
    doc["overrides"] = [
        {"id": "a", "kind": "incident", "zones": ["path"], "expires": "2026-01-01T00:00:00+01:00"},
        {"id": "b", "kind": "maintenance", "zones": ["ghost"], "off": True,
         "expires": "2026-01-01T00:00:00+01:00"},
        {"id": "c", "kind": "event", "zones": ["path"], "class": "P1",
         "expires": "2026-01-01T00:00:00"},
    ]  # fmt: skip
    probs = _problems(doc)
    assert "strategy.toml: overrides[0]: an incident override needs a class" in probs
    assert any(
        p.startswith("strategy.toml: overrides[2].expires: needs a time zone") for p in probs
    )


def test_inventory_rows_are_located(tmp_path: Path) -> None:
    text = NORRKOPING.read_text(encoding="utf-8")
    (tmp_path / "strategy.toml").write_text(text, encoding="utf-8")
    inv = (NORRKOPING.parent / "inventory.csv").read_text(encoding="utf-8").splitlines()
    fields = inv[2].split(",")
    fields[1] = "nowhere"
    inv[2] = ",".join(fields)
    fields = inv[5].split(",")
    fields[7] = "P9"
    inv[5] = ",".join(fields)
    (tmp_path / "inventory.csv").write_text("\n".join(inv) + "\n", encoding="utf-8")
    with pytest.raises(StrategyError) as e:
        load_strategy(tmp_path / "strategy.toml")
    probs = [str(p) for p in e.value.problems]
    assert "inventory.csv: line 3: zone: no zone 'nowhere'" in probs
    assert "inventory.csv: line 6: design_class: P9 is not an EN 13201 class" in probs


def test_unreadable_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match="cannot read"):
        load_strategy(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[site\nname=", encoding="utf-8")
    with pytest.raises(StrategyError, match="bad.toml: not valid TOML"):
        load_strategy(bad)


def test_geojson_inventory(tmp_path: Path) -> None:
    import json

    doc = mini_doc()
    feats = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [16.19, 58.59]},
         "properties": lum}
        for lum in doc.pop("luminaires")
    ]  # fmt: skip
    (tmp_path / "inv.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": feats}), encoding="utf-8"
    )
    doc["inventory"] = "inv.geojson"
    s = parse_strategy(doc, "s.toml", tmp_path)
    assert len(s.luminaires) == 15
    feats[2]["properties"]["rated_power_w"] = -1
    (tmp_path / "inv.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": feats}), encoding="utf-8"
    )
    with pytest.raises(StrategyError) as e:
        parse_strategy(doc, "s.toml", tmp_path)
    assert str(e.value.problems[0]).startswith(
        "inv.geojson: features[2].properties.rated_power_w: Input should be greater than 0"
    )
