"""Signed commands, the replay window and key rotation (pure: no broker)."""

from __future__ import annotations

import base64
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.commands import CommandIssuer
from lykta.contract import Command, ContractError, build_command, decode, encode
from lykta.signing import (
    ReplayWindow,
    command_signing_payload,
    sign_command,
    sign_program,
    verify_command,
    verify_program,
)
from tests.contract.test_codec import commands

KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
NOW = 1_790_000_000_000


def cmd(name: str = "override", args: dict | None = None, **kw: object) -> Command:
    fields = {"id": "c1", "site": "norrkoping", "gateway": "gw-a", "counter": NOW,
              "issued_ts": NOW, "expires_ts": NOW + 60_000, **kw}  # fmt: skip
    if args is None:
        args = {"level": 254, "until_ms": NOW + 600_000, "luminaires": ["L1"]} if name == \
            "override" else {}  # fmt: skip
    return build_command(name, args, **fields)


def check(c: Command, keys=(KEY.public_key(),), replay: ReplayWindow | None = None,  # noqa: ANN001
          now: int = NOW, gateway: str = "gw-a") -> str | None:  # fmt: skip
    return verify_command(c, keys=list(keys), site="norrkoping", gateway=gateway, now_ms=now,
                          replay=replay or ReplayWindow())  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(commands)
def test_a_signed_command_verifies_after_the_wire_and_any_change_breaks_it(c: Command) -> None:
    signed = sign_command(c, KEY)
    wire = decode(encode(signed), Command)
    assert command_signing_payload(wire) == command_signing_payload(signed)
    assert verify_command(wire, keys=[KEY.public_key()], site=c.site, gateway=c.gateway,
                          now_ms=-1, replay=ReplayWindow(window=2**63)) is None  # fmt: skip
    for change in (
        {"counter": c.counter + 1 if c.counter < 2**62 else c.counter - 1},
        {"expires_ts": c.expires_ts + 1},
        {"gateway": c.gateway + "x"},
        {"site": c.site + "x"},
        {"id": c.id + "x"},
    ):
        tampered = msgspec.structs.replace(wire, **change)
        assert verify_command(tampered, keys=[KEY.public_key()], site=tampered.site,
                              gateway=tampered.gateway, now_ms=-1,
                              replay=ReplayWindow(window=2**63)) == "bad signature"  # fmt: skip


def test_args_and_name_are_covered() -> None:
    signed = sign_command(cmd(), KEY)
    lower = msgspec.structs.replace(signed, args=msgspec.structs.replace(signed.args, level=0))
    assert check(lower) == "bad signature"
    # the same fields under another command name (cancel instead of override)
    as_cancel = build_command("cancel_override", {"id": "c1"},
                              **{f: getattr(signed, f) for f in ("id", "site", "gateway",
                                 "counter", "issued_ts", "expires_ts", "signature")})  # fmt: skip
    assert check(as_cancel) == "bad signature"


def test_reasons() -> None:
    good = sign_command(cmd(), KEY)
    assert check(good) is None
    assert check(cmd()) == "unsigned command"
    assert check(sign_command(cmd(), OTHER)) == "bad signature"
    bad = msgspec.structs.replace(good, signature=base64.b64encode(b"x" * 64).decode())
    assert check(bad) == "bad signature"
    assert check(msgspec.structs.replace(good, signature="not base64!")) == "bad signature"
    assert check(good, gateway="gw-b") == "command is for norrkoping/gw-a, not norrkoping/gw-b"
    assert check(good, now=NOW + 60_000).startswith("expired 0 ms ago")
    w = ReplayWindow()
    assert check(good, replay=w) is None
    w.accept(good.counter)
    assert check(good, replay=w) == f"replayed counter {NOW}: already accepted"


def test_a_gateway_without_keys_runs_only_the_harmless_commands() -> None:
    for name in ("rebirth", "resume"):
        assert check(cmd(name), keys=()) is None
    for c in (cmd("override"), cmd("cancel_override", {"id": "x"})):
        assert check(c, keys=()) == "no public key configured: refusing unsigned trust"
        assert check(sign_command(c, KEY), keys=()) == (
            "no public key configured: refusing unsigned trust"
        )


