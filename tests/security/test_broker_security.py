"""The shipped production broker config (config/mosquitto/) on a real Mosquitto: TLS only,
per-gateway credentials, and an ACL that confines each gateway to its own topics."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lykta.config import MqttConfig, TlsConfig
from lykta.contract import TelemetryBatch, Topic, TopicKind, encode
from lykta.mqtt import make_client
from lykta.stack import free_port

SHIPPED = Path(__file__).parents[2] / "config" / "mosquitto"
SITE = "norrkoping"  # the site id in the shipped ACL


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None = None,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
    ca: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        b = b.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
    return b.sign(issuer_key or key, hashes.SHA256())


def _pem_key(k: ec.EllipticCurvePrivateKey) -> bytes:
    return k.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    d = tmp_path_factory.mktemp("secure-broker")
    ca_key, srv_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = _cert("Lykta test CA", ca_key, ca=True)
    srv = _cert("localhost", srv_key, issuer=ca.subject, issuer_key=ca_key)
    (d / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "broker.crt").write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    (d / "broker.key").write_bytes(_pem_key(srv_key))
    passwd = d / "lykta.passwd"
    for i, user in enumerate(["gw-a", "gw-b", "lykta-controller"]):
        subprocess.run(
            [
                "mosquitto_passwd",
                "-b",
                *(["-c"] if i == 0 else []),
                str(passwd),
                user,
                f"secret-{user}",
            ],
            check=True,
            capture_output=True,
        )
    (d / "lykta.acl").write_text((SHIPPED / "lykta.acl").read_text())
    port = free_port()
    conf = (SHIPPED / "mosquitto.conf").read_text()
    conf = (
        conf.replace("/etc/mosquitto/certs/", f"{d}/")
        .replace("/etc/mosquitto/", f"{d}/")
        .replace("/var/lib/mosquitto/", f"{d}/")
        .replace("listener 8883", f"listener {port} 127.0.0.1")
    )
    conf += (
        "user root\n"
        if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() == "0"
        else ""
    )
    (d / "mosquitto.conf").write_text(conf)
    proc = subprocess.Popen(
        ["mosquitto", "-c", str(d / "mosquitto.conf")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    import socket

    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
    for user in ["gw-a", "gw-b", "lykta-controller"]:
        (d / f"{user}.pw").write_text(f"secret-{user}\n")
    yield port, d
    proc.terminate()
    proc.wait(5)


def _cfg(port: int, d: Path, user: str | None, password: str | None = None) -> MqttConfig:
    pw = None
    if user is not None:
        pw = d / f"{user}.pw"
        if password is not None:
            pw = d / f"{user}.wrong"
            pw.write_text(password)
    return MqttConfig(
        host="localhost",
        port=port,
        username=user,
        password_file=pw,
        tls=TlsConfig(ca_file=d / "ca.crt"),
    )


async def test_anonymous_and_wrong_password_are_refused(secure_broker: tuple[int, Path]) -> None:
    port, d = secure_broker
    for cfg in (_cfg(port, d, None), _cfg(port, d, "gw-a", password="guess")):
        with pytest.raises(aiomqtt.MqttError):
            async with make_client(cfg, "intruder"):
                pass


async def test_plain_tcp_is_not_spoken(secure_broker: tuple[int, Path]) -> None:
    port, d = secure_broker
    plain = MqttConfig(host="127.0.0.1", port=port, username="gw-a", password_file=d / "gw-a.pw")
    with pytest.raises(aiomqtt.MqttError):
        async with make_client(plain, "plain", timeout_s=1.0):
            pass


async def test_acl_confines_a_gateway_to_its_own_topics(secure_broker: tuple[int, Path]) -> None:
    port, d = secure_broker
    got: list[str] = []
    async with (
        make_client(_cfg(port, d, "lykta-controller"), "ctl") as ctl,
        make_client(_cfg(port, d, "gw-a"), "gw-a") as gw_a,
    ):
        await ctl.subscribe(f"lykta/v1/{SITE}/+/telemetry", qos=1)
        await gw_a.subscribe(str(Topic(SITE, "gw-b", TopicKind.CMD)), qos=1)  # not allowed
        payload = encode(TelemetryBatch(seq=0, ts=1))
        await gw_a.publish(str(Topic(SITE, "gw-b", TopicKind.TELEMETRY)), payload, qos=1)
        await gw_a.publish(str(Topic(SITE, "gw-a", TopicKind.TELEMETRY)), payload, qos=1)
        await ctl.publish(str(Topic(SITE, "gw-b", TopicKind.CMD)), b"{}", qos=1)

        async def collect() -> None:
            async for m in ctl.messages:
                got.append(str(m.topic))

        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):
                await collect()
        leaked = []
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                async for m in gw_a.messages:
                    leaked.append(str(m.topic))
    assert got == [str(Topic(SITE, "gw-a", TopicKind.TELEMETRY))]  # gw-b's was refused
    assert leaked == []  # gw-a cannot read gw-b's commands
