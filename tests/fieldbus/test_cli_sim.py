"""`lykta sim` commands."""

from __future__ import annotations

from typer.testing import CliRunner

from lykta.cli.sim import app


def test_profiles_lists_the_shipped_profiles_with_plans() -> None:
    result = CliRunner().invoke(app, ["profiles"])
    assert result.exit_code == 0, result.output
    assert "eastron_sdm630" in result.output and "radar_presence" in result.output


def test_poll_reports_an_unknown_profile() -> None:
    result = CliRunner().invoke(app, ["poll", "no_such_meter"])
    assert result.exit_code == 1


def test_cabinet_runs_for_a_while() -> None:
    result = CliRunner().invoke(app, ["cabinet", "--luminaires", "4", "--seconds", "0.2"])
    assert result.exit_code == 0, result.output
    assert "Modbus TCP 127.0.0.1:" in result.output


def test_luba_prints_its_port() -> None:
    result = CliRunner().invoke(app, ["luba", "--gear", "2", "--seconds", "0.1"])
    assert result.exit_code == 0, result.output
    assert "luba232:/dev/pts/" in result.output


def test_modbus_serves_one_device_and_prints_its_port() -> None:
    result = CliRunner().invoke(app, ["modbus", "eastron_sdm120", "--seconds", "0.1"])
    assert result.exit_code == 0, result.output
    assert "Eastron SDM120 unit 1 at 2400 8N1 on /dev/pts/" in result.output
    assert CliRunner().invoke(app, ["modbus", "no_such_meter"]).exit_code == 1