def test_key_rotation_for_commands_and_programs(program_factory) -> None:  # noqa: ANN001
    old, new = KEY, Ed25519PrivateKey.generate()
    both = [old.public_key(), new.public_key()]
    c_old, c_new = sign_command(cmd(counter=NOW), old), sign_command(cmd(counter=NOW + 1), new)
    w = ReplayWindow()
    assert check(c_old, keys=both, replay=w) is None and check(c_new, keys=both, replay=w) is None
    # after the transition the old key is dropped: what it signs is refused
    assert check(c_old, keys=[new.public_key()]) == "bad signature"
    p = program_factory()
    assert verify_program(sign_program(p, old), both)
    assert verify_program(sign_program(p, new), both)
    assert not verify_program(sign_program(p, old), [new.public_key()])
    assert not verify_program(sign_program(p, OTHER), both)


@pytest.fixture
def program_factory():  # noqa: ANN201
    from lykta.contract.program import Program

    return lambda: Program(version="v1", site="norrkoping", gateway="gw-a", created_ts=NOW,
                           valid_from=NOW, valid_until=NOW + 3_600_000)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 5_000), max_size=60), st.integers(1, 1_000))
def test_replay_window_accepts_each_counter_once_and_nothing_far_below_the_newest(
    counters: list[int], window: int
) -> None:
    """Against an independent reference: the set of everything accepted so far and the
    running maximum. Persisting (dumps/loads) between any two steps changes nothing."""
    w = ReplayWindow(window=window)
    accepted: set[int] = set()
    newest = 0
    for c in counters:
        ok = w.check(c) is None
        expect = c not in accepted and c > newest - window
        assert ok == expect, (c, accepted, newest)
        if ok:
            w.accept(c)
            accepted.add(c)
            newest = max(newest, c)
        w = ReplayWindow.loads(w.dumps(), window=window)
        assert len(w.seen) <= window  # bounded by the window, not by history


def test_replay_state_that_is_not_ours_is_an_error() -> None:
    for bad in (b"", b"[]", b'{"highest": "x"}', b"\xff"):
        with pytest.raises(ValueError):
            ReplayWindow.loads(bad)


def test_issuer_counters_increase_across_restarts_and_a_clock_going_back(tmp_path: Path) -> None:
    clock = [NOW]
    issuer = CommandIssuer("norrkoping", KEY, tmp_path, clock=lambda: clock[0])
    got = [issuer.issue("gw-a", "resume", {}, 60).counter for _ in range(3)]
    clock[0] = NOW - 3_600_000  # the controller's clock stepped back an hour
    restarted = CommandIssuer("norrkoping", KEY, tmp_path, clock=lambda: clock[0])
    got += [restarted.issue("gw-a", "resume", {}, 60).counter for _ in range(3)]
    assert got == sorted(set(got)) and got[0] == NOW
    other_gateway = restarted.issue("gw-b", "resume", {}, 60)
    assert other_gateway.counter == clock[0]  # per gateway
    c = restarted.issue("gw-a", "override", {"level": 10, "until_ms": 1, "zone": "z"}, 60)
    assert check(c, now=clock[0]) is None  # signed with the key, verifiable
    with pytest.raises(ContractError, match=r"\$\.args\.level"):
        restarted.issue("gw-a", "override", {"level": 999, "until_ms": 1, "zone": "z"}, 60)
    with pytest.raises(ContractError, match=r"\$\.args\.luminaires"):
        restarted.issue("gw-a", "override",
                        {"level": 1, "until_ms": 1, "luminaires": ["x"] * 5000}, 60)  # fmt: skip
    with pytest.raises(ContractError, match="Object contains unknown field"):
        restarted.issue("gw-a", "cancel_override", {"id": "x", "evil": 1}, 60)
