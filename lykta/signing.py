"""Ed25519 signatures on control programs, shared by the controller (signs) and gateway (verifies).

A signature covers :func:`lykta.contract.program.signing_payload` (the program without its
``signature`` field, deterministic JSON) and is carried in ``Program.signature`` as standard
base64 of the 64 signature bytes. Keys live in PEM files: the controller's private key
(PKCS#8, mode 0600) and the public key (SubjectPublicKeyInfo) that every gateway is given.

``program_hash`` is what a gateway reports in its birth (``State.program_hash``) and what the
controller expects: SHA-256 of the signing payload, so it names exactly the content that was
signed, whatever the signature bytes are.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lykta.contract.program import Program, signing_payload

__all__ = [
    "SigningKeyError",
    "generate_key",
    "load_or_generate_key",
    "load_private_key",
    "load_public_key",
    "program_hash",
    "public_key_pem",
    "sign_program",
    "verify_program",
]


class SigningKeyError(ValueError):
    """A key file that is missing or not an Ed25519 key (the message names the file)."""


def sign_program(program: Program, key: Ed25519PrivateKey) -> Program:
    """A copy of ``program`` whose ``signature`` covers its signing payload."""
    sig = key.sign(signing_payload(program))
    return msgspec.structs.replace(program, signature=base64.b64encode(sig).decode("ascii"))


def verify_program(program: Program, public_key: Ed25519PublicKey | bytes) -> bool:
    """True when ``program.signature`` is a valid signature of its payload by ``public_key``.

    ``public_key`` is a key object or its 32 raw bytes. A missing or malformed signature is
    simply not valid (False); the gateway then keeps its fail-safe.
    """
    if not program.signature:
        return False
    if isinstance(public_key, bytes | bytearray):
        public_key = Ed25519PublicKey.from_public_bytes(bytes(public_key))
    try:
        sig = base64.b64decode(program.signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(sig) != 64:
        return False
    try:
        public_key.verify(sig, signing_payload(program))
    except InvalidSignature:
        return False
    return True


def program_hash(program: Program) -> str:
    """SHA-256 (hex) of the program's signing payload: the hash a gateway reports."""
    return hashlib.sha256(signing_payload(program)).hexdigest()


def generate_key(path: Path) -> Ed25519PrivateKey:
    """Create a new private key at ``path`` (PEM, mode 0600) and its public key at
    ``path`` + ``.pub``; refuse to overwrite an existing key."""
    path = Path(path)
    if path.exists():
        raise SigningKeyError(f"{path}: a key already exists; not overwriting it")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    Path(f"{path}.pub").write_bytes(public_key_pem(key.public_key()))
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in PEM file ``path``."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except FileNotFoundError:
        raise SigningKeyError(f"{path}: no such key file") from None
    except (ValueError, TypeError) as e:
        raise SigningKeyError(f"{path}: not a PEM private key ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path}: a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in PEM file ``path``."""
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except FileNotFoundError:
        raise SigningKeyError(f"{path}: no such key file") from None
    except (ValueError, TypeError) as e:
        raise SigningKeyError(f"{path}: not a PEM public key ({e})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path}: a {type(key).__name__}, not an Ed25519 key")
    return key


def load_or_generate_key(path: Path) -> Ed25519PrivateKey:
    """The private key at ``path``, generated (with its ``.pub``) on first use."""
    return load_private_key(path) if Path(path).exists() else generate_key(path)


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    """``key`` as a PEM SubjectPublicKeyInfo (what gateways are given)."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
