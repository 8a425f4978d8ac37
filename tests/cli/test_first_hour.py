"""What a new user meets in the first hour: every mistake answered in one clear line.

Each test runs the real ``lykta`` entry point in a subprocess (as a user would type it) and
asserts on what it prints and its exit status.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.config import ApiConfig, ControllerConfig, ProgramsConfig, load_controller_config
from controller.influx_config import InfluxConfig
from lykta.cli import demo
from lykta.cli.main import SUBCOMMANDS, app
from lykta.config import MqttConfig
from lykta.stack import free_port
from tests.example_files import CONFIG, example_gateway_config

PATTERN = "^[a-z][a-z0-9_]*$"


def lykta(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lykta.cli.main", *map(str, args)],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def one_error_line(r: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr
    return errors[0]


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_every_subcommand_answers_help(name: str) -> None:
    r = CliRunner().invoke(app, [name, "--help"], prog_name="lykta")
    assert r.exit_code == 0, r.output
    assert f"Usage: lykta {name} [OPTIONS]" in " ".join(r.output.split())


def test_contract_schema_is_a_subcommand_again(tmp_path: Path) -> None:
    r = lykta("contract", "schema", "-o", tmp_path / "s.json")
    assert r.returncode == 0, r.stderr
    assert '"topics"' in (tmp_path / "s.json").read_text()


def test_sim_poll_unknown_profile_lists_the_available_ones() -> None:
    r = lykta("sim", "poll", "sdm630")
    assert r.returncode == 1
    line = one_error_line(r)
    assert "no profile 'sdm630'" in line and "eastron_sdm630" in line


def test_sim_poll_that_fails_exits_non_zero_without_pymodbus_chatter() -> None:
    r = lykta("sim", "poll", "eastron_sdm630", "--port", free_port(), "--timeout", "0.2")
    assert r.returncode == 1
    assert "poll of unit 1" in one_error_line(r)
    assert "Repeating" not in r.stderr and "Failed to connect" not in r.stderr


def test_regex_patterns_in_errors_print_intact(tmp_path: Path) -> None:
    text = (CONFIG / "profiles" / "lux_sensor.toml").read_text()
    (tmp_path / "lux.toml").write_text(text.replace('field = "temperature_c"', 'field = "Temp C"'))
    for r in (lykta("sim", "profiles", "--directory", tmp_path),
              lykta("sim", "poll", tmp_path / "lux.toml")):  # fmt: skip
        assert r.returncode == 1
        assert PATTERN in one_error_line(r)


def test_gateway_check_passes_only_when_every_referenced_file_is_there(tmp_path: Path) -> None:
    cfg = example_gateway_config(tmp_path)
    ok = lykta("gateway", "check", "--config", cfg)
    assert ok.returncode == 0, ok.stderr
    assert "ok: gateway norrkoping/gw-centrum" in ok.stderr

    (tmp_path / "program-signing.pub").unlink()
    (tmp_path / "ca.crt").write_text("not a certificate\n")
    r = lykta("gateway", "check", "--config", cfg)
    assert r.returncode == 1
    assert "public_key_file: cannot read" in r.stderr and "program-signing.pub" in r.stderr

    (tmp_path / "program-signing.pub").write_bytes((tmp_path / "program-signing.key").read_bytes())
    r = lykta("gateway", "check", "--config", cfg)
    assert r.returncode == 1
    assert "not a PEM public key" in r.stderr  # a private key where the public one belongs
    assert "mqtt.tls: not usable" in r.stderr


def test_the_example_gateway_config_as_shipped_names_the_files_it_misses() -> None:
    r = lykta("gateway", "check", "--config", CONFIG / "gateway.toml")
    assert r.returncode == 1
    assert "/etc/lykta/program-signing.pub" in r.stderr


def test_controller_check_fails_on_a_missing_password_file(tmp_path: Path) -> None:
    cfg = tmp_path / "controller.toml"
    cfg.write_text(
        f'site = "norrkoping"\nstate_dir = "{tmp_path}"\n'
        f'[mqtt]\npassword_file = "{tmp_path / "nope"}"\n'
    )
    r = lykta("controller", "check", "--config", cfg)
    assert r.returncode == 1
    assert "mqtt.password_file: cannot read" in one_error_line(r)
    (tmp_path / "nope").write_text("pw\n")
    (tmp_path / "nope").chmod(0o600)  # secret files others can read are refused
    assert lykta("controller", "check", "--config", cfg).returncode == 0


def test_gateway_run_with_a_missing_serial_port_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(
        f'site = "demo"\nid = "gw1"\nstate_dir = "{tmp_path / "state"}"\n'
        "latitude = 58.59\nlongitude = 16.19\n"
        '[mqtt]\nport = 1\n'
        '[[dali]]\nname = "dali1"\ntransport = "firmware-bridge"\nurl = "/dev/ttyLYKTA-NONE"\n'
        '[[luminaires]]\nid = "L1"\nbus = "dali1"\nshort_address = 0\n'
    )
    r = lykta("gateway", "run", "--config", cfg)
    assert r.returncode == 1
    line = one_error_line(r)
    assert "'dali1'" in line and "/dev/ttyLYKTA-NONE" in line and "No such file" in line


def test_demo_refuses_more_luminaires_than_one_dali_bus_holds() -> None:
    r = lykta("demo", "--luminaires", "65", "--duration", "1")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "at most 64" in " ".join(r.stderr.replace("│", " ").split())


SUMMARY = {"readings_published": 10, "readings_stored": 10, "gateways": 1, "malformed": 0,
           "seq_gaps": 0, "duration_s": 1.0}  # fmt: skip


def test_closing_hint_follows_keep_stack(tmp_path: Path) -> None:
    with demo.console.capture() as without:
        demo._print_summary(SUMMARY, "http://127.0.0.1:1")
    assert "--keep-stack" in without.get()
    with demo.console.capture() as kept:
        demo._print_summary(SUMMARY, "http://127.0.0.1:1", stack_dir=tmp_path / "stack")
    text = " ".join(kept.get().split())
    assert "--keep-stack" not in text
    assert f"lykta stack down --data-dir {tmp_path / 'stack'}" in text


def test_demo_logs_through_the_live_console_verbatim() -> None:
    demo._log_to(demo.console)
    try:
        with demo.console.capture() as out:
            logging.getLogger("lykta.test").warning("pattern %s", PATTERN)
        assert PATTERN in out.get() and "lykta.test" in out.get()
    finally:
        logging.basicConfig(handlers=[logging.NullHandler()], force=True)


def test_the_demo_controller_toml_serves_the_token_commands(tmp_path: Path) -> None:
    cfg = ControllerConfig(
        site="norrkoping",
        state_dir=tmp_path / "controller",
        mqtt=MqttConfig(host="127.0.0.1", port=41883),
        influx=InfluxConfig(url="http://127.0.0.1:48086", database="lykta"),
        programs=ProgramsConfig(key_file=tmp_path / "controller" / "k.key"),
        api=ApiConfig(host="127.0.0.1", port=48080),
    )
    path = demo._write_controller_toml(cfg)
    loaded = load_controller_config(path)
    assert (loaded.site, loaded.state_dir, loaded.mqtt.port, loaded.api.port) == (
        cfg.site, cfg.state_dir, 41883, 48080
    )  # fmt: skip
    r = lykta("controller", "token", "create", "ops", "--role", "operator", "-c", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("lykta_")


def test_the_readme_tools_table_lists_every_command() -> None:
    readme = (CONFIG.parent / "README.md").read_text()
    table = readme.split("## Tools for people", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `lykta ([a-z-]+)", table, flags=re.M))
    assert listed == set(SUBCOMMANDS), f"missing: {set(SUBCOMMANDS) - listed}"


def test_every_path_the_readme_names_exists() -> None:
    root = CONFIG.parent
    readme = (root / "README.md").read_text()
    links = re.findall(r"\]\(([^)#:]+)\)", readme)
    tops = "config|docs|systemd|bench|tests|lykta|gateway|controller|firmware_bridge|fieldsim|\\.ci"
    named = re.findall(rf"`((?:{tops})/[^`* ]*)`", readme)
    missing = [p for p in links + named if not (root / p).exists()]
    assert not missing
