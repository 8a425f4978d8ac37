"""A broker that refuses a gateway's neighbour subscription (its rules were not regenerated)
makes the gateway say so; Mosquitto's ACL file, as shipped, does not refuse it at all (which is
why the controller compares the file with the strategy: test_neighbour_acl_alarm.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.link import GatewayLink
from tests.security.broker import SITE, SecureBroker
from tests.waiting import eventually

A, B = "gw-a", "gw-b"


async def test_a_refused_neighbour_subscription_is_logged_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker = SecureBroker(tmp_path / "broker", gateways=[A, B], neighbour_reads={A: [B]})
    broker.start()
    try:
        link = GatewayLink(broker.cfg(B), SITE, B, tmp_path / "b", wait_for_controller=False)
        link.set_neighbours([A])
        with caplog.at_level(logging.INFO, logger="lykta.gateway"):
            async with link:
                await eventually(lambda: link.stats["neighbour_refused"] == 1, within_s=10)
                [msg] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
                assert f"refused reading the presence of {A}" in msg
                assert f"lykta provision neighbours --strategy ... --site {SITE}" in msg
                assert link.connected.is_set() and link.dead() is None  # it carries on
    finally:
        broker.stop()


async def test_the_acl_file_grants_a_denied_subscription_so_the_gateway_cannot_tell(
    secure_broker: SecureBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the shipped ACL grants gw-b nothing of gw-a's: still "granted"
    link = GatewayLink(secure_broker.cfg(B), SITE, B, tmp_path / "b", wait_for_controller=False)
    link.set_neighbours([A])
    with caplog.at_level(logging.INFO, logger="lykta.gateway"):
        async with link:
            await eventually(lambda: any(f"{B}: reading the presence of {A}" in r.getMessage()
                                         for r in caplog.records), within_s=10)  # fmt: skip
    assert link.stats["neighbour_refused"] == 0
