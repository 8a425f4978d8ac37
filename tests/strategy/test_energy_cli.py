"""Energy what-if and the `lykta strategy` commands."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from lykta.cli.main import app
from lykta.contract import Program, decode
from lykta.strategy import estimate_energy, parse_strategy

from .conftest import NORRKOPING, mini_doc

runner = CliRunner()
WEEK = (date(2026, 11, 23), date(2026, 11, 29))


def test_energy_saving_and_what_if() -> None:
    s = parse_strategy(mini_doc())
    r = estimate_energy(s, *WEEK)
    assert 0 < r.kwh < r.baseline_kwh
    # 10 × 30 W + 5 × 20 W all on through ~16 lit hours a night for 7 nights
    assert abs(r.baseline_kwh - 0.4 * r.lit_hours) < 1e-6
    assert 7 * 15 < r.lit_hours < 7 * 17
    brighter = mini_doc()
    brighter["zones"]["street"]["classes"] = {"evening": "P3", "late": "P3", "night": "P3"}
    r2 = estimate_energy(parse_strategy(brighter), *WEEK)
    assert r2.zones["street"].kwh > r.zones["street"].kwh
    assert abs(r2.zones["street"].saving_percent) < 1e-9  # P3 is the design class: 100 %
    assert abs(r2.zones["path"].kwh - r.zones["path"].kwh) < 1e-9


def test_check_ok_and_errors(tmp_path: Path) -> None:
    res = runner.invoke(app, ["strategy", "check", str(NORRKOPING)])
    assert res.exit_code == 0, res.output
    assert "OK" in res.output and "390 luminaires" in res.output
    bad = tmp_path / "strategy.toml"
    text = NORRKOPING.read_text(encoding="utf-8").replace(
        'safety_floor = "P6"', 'safety_floor = "P7"'
    )
    bad.write_text(text.replace('inventory = "inventory.csv"', ""), encoding="utf-8")
    res = runner.invoke(app, ["strategy", "check", str(bad)])
    assert res.exit_code == 1
    assert "strategy.toml: zones.ektorp.safety_floor: P7 is not an EN 13201 class" in res.output


def test_preview_json_and_png(tmp_path: Path) -> None:
    png = tmp_path / "night.png"
    res = runner.invoke(app, ["strategy", "preview", str(NORRKOPING), "--zone", "ektorp",
                              "--date", "2026-12-31", "--json", "--png", str(png)])  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert len(rows) == 24 * 60
    assert {r["profile"] for r in rows} == {"festive"}
    lit = [r for r in rows if r["lit"]]
    assert lit and all(r["level"] >= r["floor_level"] for r in lit)
    assert {r["period"] for r in lit} == {"evening", "late", "night", "morning"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = runner.invoke(app, ["strategy", "preview", str(NORRKOPING), "--zone", "nowhere",
                              "--date", "2026-12-31"])  # fmt: skip
    assert res.exit_code == 2 and "no zone 'nowhere'" in res.output


def test_energy_command_compares() -> None:
    res = runner.invoke(app, ["strategy", "energy", str(NORRKOPING), "--year", "2026",
                              "--price", "1.5", "--compare", str(NORRKOPING)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "TOTAL" in res.output and "saving against all-on" in res.output
    assert "uses the same energy as" in res.output  # a strategy against itself


def test_compile_command(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    res = runner.invoke(app, ["strategy", "compile", str(NORRKOPING), "--gateway", "gw-ektorp",
                              "--start", "2026-11-25T12:00:00+01:00", "--hours", "48",
                              "-o", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    prog = decode(out.read_bytes(), Program)
    assert prog.gateway == "gw-ektorp" and len(prog.luminaires) == 120
    res = runner.invoke(app, ["strategy", "compile", str(NORRKOPING), "--gateway", "gw-x",
                              "--start", "2026-11-25T12:00:00+01:00"])  # fmt: skip
    assert res.exit_code == 1 and "gateway 'gw-x'" in res.output
