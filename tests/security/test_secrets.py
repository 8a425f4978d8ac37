"""Secret files must be private; secrets never reach a log.

The log test runs the whole system the production way — the shipped broker config with TLS
and passwords, the controller service (real InfluxDB), a gateway on a simulated cabinet, the
API with bearer tokens, signed programs and an incident override, an intruder with a wrong
password — captures every log record at DEBUG and the broker's log, and greps them for every
secret of the run."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import aiomqtt
import httpx
import pytest

from controller.config import ApiConfig, ControllerConfig, ProgramsConfig
from controller.influx_config import InfluxConfig
from controller.registry import Role
from controller.service import ControllerService
from fieldsim.cabinet import SimulatedCabinet
from gateway.daemon import Gateway
from gateway.program_runner import ProgramRunner
from lykta.config import ConfigError, MqttConfig, load_config
from lykta.mqtt import make_client
from lykta.secrets import SecretFileError, check_secret_file, read_secret
from lykta.signing import SigningKeyError, generate_key, load_private_key
from lykta.stack import StackInfo
from tests.controller.test_fieldsim_flow import _strategy as sim_strategy
from tests.security.broker import SITE, SecureBroker
from tests.waiting import eventually


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o700])
def test_a_secret_file_others_can_access_is_refused_naming_the_fix(tmp_path: Path,
                                                                  mode: int) -> None:  # fmt: skip
    f = tmp_path / "pw"
    f.write_text("hunter2\n")
    f.chmod(mode)
    if mode & 0o077:
        with pytest.raises(SecretFileError) as e:
            read_secret(f, "broker password")
        assert str(e.value) == (
            f"{f} holds a broker password but is readable or writable by group or others "
            f"(mode {mode:04o}); run: chmod 600 {f}"
        )
        assert "hunter2" not in str(e.value)
    else:
        assert read_secret(f) == "hunter2"
    with pytest.raises(SecretFileError, match="no such file"):
        check_secret_file(tmp_path / "missing")


def test_configs_and_keys_refuse_public_secrets(tmp_path: Path) -> None:
    pw = tmp_path / "mqtt-password"
    pw.write_text("s3cret")
    pw.chmod(0o644)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'host = "h"\npassword_file = "{pw}"\n')
    with pytest.raises(ConfigError) as e:
        load_config(cfg, MqttConfig)
    assert f"run: chmod 600 {pw}" in str(e.value) and "s3cret" not in str(e.value)
    pw.chmod(0o600)
    loaded = load_config(cfg, MqttConfig)
    assert loaded.password() == "s3cret"
    pw.chmod(0o640)  # changed after loading: reading refuses too
    with pytest.raises(SecretFileError, match="chmod 600"):
        loaded.password()
    token = tmp_path / "influx-token"
    token.write_text("tok")
    token.chmod(0o604)
    with pytest.raises(ValueError, match="chmod 600"):
        InfluxConfig(version=2, org="o", bucket="b", token_file=token)
    key = tmp_path / "signing.key"
    generate_key(key)
    assert os.stat(key).st_mode & 0o777 == 0o600
    key.chmod(0o644)
    with pytest.raises(SigningKeyError, match=f"run: chmod 600 {key}"):
        load_private_key(key)


async def test_no_secret_appears_in_the_logs_of_a_full_run(
    stack: StackInfo, influx_db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    broker = SecureBroker(tmp_path / "broker", gateways=["gw-sim"])
    broker.start()
    try:
        key_file = tmp_path / "controller" / "program-signing.key"
        generate_key(key_file)
        cfg = ControllerConfig(
            site=SITE, state_dir=tmp_path / "controller", tick_s=300,
            mqtt=broker.cfg("lykta-controller", controller=True),
            influx=InfluxConfig(url=stack.influx_url, database=influx_db, flush_interval_s=0.1),
            programs=ProgramsConfig(key_file=key_file), api=ApiConfig(enabled=False),
        )  # fmt: skip
        async with ControllerService(cfg) as svc:
            await svc.wait_ready(30)
            tokens = {r: svc.registry.create_token(f"t-{r.value}", r, 1) for r in Role}
            v = svc.registry.add_strategy_version(SITE, sim_strategy(), author="t", comment="",
                                                  now_ms=1)  # fmt: skip
            async with SimulatedCabinet(luminaires=6, sensors=0) as cabinet:
                reader = cabinet.field_reader(interval_s=0.2)
                async with reader:
                    runner = ProgramRunner(
                        site=SITE, gateway="gw-sim", drivers={"dali1": reader.drivers[0]},
                        luminaires={x.id: "dali1" for x in cabinet.dali_luminaires()},
                        state_dir=tmp_path / "gw" / "program",
                        public_key=svc.key.public_key(), latitude=58.59, longitude=16.19,
                    )  # fmt: skip
                    gw = Gateway(SITE, "gw-sim", broker.cfg("gw-sim"), reader,
                                 tmp_path / "gw", telemetry_interval_s=0.2, runner=runner)
                    async with gw:
                        hashes = await svc.apply(v["id"], "tester")
                        await eventually(lambda: runner.program_hash == hashes["gw-sim"])
                        await eventually(lambda: svc.ingest.stats.readings >= 8)
                        transport = httpx.ASGITransport(app=svc.app)
                        async with httpx.AsyncClient(transport=transport,
                                                     base_url="http://lykta") as api:
                            sec = {"Authorization": f"Bearer {tokens[Role.SECURITY]}"}
                            inc = {"area": {"zones": ["stromstraket"]}, "class": "P1",
                                   "minutes": 30, "reason": "test"}  # fmt: skip
                            r = await api.post("/api/v1/incidents", json=inc, headers=sec)
                            assert r.status_code == 201, r.text
                            bad = {"Authorization": f"Bearer {tokens[Role.VIEWER]}x"}
                            assert (await api.get("/api/v1/alarms", headers=bad)).status_code \
                                == 401  # fmt: skip
                        await eventually(lambda: bool(runner.overrides))
                        with pytest.raises(aiomqtt.MqttError):
                            async with make_client(broker.cfg("gw-sim", password="guess-1"),
                                                   "intruder", timeout_s=5):  # fmt: skip
                                pass
                    await asyncio.sleep(0.2)
    finally:
        broker.stop()
    logs = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    logs += "\n" + broker.log()
    # the run did log: controller, gateway, HTTP client, and the broker saw the intruder
    names = {r.name for r in caplog.records}
    assert {"lykta.controller.ingest", "lykta.gateway.link", "httpx"} <= names, names
    assert "disconnected, not authorised" in logs
    secrets = [f"secret-{u}" for u in ("gw-sim", "lykta-controller")] + ["guess-1"]
    secrets += list(tokens.values())
    for pem in (key_file, broker.dir / "ca.key", broker.dir / "broker.key"):
        secrets += [ln for ln in pem.read_text().splitlines() if ln and "-----" not in ln]
    leaked = [s for s in secrets if s in logs]
    assert leaked == []
