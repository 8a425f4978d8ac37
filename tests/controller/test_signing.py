"""Ed25519 program signatures: what the gateway checks before running a program."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lykta.contract import Program
from lykta.signing import (
    SigningKeyError,
    generate_key,
    load_or_generate_key,
    load_private_key,
    load_public_key,
    program_hash,
    sign_program,
    verify_program,
)
from lykta.strategy import compile_program, load_strategy

STRATEGY = Path(__file__).parents[2] / "config" / "norrkoping" / "strategy.toml"


@pytest.fixture(scope="module")
def program() -> Program:
    s = load_strategy(STRATEGY)
    return compile_program(s, "gw-saltangen", datetime(2026, 11, 20, 12, tzinfo=UTC), 24)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory):
    return generate_key(tmp_path_factory.mktemp("keys") / "program.key")


def test_signed_program_verifies_with_the_public_key(program: Program, key) -> None:
    signed = sign_program(program, key)
    assert signed.signature and program.signature is None
    assert verify_program(signed, key.public_key())
    raw = key.public_key().public_bytes_raw()
    assert verify_program(signed, raw)


def test_hash_ignores_the_signature_but_not_the_content(program: Program, key) -> None:
    signed = sign_program(program, key)
    assert program_hash(signed) == program_hash(program)
    assert program_hash(msgspec.structs.replace(program, valid_until=program.valid_until + 1)) != (
        program_hash(program)
    )


def test_other_key_missing_or_garbage_signature_fails(program: Program, key, tmp_path) -> None:
    other = generate_key(tmp_path / "other.key")
    signed = sign_program(program, key)
    assert not verify_program(signed, other.public_key())
    assert not verify_program(program, key.public_key())
    for bad in ("", "not base64!", "AAAA", signed.signature[:-4] + "AAAA"):
        assert not verify_program(msgspec.structs.replace(signed, signature=bad), key.public_key())


@settings(max_examples=40, deadline=None)
@given(
    field=st.sampled_from(["valid_from", "valid_until", "created_ts"]), delta=st.integers(1, 10**6)
)
def test_any_change_after_signing_is_detected(
    program: Program, key, field: str, delta: int
) -> None:
    """Invariant: changing any signed field invalidates the signature."""
    signed = sign_program(program, key)
    tampered = msgspec.structs.replace(signed, **{field: getattr(signed, field) + delta})
    assert not verify_program(tampered, key.public_key())


def test_tampered_level_is_detected(program: Program, key) -> None:
    signed = sign_program(program, key)
    g = signed.groups[0]
    pts = [msgspec.structs.replace(p, level=254) for p in g.points]
    tampered = msgspec.structs.replace(
        signed, groups=[msgspec.structs.replace(g, points=pts), *signed.groups[1:]]
    )
    assert not verify_program(tampered, key.public_key())


def test_key_files(tmp_path: Path) -> None:
    path = tmp_path / "k" / "program.key"
    key = load_or_generate_key(path)
    assert (path.stat().st_mode & 0o777) == 0o600
    again = load_or_generate_key(path)
    assert again.private_bytes_raw() == key.private_bytes_raw()
    pub = load_public_key(Path(f"{path}.pub"))
    assert pub.public_bytes_raw() == key.public_key().public_bytes_raw()
    with pytest.raises(SigningKeyError, match="already exists"):
        generate_key(path)
    with pytest.raises(SigningKeyError, match="no such key file"):
        load_private_key(tmp_path / "missing.key")
    (tmp_path / "junk.key").write_text("hello")
    (tmp_path / "junk.key").chmod(0o600)  # a key file others can read is refused first
    with pytest.raises(SigningKeyError, match="junk.key: not a PEM private key"):
        load_private_key(tmp_path / "junk.key")
