"""`lykta certs` and `lykta provision gateway` against the shipped broker config: the bundle a
technician carries to the cabinet connects as that gateway, and nothing is overwritten."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import time
from pathlib import Path

import aiomqtt
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from gateway.config import load_gateway_config
from lykta.cli.main import app
from lykta.config import ConfigError, MqttConfig
from lykta.contract import TelemetryBatch, Topic, TopicKind, encode
from lykta.mqtt import make_client
from lykta.signing import generate_key
from tests.security.broker import SITE, SecureBroker

cli = CliRunner()


def run(*args: str) -> tuple[int, str]:
    r = cli.invoke(app, [str(a) for a in args])
    return r.exit_code, r.output


def test_certs_init_and_issue(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    assert run("certs", "init", ca)[0] == 0
    assert stat.S_IMODE(os.stat(ca / "ca.key").st_mode) == 0o600
    code, out = run("certs", "init", ca)
    assert code == 1 and "exists; not overwriting the CA" in out
    assert run("certs", "issue", "mqtt.example", "--ca", ca, "--out", tmp_path,
               "--host", "mqtt.example", "--host", "10.0.0.5")[0] == 0  # fmt: skip
    srv = x509.load_pem_x509_certificate((tmp_path / "mqtt.example.crt").read_bytes())
    cacert = x509.load_pem_x509_certificate((ca / "ca.crt").read_bytes())
    srv.verify_directly_issued_by(cacert)
    alt = srv.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert alt.get_values_for_type(x509.DNSName) == ["mqtt.example"]
    assert [str(i) for i in alt.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    assert run("certs", "issue", "gw-7", "--ca", ca, "--out", tmp_path, "--client")[0] == 0
    cl = x509.load_pem_x509_certificate((tmp_path / "gw-7.crt").read_bytes())
    cl.verify_directly_issued_by(cacert)
    assert cl.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "gw-7"
    eku = cl.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    code, out = run("certs", "issue", "gw-7", "--ca", ca, "--out", tmp_path, "--client")
    assert code == 1 and "gw-7.crt exists" in out
    os.chmod(ca / "ca.key", 0o644)
    code, out = run("certs", "issue", "gw-8", "--ca", ca, "--out", tmp_path, "--client")
    assert code == 1 and f"run: chmod 600 {ca / 'ca.key'}" in out


def test_a_provisioned_gateway_connects_as_itself(tmp_path: Path) -> None:
    broker = SecureBroker(tmp_path / "broker", gateways=["gw-a"])
    broker.start()
    try:
        key = tmp_path / "controller" / "program-signing.key"
        generate_key(key)
        out = tmp_path / "bundles"
        bundle = out / "gw-new"
        args = ["provision", "gateway", "gw-new", "--site", SITE, "--public-key", f"{key}.pub",
                "--ca-cert", broker.dir / "ca.crt", "--broker-host", "localhost",
                "--broker-port", str(broker.gateway_port), "--latitude", "58.59",
                "--longitude", "16.19", "--out", out, "--install-dir", bundle,
                "--passwd", broker.dir / "lykta-gateways.passwd",
                "--acl", broker.dir / "lykta.acl"]  # fmt: skip
        code, output = run(*args)
        assert code == 0, output
        assert stat.S_IMODE(os.stat(bundle / "mqtt-password").st_mode) == 0o600
        password = (bundle / "mqtt-password").read_text().strip()
        assert password not in (broker.dir / "lykta-gateways.passwd").read_text()  # hashed
        assert (bundle / "controller.pub").read_bytes() == Path(f"{key}.pub").read_bytes()
        assert "added site" not in output  # the shipped ACL already covers norrkoping
        cfg = load_gateway_config(bundle / "gateway.toml")
        assert (cfg.id, cfg.site, cfg.mqtt.username) == ("gw-new", SITE, "gw-new")
        assert cfg.trusted_key_files() == [bundle / "controller.pub"]
        # nothing is overwritten without --force
        code, output = run(*args)
        assert code == 1 and "exists; not overwriting it" in output
        code, output = run(*[tmp_path / "other" if a == out else a for a in args])
        assert code == 1 and "already has an entry for gw-new" in output
        # the broker re-reads its password file on SIGHUP; then the bundle connects
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        asyncio.run(_publish_as_provisioned(broker, cfg.mqtt))
        assert "as gw-new (p5" in broker.log()  # its client id is its name
        # a password file others can read is refused, naming the file and the fix
        os.chmod(bundle / "mqtt-password", 0o644)
        with pytest.raises(ConfigError, match=r"chmod 600 .*mqtt-password"):
            load_gateway_config(bundle / "gateway.toml")
        asyncio.run(_wrong_account(broker, password))
    finally:
        broker.stop()


async def _publish_as_provisioned(broker: SecureBroker, mqtt: MqttConfig) -> None:
    ctl_cfg = broker.cfg("lykta-controller", controller=True)
    async with make_client(ctl_cfg, "ctl") as ctl, make_client(mqtt, "any-id") as gw:
        await ctl.subscribe(str(Topic(SITE, "gw-new", TopicKind.TELEMETRY)), qos=1)
        await gw.publish(str(Topic(SITE, "gw-new", TopicKind.TELEMETRY)),
                         encode(TelemetryBatch(seq=0, ts=1)), qos=1)  # fmt: skip
        async with asyncio.timeout(10):
            async for m in ctl.messages:
                assert str(m.topic).endswith("/gw-new/telemetry")
                break


async def _wrong_account(broker: SecureBroker, password: str) -> None:
    with pytest.raises(aiomqtt.MqttError):  # gw-new's password is not gw-a's
        async with make_client(broker.cfg("gw-a", password=password), "x", timeout_s=5):
            pass


def test_provision_for_a_new_site_adds_its_acl_patterns_and_a_client_certificate(
    tmp_path: Path,
) -> None:
    ca = tmp_path / "ca"
    assert run("certs", "init", ca)[0] == 0
    key = tmp_path / "k.key"
    generate_key(key)
    acl = tmp_path / "lykta.acl"
    acl.write_text((Path(__file__).parents[2] / "config/mosquitto/lykta.acl").read_text())
    code, out = run("provision", "gateway", "gw-1", "--site", "linkoping", "--public-key",
                    f"{key}.pub", "--ca-cert", ca / "ca.crt", "--broker-host", "mqtt.example",
                    "--latitude", "58.41", "--longitude", "15.62", "--out", tmp_path,
                    "--acl", acl, "--client-cert", "--ca", ca)  # fmt: skip
    assert code == 0, out
    text = acl.read_text()
    assert "pattern read  lykta/v1/linkoping/%u/cmd" in text
    assert "pattern write lykta/v1/norrkoping/%u/state" in text  # the old site stays
    bundle = tmp_path / "gw-1"
    assert not (bundle / "mqtt-password").exists()
    cert = x509.load_pem_x509_certificate((bundle / "gw-1.crt").read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "gw-1"
    toml = (bundle / "gateway.toml").read_text()
    assert 'cert_file = "/etc/lykta/gw-1.crt"' in toml and "password_file" not in toml
    # a second run adds nothing to the ACL
    before = acl.read_text()
    assert run("provision", "gateway", "gw-2", "--site", "linkoping", "--public-key",
               f"{key}.pub", "--ca-cert", ca / "ca.crt", "--broker-host", "mqtt.example",
               "--latitude", "58.41", "--longitude", "15.62", "--out", tmp_path,
               "--acl", acl)[0] == 0  # fmt: skip
    assert acl.read_text() == before
    code, out = run("provision", "gateway", "bad/id", "--site", "linkoping", "--public-key",
                    f"{key}.pub", "--ca-cert", ca / "ca.crt", "--broker-host", "h",
                    "--latitude", "1", "--longitude", "1", "--out", tmp_path)  # fmt: skip
    assert code == 1 and "is not a valid id" in out
