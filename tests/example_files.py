"""The shipped example configs, made checkable: a copy whose ``/etc/lykta/...`` files exist.

``config/gateway.toml`` names a public key, an MQTT password file and a CA certificate under
``/etc/lykta`` (where a cabinet has them); a check of the file as shipped rightly fails. These
helpers write real ones (an Ed25519 key, a self-signed CA made with ``cryptography``) into a
temp directory and point a copy of the example at them.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lykta.signing import generate_key

CONFIG = Path(__file__).resolve().parents[1] / "config"


def write_ca(path: Path) -> Path:
    """A self-signed CA certificate (PEM) at ``path``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lykta test CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def example_gateway_config(d: Path) -> Path:
    """A copy of ``config/gateway.toml`` in ``d`` whose referenced files all exist."""
    d.mkdir(parents=True, exist_ok=True)
    generate_key(d / "program-signing.key")
    (d / "program-signing.key.pub").rename(d / "program-signing.pub")
    (d / "mqtt-password").write_text("s3cret\n")
    (d / "mqtt-password").chmod(0o600)  # secret files others can read are refused
    write_ca(d / "ca.crt")
    text = (CONFIG / "gateway.toml").read_text()
    text = re.sub(r'"/etc/lykta/([^"]+)"', lambda m: f'"{d / m.group(1)}"', text)
    # relative paths in the example are relative to config/
    text = text.replace('"norrkoping/inventory.csv"', f'"{CONFIG / "norrkoping/inventory.csv"}"')
    cfg = d / "gateway.toml"
    cfg.write_text(text)
    return cfg
