"""Fixtures for the attack tests: the shipped broker config on loopback, test credentials."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.security.broker import SecureBroker


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """One broker per test module with gateways gw-a and gw-b and the controller account."""
    broker = SecureBroker(tmp_path_factory.mktemp("secure-broker"), gateways=["gw-a", "gw-b"])
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
