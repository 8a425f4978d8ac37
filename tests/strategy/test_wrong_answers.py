"""Issue 13's wrong answers, each proved fixed: energy with overrides inside a segment, local
``--start``, DST offsets in the text preview, silently accepted inputs, no tracebacks."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lykta.cli.main import app
from lykta.cli.strategy import compare_summary
from lykta.contract import Program, decode
from lykta.strategy import StrategyError, estimate_energy, load_strategy, parse_strategy
from lykta.strategy.model import Override

from .conftest import NORRKOPING, mini_doc

runner = CliRunner()


def _problems(doc: dict) -> list[str]:
    with pytest.raises(StrategyError) as e:
        parse_strategy(doc, "strategy.toml")
    return [str(p) for p in e.value.problems]


def test_energy_counts_an_override_inside_a_segment(norrkoping) -> None:
    """Maintenance-off on Söderleden 19:00–21:00: two dark hours inside the evening period."""
    night = date(2026, 11, 25)
    base = estimate_energy(norrkoping, night, night)
    off = Override(id="m", kind="maintenance", zones=["soderleden"], off=True,
                   starts=datetime(2026, 11, 25, 18, tzinfo=UTC),
                   expires=datetime(2026, 11, 25, 20, tzinfo=UTC))  # fmt: skip
    r = estimate_energy(norrkoping.with_overrides([*norrkoping.overrides, off]), night, night)
    watts = sum(lum.rated_power_w for lum in norrkoping.luminaires if lum.zone == "soderleden")
    # evening class M2 from the zone's design class, for exactly two hours
    from lykta.strategy.dali_curve import arc_level_to_percent
    from lykta.strategy.evaluator import evaluate

    lum = next(x for x in norrkoping.luminaires if x.zone == "soderleden")
    level = evaluate(norrkoping, lum.id, datetime(2026, 11, 25, 18, 30, tzinfo=UTC)).level
    assert level == 254  # the scheduled level, not the maintenance one (planned list only)
    expected = watts * arc_level_to_percent(level) / 100 * 2 / 1000
    saved = base.zones["soderleden"].kwh - r.zones["soderleden"].kwh
    assert saved == pytest.approx(expected, rel=1e-9)
    for z in norrkoping.zones:
        if z != "soderleden":
            assert r.zones[z].kwh == pytest.approx(base.zones[z].kwh, rel=1e-12)


def test_compile_start_without_offset_is_site_local(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    res = runner.invoke(app, ["strategy", "compile", str(NORRKOPING), "--gateway", "gw-ektorp",
                              "--start", "2026-11-25T12:00", "--hours", "1", "-o", str(out)])
    assert res.exit_code == 0, res.output
    prog = decode(out.read_bytes(), Program)
    assert prog.valid_from == int(datetime(2026, 11, 25, 11, tzinfo=UTC).timestamp() * 1000)
    res = runner.invoke(app, ["strategy", "compile", "--help"])
    assert "site's time zone" in " ".join(res.output.split())


def test_text_preview_shows_the_offset_where_it_changes() -> None:
    res = runner.invoke(app, ["strategy", "preview", str(NORRKOPING), "--zone", "stromstraket",
                              "--date", "2026-10-24"])  # fmt: skip
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if "│" in ln]
    assert "12:00 CEST" in lines[0]
    cet = [i for i, ln in enumerate(lines) if "CET " in ln]
    assert len(cet) == 1
    # the repeated 02:00 is told apart from the first one
    assert "02:00 CET" in lines[cet[0]]
    assert any("02:30" in ln for ln in lines[: cet[0]])


def test_silently_accepted_inputs_become_errors_or_warnings() -> None:
    doc = mini_doc()
    doc["profiles"]["weekday"]["periods"].append({"name": "again", "start": "22:00"})
    doc["calendar"].insert(0, {"profile": "weekday", "dates": [{"from": "13-45", "to": "02-30"}]})
    probs = _problems(doc)
    assert (
        "strategy.toml: profiles.weekday.periods: periods 'late' and 'again' both start at 22:00 "
        "(the later would always win)" in probs
    )
    bad = "is not a date (MM-DD or YYYY-MM-DD)"
    assert f"strategy.toml: calendar[0].dates[0].from: '13-45' {bad}" in probs
    assert f"strategy.toml: calendar[0].dates[0].to: '02-30' {bad}" in probs
    ok = mini_doc()
    ok["calendar"].insert(0, {"profile": "weekday", "dates": [{"from": "02-29", "to": "03-01"}]})
    ok["zones"]["street"]["classes"]["evening"] = "P1"  # the street's luminaires are P3
    w = [str(x) for x in parse_strategy(ok, "strategy.toml").warnings]
    assert any(
        x.startswith("strategy.toml: zones.street.classes.evening: P1 is brighter than design "
                     "class P3 of 5 luminaire(s)") for x in w
    )  # fmt: skip
    # the mini path zone dims to P5 at night below its P4 floor
    assert ("strategy.toml: zones.path.classes.night: P5 is below the safety floor P4: the floor "
            "applies while lit") in w  # fmt: skip


def test_check_lists_an_invalid_overrides_references_too() -> None:
    doc = mini_doc()
    doc["overrides"] = [{"id": "x", "kind": "incident", "zones": ["ghost"],
                         "luminaires": ["nobody"], "expires": "2026-01-01T00:00:00+01:00"}]
    probs = _problems(doc)
    assert probs == [
        "strategy.toml: overrides[0]: an incident override needs a class",
        "strategy.toml: overrides[0].zones: no zone 'ghost'",
        "strategy.toml: overrides[0].luminaires: no luminaire 'nobody'",
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary (byte 0x89 at offset 0)"),
        ("[site]\nname = \"Norrk\u00f6ping\"\n".encode("latin-1"), "line 2: not UTF-8 text"),
        (b"x = " + b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    ],
)
def test_unreadable_strategy_files_are_problems_not_tracebacks(
    tmp_path: Path, data: bytes, reason: str
) -> None:
    f = tmp_path / "s.toml"
    f.write_bytes(data)
    with pytest.raises(StrategyError) as e:
        load_strategy(f)
    assert reason in str(e.value)
    res = runner.invoke(app, ["strategy", "check", str(f)])
    assert res.exit_code == 1 and reason in res.output and res.exception is not None
    assert isinstance(res.exception, SystemExit)


def _with_inventory(tmp_path: Path, data: bytes) -> Path:
    (tmp_path / "strategy.toml").write_text(NORRKOPING.read_text(encoding="utf-8"), "utf-8")
    (tmp_path / "inventory.csv").write_bytes(data)
    return tmp_path / "strategy.toml"


def test_inventory_bom_semicolons_and_latin1(tmp_path: Path) -> None:
    text = (NORRKOPING.parent / "inventory.csv").read_text(encoding="utf-8")
    s = load_strategy(_with_inventory(tmp_path, b"\xef\xbb\xbf" + text.encode()))
    assert len(s.luminaires) == 390
    semi = text.replace(",", ";")
    s = load_strategy(_with_inventory(tmp_path, semi.encode("utf-8-sig")))
    assert len(s.luminaires) == 390
    latin = text.replace("stromstraket", "str\u00f6mstr\u00e5ket", 1).encode("latin-1")
    with pytest.raises(StrategyError) as e:
        load_strategy(_with_inventory(tmp_path, latin))
    assert str(e.value.problems[0]).startswith("inventory.csv: line 2: not UTF-8 text")


def test_nan_and_fade_messages() -> None:
    doc = mini_doc()
    doc["site"]["latitude"] = float("nan")
    doc["zones"]["street"]["fade_down_s"] = 91.0
    probs = _problems(doc)
    assert "strategy.toml: site.latitude: Input should be a finite number" in probs
    assert ("strategy.toml: zones.street.fade_down_s: 91 s is outside 0–90.5 s (the longest "
            "DALI fade is 90.5 s)") in probs  # fmt: skip


@pytest.mark.parametrize("year", ["0", "10000", "-5"])
def test_energy_year_out_of_range_is_a_usage_error(year: str) -> None:
    res = runner.invoke(app, ["strategy", "energy", str(NORRKOPING), "--year", year])
    assert res.exit_code == 2 and "--year" in res.output


def test_compare_summary_reads_naturally() -> None:
    assert (compare_summary("new.toml", "old.toml", 98_891, 100_000, 1.2)
            == "new.toml saves 1,109 kWh (1.1 %, 1,331 SEK) against old.toml")  # fmt: skip
    assert (compare_summary("new.toml", "old.toml", 101_000, 100_000, None)
            == "new.toml uses 1,000 kWh more (1.0 %) than old.toml")  # fmt: skip


def test_preview_json_still_lists_rows() -> None:
    res = runner.invoke(app, ["strategy", "preview", str(NORRKOPING), "--zone", "ektorp",
                              "--date", "2026-12-31", "--json"])  # fmt: skip
    assert res.exit_code == 0 and len(json.loads(res.output)) == 24 * 60
