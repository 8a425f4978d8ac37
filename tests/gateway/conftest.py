"""A compiled, signed Norrköping program for one gateway and simulated DALI buses for it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lykta.contract.program import Program
from lykta.signing import sign_program
from lykta.strategy import Strategy, compile_program, load_strategy

STRATEGY = Path(__file__).parents[2] / "config" / "norrkoping" / "strategy.toml"
GATEWAY = "gw-centrum"
# a winter night in Norrköping: 2026-12-10 from 12:00 local (11:00 UTC)
START = dt.datetime(2026, 12, 10, 11, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def strategy() -> Strategy:
    return load_strategy(STRATEGY)


@pytest.fixture(scope="session")
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def program(strategy: Strategy, signing_key: Ed25519PrivateKey) -> Program:
    return sign_program(compile_program(strategy, GATEWAY, START, 24), signing_key)
