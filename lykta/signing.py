"""Ed25519 signatures on programs and commands, shared by the controller (signs) and the
gateway (verifies), and the gateway's replay guard for commands.

A program's signature covers :func:`lykta.contract.program.signing_payload` (the program
without its ``signature`` field, deterministic JSON); a command's covers
:func:`command_signing_payload` (likewise: name, id, site, gateway, counter, issued and expiry
times, typed args). Both are carried as standard base64 of the 64 signature bytes. Keys live
in PEM files: the controller's private key (PKCS#8, mode 0600) and the public key
(SubjectPublicKeyInfo) that every gateway is given.

Key rotation: a gateway may trust several public keys at once (the current one and the next,
for a transition period); a signature by any of them is valid. See docs/security.md.

``program_hash`` is what a gateway reports in its birth (``State.program_hash``) and what the
controller expects: SHA-256 of the signing payload, so it names exactly the content that was
signed, whatever the signature bytes are.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lykta.contract.messages import Command
from lykta.contract.program import Program, signing_payload
from lykta.secrets import SecretFileError, check_secret_file

PublicKeys = Ed25519PublicKey | bytes | Sequence[Ed25519PublicKey]

__all__ = [
    "ReplayWindow",
    "SigningKeyError",
    "command_signing_payload",
    "generate_key",
    "load_or_generate_key",
    "load_private_key",
    "load_public_key",
    "load_public_keys",
    "program_hash",
    "public_key_pem",
    "sign_command",
    "sign_program",
    "trusted_keys",
    "verify_command",
    "verify_program",
]


class SigningKeyError(ValueError):
    """A key file that is missing or not an Ed25519 key (the message names the file)."""


def sign_program(program: Program, key: Ed25519PrivateKey) -> Program:
    """A copy of ``program`` whose ``signature`` covers its signing payload."""
    sig = key.sign(signing_payload(program))
    return msgspec.structs.replace(program, signature=base64.b64encode(sig).decode("ascii"))


def verify_program(program: Program, public_key: PublicKeys) -> bool:
    """True when ``program.signature`` is a valid signature of its payload by ``public_key``
    (a key object, its 32 raw bytes, or several trusted keys: any of them).

    A missing or malformed signature is simply not valid (False); the gateway then keeps its
    fail-safe.
    """
    return _verify(signing_payload(program), program.signature, public_key)


def trusted_keys(public_key: PublicKeys | None) -> list[Ed25519PublicKey]:
    """``public_key`` (one key, its raw bytes, several keys, or None) as a list of keys."""
    if public_key is None:
        return []
    if isinstance(public_key, bytes | bytearray):
        return [Ed25519PublicKey.from_public_bytes(bytes(public_key))]
    if isinstance(public_key, Ed25519PublicKey):
        return [public_key]
    return list(public_key)


def _verify(payload: bytes, signature: str | None, public_key: PublicKeys) -> bool:
    if not signature:
        return False
    try:
        sig = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(sig) != 64:
        return False
    for key in trusted_keys(public_key):
        try:
            key.verify(sig, payload)
        except InvalidSignature:
            continue
        return True
    return False


_encoder = msgspec.json.Encoder(order="deterministic")


def command_signing_payload(cmd: Command) -> bytes:
    """The bytes a command's signature covers: the command without ``signature``,
    deterministic JSON (so the tag ``name`` and every typed arg are covered)."""
    return _encoder.encode(msgspec.structs.replace(cmd, signature=None))


def sign_command(cmd: Command, key: Ed25519PrivateKey) -> Command:
    """A copy of ``cmd`` whose ``signature`` covers :func:`command_signing_payload`."""
    sig = key.sign(command_signing_payload(cmd))
    return msgspec.structs.replace(cmd, signature=base64.b64encode(sig).decode("ascii"))


@dataclass
class ReplayWindow:
    """Which command counters a gateway has accepted (pure; the gateway persists it).

    A counter is accepted once, and only if it is above ``highest - window``: commands from
    two controller connections (or two controllers) may arrive slightly out of order, but a
    counter seen before, or one far below the newest, is refused. ``window`` is in counter
    units; controllers count ``max(last + 1, now in ms)``, so the default is 10 minutes.
    """

    window: int = 600_000
    highest: int = 0
    seen: set[int] = field(default_factory=set)

    def check(self, counter: int) -> str | None:
        """Why ``counter`` must be refused, or ``None``."""
        if counter in self.seen or counter == self.highest:
            return f"replayed counter {counter}: already accepted"
        if counter <= self.highest - self.window:
            return (f"counter {counter} is older than the replay window "
                    f"(newest accepted {self.highest})")  # fmt: skip
        return None

    def accept(self, counter: int) -> None:
        """Record ``counter`` as accepted (after :meth:`check` passed)."""
        self.highest = max(self.highest, counter)
        self.seen.add(counter)
        floor = self.highest - self.window
        self.seen = {c for c in self.seen if c > floor}

    def dumps(self) -> bytes:
        """The state as JSON (what the gateway stores)."""
        return json.dumps({"highest": self.highest, "seen": sorted(self.seen)}).encode()

    @classmethod
    def loads(cls, data: bytes, window: int = 600_000) -> ReplayWindow:
        """The state :meth:`dumps` wrote; raises ``ValueError`` when it is not that."""
        d = json.loads(data)
        if not isinstance(d, dict) or not isinstance(d.get("highest"), int):
            raise ValueError("not a replay window")
        return cls(window=window, highest=d["highest"], seen={int(c) for c in d["seen"]})


def verify_command(
    cmd: Command,
    *,
    keys: Sequence[Ed25519PublicKey] | None,
    site: str,
    gateway: str,
    now_ms: int,
    replay: ReplayWindow,
    unsigned_ok: Iterable[str] = ("rebirth", "resume"),
) -> str | None:
    """Why the gateway ``site``/``gateway`` must not execute ``cmd`` now, or ``None``.

    With ``keys`` (the trusted controller keys) every command must be signed by one of them,
    name this site and gateway, carry a counter ``replay`` has not accepted, and not be past
    ``expires_ts``. Without keys (a gateway not yet given the controller's key) only the
    harmless ``unsigned_ok`` commands run; nothing that changes light does. On success the
    caller records ``cmd.counter`` with ``replay.accept`` (and persists it) before executing.
    """
    if cmd.expires_ts <= now_ms:
        return f"expired {now_ms - cmd.expires_ts} ms ago; not executed"
    if not keys:
        if cmd.name in set(unsigned_ok):
            return None
        return "no public key configured: refusing unsigned trust"
    if cmd.signature is None:
        return "unsigned command"
    if not _verify(command_signing_payload(cmd), cmd.signature, keys):
        return "bad signature"
    if (cmd.site, cmd.gateway) != (site, gateway):
        return f"command is for {cmd.site}/{cmd.gateway}, not {site}/{gateway}"
    return replay.check(cmd.counter)


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
    """The Ed25519 private key in PEM file ``path`` (refused when others may read it)."""
    try:
        if Path(path).exists():
            check_secret_file(path, "private key")
    except SecretFileError as e:
        raise SigningKeyError(str(e)) from None
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


def load_public_keys(paths: Iterable[Path]) -> list[Ed25519PublicKey]:
    """The keys in ``paths`` (the current one and, during a rotation, the next)."""
    return [load_public_key(p) for p in paths]


def load_or_generate_key(path: Path) -> Ed25519PrivateKey:
    """The private key at ``path``, generated (with its ``.pub``) on first use."""
    return load_private_key(path) if Path(path).exists() else generate_key(path)


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    """``key`` as a PEM SubjectPublicKeyInfo (what gateways are given)."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
