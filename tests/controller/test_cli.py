"""`lykta controller ...` and `lykta alarms`, and the controller process with its HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from controller.alarms import AlarmChange, AlarmKind
from controller.config import ApiConfig, ControllerConfig, load_controller_config
from controller.registry import Registry
from controller.service import run
from lykta.cli.main import app
from lykta.config import ConfigError
from tests.controller.conftest import eventually

EXAMPLE = Path(__file__).parents[2] / "config" / "controller.toml"


def _config(tmp_path: Path, extra: str = "") -> Path:
    p = tmp_path / "controller.toml"
    p.write_text(
        f'site = "norrkoping"\nstate_dir = "state"\n{extra}\n'
        '[programs]\nkey_file = "keys/program.key"\n'
    )
    return p


def test_example_config_loads_and_relative_paths_follow_the_file() -> None:
    cfg = load_controller_config(EXAMPLE)
    assert cfg.site == "norrkoping" and cfg.api.incident_max_minutes == 240
    assert cfg.programs.strategy == EXAMPLE.parent / "norrkoping" / "strategy.toml"
    assert cfg.programs.strategy.exists()


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text('site = "a/b"\ntick_s = -1\n[api]\nport = 0\nincident_max_minute = 3\n')
    with pytest.raises(ConfigError) as e:
        load_controller_config(p)
    text = str(e.value)
    assert "bad.toml: tick_s: Input should be greater than 0" in text
    assert "api.port" in text and "api.incident_max_minute: Extra inputs" in text


def test_tokens_public_key_and_alarms(tmp_path: Path) -> None:
    cli = CliRunner()
    cfg = _config(tmp_path)
    r = cli.invoke(app, ["controller", "token", "create", "ops", "--role", "operator", "-c", cfg])
    assert r.exit_code == 0, r.output
    token = r.stdout.strip()
    reg = Registry(f"sqlite:///{tmp_path / 'state' / 'registry.db'}")
    assert reg.token_identity(token) == ("ops", "operator")
    r = cli.invoke(app, ["controller", "token", "create", "ops", "--role", "admin", "-c", cfg])
    assert r.exit_code == 1 and "exists already" in r.output
    r = cli.invoke(app, ["controller", "token", "list", "-c", cfg])
    assert "ops" in r.output and "operator" in r.output
    r = cli.invoke(app, ["controller", "token", "revoke", "ops", "-c", cfg])
    assert r.exit_code == 0 and reg.token_identity(token) is None
    r = cli.invoke(app, ["controller", "public-key", "-c", cfg])
    assert r.exit_code == 0 and r.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    assert (tmp_path / "keys" / "program.key.pub").read_text() == r.stdout

    reg.record_alarm(
        "norrkoping",
        AlarmChange(
            AlarmKind.LAMP_FAILURE,
            "STR-003",
            "gw-centrum",
            "stromstraket",
            1,
            True,
            1_790_000_000_000,
            "DALI status 0x02: lamp failure",
        ),
    )
    reg.record_alarm("norrkoping", AlarmChange(AlarmKind.GATEWAY_OFFLINE, "gw-ektorp",
                     "gw-ektorp", None, 3, True, 1_790_000_001_000, "offline"))  # fmt: skip
    r = cli.invoke(app, ["alarms", "-c", cfg])
    assert r.exit_code == 0, r.output
    assert r.output.index("STR-003") < r.output.index("gw-ektorp")  # priority 1 first
    r = cli.invoke(app, ["alarms", "-c", cfg, "--json"])
    assert [line.count('"kind"') for line in r.stdout.splitlines()] == [1, 1]
    reg.record_alarm(
        "norrkoping",
        AlarmChange(
            AlarmKind.LAMP_FAILURE,
            "STR-003",
            "gw-centrum",
            "stromstraket",
            1,
            False,
            1_790_000_002_000,
            "lamp working again",
        ),
    )
    r = cli.invoke(app, ["alarms", "-c", cfg])
    assert "STR-003" not in r.output and "1 open alarm(s)" in r.output
    r = cli.invoke(app, ["alarms", "-c", cfg, "--all"])
    assert "STR-003" in r.output
    r = cli.invoke(app, ["controller", "check", "-c", tmp_path / "missing.toml"])
    assert r.exit_code == 1 and "file not found" in r.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_run_serves_the_api_and_applies_the_initial_strategy(
    controller_cfg: ControllerConfig,
) -> None:
    port = _free_port()
    cfg = controller_cfg.model_copy(
        update={
            "api": ApiConfig(port=port),
            "programs": controller_cfg.programs.model_copy(
                update={"strategy": Path(__file__).parents[2] / "config/norrkoping/strategy.toml"}
            ),
        }
    )
    task = asyncio.create_task(run(cfg))
    try:
        reg = Registry(cfg.registry())
        token = reg.create_token("v", "viewer", 1)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

            async def up() -> bool:
                with contextlib.suppress(httpx.TransportError):
                    r = await client.get(
                        "/api/v1/strategies", headers={"Authorization": f"Bearer {token}"}
                    )
                    return r.status_code == 200 and len(r.json()) == 1  # fmt: skip
                return False

            await eventually(up, within_s=20)
            r = await client.get("/api/v1/strategies", headers={"Authorization": f"Bearer {token}"})
            [v] = r.json()
            assert v["applied_ts"] is not None and v["author"] == "controller"
            assert (await client.get("/openapi.json")).status_code == 200
        # `lykta alarms` from another machine, through the API
        cli = CliRunner()
        url = f"http://127.0.0.1:{port}"
        r = await asyncio.to_thread(cli.invoke, app, ["alarms", "--url", url, "--token", token])
        assert r.exit_code == 0 and "0 open alarm(s)" in r.output, r.output
        r = await asyncio.to_thread(cli.invoke, app, ["alarms", "--url", url, "--token", "bad"])
        assert r.exit_code == 1 and "HTTP 401: unknown or revoked token" in r.output
        r = await asyncio.to_thread(cli.invoke, app, ["alarms"])
        assert r.exit_code == 2 and "give --config" in r.output
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_process_stops_cleanly_on_sigterm(
    controller_cfg: ControllerConfig, tmp_path: Path
) -> None:
    import signal
    import sys

    port = _free_port()
    cfg = tmp_path / "controller.toml"
    cfg.write_text(
        f'site = "{controller_cfg.site}"\nstate_dir = "state"\ntick_s = 1\n'
        f'[mqtt]\nhost = "{controller_cfg.mqtt.host}"\nport = {controller_cfg.mqtt.port}\n'
        f'[influx]\nurl = "{controller_cfg.influx.url}"\n'
        f'database = "{controller_cfg.influx.database}"\n'
        f'[programs]\nkey_file = "keys/k"\nstrategy = "{EXAMPLE.parent}/norrkoping/strategy.toml"\n'
        f"[api]\nport = {port}\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lykta.cli.main", "controller", "run", "-c", str(cfg),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

            async def up() -> bool:
                with contextlib.suppress(httpx.TransportError):
                    return (await client.get("/openapi.json")).status_code == 200
                return False

            await eventually(up, within_s=30)
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()[-3000:]
        text = out.decode()
        assert "published 4 program(s)" in text and "Traceback" not in text
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
