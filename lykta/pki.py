"""A small private certificate authority for the broker's TLS listeners (``lykta certs``).

One CA per site signs the broker's server certificate and, optionally, client certificates
whose Common Name is a gateway id (Mosquitto's ``use_identity_as_username``). Keys are ECDSA
P-256: every TLS stack a gateway or broker runs speaks it. Private keys are written with mode
0600 and never overwritten unless asked to (``force``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lykta.secrets import SecretFileError, check_secret_file

CA_CERT, CA_KEY = "ca.crt", "ca.key"


class PkiError(ValueError):
    """A CA or certificate operation that cannot be done (the message says why)."""


@dataclass(frozen=True, slots=True)
class Issued:
    """Where an issued certificate and its key were written."""

    cert: Path
    key: Path


def write_private(path: Path, data: bytes, *, force: bool = False) -> None:
    """Write secret ``data`` to ``path`` with mode 0600 (never readable by group or others,
    not even for an instant); refuse to replace an existing file unless ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise PkiError(f"{path} exists; not overwriting it (use --force to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def write_public(path: Path, data: bytes, *, force: bool = False) -> None:
    """Write non-secret ``data`` (a certificate); refuse to overwrite unless ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise PkiError(f"{path} exists; not overwriting it (use --force to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lykta"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def init_ca(
    directory: Path, *, name: str = "Lykta site CA", days: int = 3650, force: bool = False,
    now: dt.datetime | None = None,
) -> Issued:
    """Create the CA (``ca.crt`` + ``ca.key``, 0600) in ``directory``."""
    directory = Path(directory)
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    for p in (directory / CA_CERT, directory / CA_KEY):
        if p.exists() and not force:
            raise PkiError(f"{p} exists; not overwriting the CA (use --force to replace it)")
    write_private(directory / CA_KEY, _key_pem(key), force=force)
    write_public(directory / CA_CERT, cert.public_bytes(serialization.Encoding.PEM), force=force)
    return Issued(directory / CA_CERT, directory / CA_KEY)


def load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The CA certificate and key in ``directory`` (made by :func:`init_ca`)."""
    directory = Path(directory)
    try:
        check_secret_file(directory / CA_KEY, "CA private key")
        cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), None)
    except FileNotFoundError as e:
        raise PkiError(f"{e.filename}: no CA here; run `lykta certs init {directory}`") from None
    except SecretFileError as e:
        if not (directory / CA_KEY).exists():
            raise PkiError(f"{directory}: no CA here; run `lykta certs init {directory}`") from None
        raise PkiError(str(e)) from None
    except ValueError as e:
        raise PkiError(f"{directory}: not a CA made by lykta certs init ({e})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{directory / CA_KEY}: not an EC key")
    return cert, key


def issue(
    ca_dir: Path,
    name: str,
    *,
    out_dir: Path,
    server: bool,
    hosts: list[str] | None = None,
    days: int = 825,
    force: bool = False,
    now: dt.datetime | None = None,
) -> Issued:
    """Issue a certificate for ``name`` signed by the CA in ``ca_dir``; write ``name.crt`` and
    ``name.key`` (0600) to ``out_dir``.

    ``server=True`` makes a TLS server certificate whose subjectAltName lists ``hosts`` (DNS
    names or IP addresses; default ``name``). ``server=False`` makes a client certificate with
    CN ``name`` — the username Mosquitto takes with ``use_identity_as_username``.
    """
    ca_cert, ca_key = load_ca(ca_dir)
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
    )
    if server:
        alt: list[x509.GeneralName] = []
        for h in hosts or [name]:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                alt.append(x509.DNSName(h))
        b = b.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = b.sign(ca_key, hashes.SHA256())
    out_dir = Path(out_dir)
    crt, kf = out_dir / f"{name}.crt", out_dir / f"{name}.key"
    for p in (crt, kf):
        if p.exists() and not force:
            raise PkiError(f"{p} exists; not overwriting it (use --force to replace it)")
    write_private(kf, _key_pem(key), force=force)
    write_public(crt, cert.public_bytes(serialization.Encoding.PEM), force=force)
    return Issued(crt, kf)
