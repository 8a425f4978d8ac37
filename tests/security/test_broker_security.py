"""The shipped production broker config (config/mosquitto/) on a real Mosquitto: TLS only,
per-gateway credentials bound to the client id, and an ACL that confines each gateway to its
own topics."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from lykta.contract import State, TelemetryBatch, Topic, TopicKind, encode
from lykta.mqtt import make_client
from tests.security.broker import SITE, SecureBroker


async def _collect(client: aiomqtt.Client, seconds: float) -> list[aiomqtt.Message]:
    got: list[aiomqtt.Message] = []
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(seconds):
            async for m in client.messages:
                got.append(m)
    return got


def t(gw: str, kind: TopicKind) -> str:
    return str(Topic(SITE, gw, kind))


async def test_anonymous_and_wrong_password_are_refused(secure_broker: SecureBroker) -> None:
    b = secure_broker
    for cfg in (
        b.cfg(None),
        b.cfg("gw-a", password="guess"),
        b.cfg(None, controller=True),
        b.cfg("lykta-controller", password="guess", controller=True),
    ):
        with pytest.raises(aiomqtt.MqttError):
            async with make_client(cfg, "intruder", timeout_s=5):
                pass


async def test_plain_tcp_is_not_spoken(secure_broker: SecureBroker) -> None:
    for controller in (False, True):
        plain = secure_broker.cfg("gw-a", controller=controller, tls=False)
        with pytest.raises(aiomqtt.MqttError):
            async with make_client(plain, "plain", timeout_s=1.0):
                pass


async def test_gateway_credentials_do_not_work_on_the_controller_listener(
    secure_broker: SecureBroker,
) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with make_client(secure_broker.cfg("gw-a", controller=True), "gw-a", timeout_s=5):
            pass
    # and the controller's account is not a gateway account
    with pytest.raises(aiomqtt.MqttError):
        async with make_client(secure_broker.cfg("lykta-controller"), "ctl", timeout_s=5):
            pass


async def test_acl_confines_a_gateway_to_its_own_topics(secure_broker: SecureBroker) -> None:
    b = secure_broker
    async with (
        make_client(b.cfg("lykta-controller", controller=True), "ctl") as ctl,
        make_client(b.cfg("gw-a"), "gw-a") as gw_a,
    ):
        await ctl.subscribe(f"lykta/v1/{SITE}/#", qos=1)
        await gw_a.subscribe(t("gw-b", TopicKind.CMD), qos=1)  # not allowed
        await gw_a.subscribe(t("gw-b", TopicKind.PROGRAM), qos=1)  # not allowed
        await gw_a.subscribe("lykta/#", qos=1)  # allowed to ask, nothing foreign delivered
        payload = encode(TelemetryBatch(seq=0, ts=1))
        await gw_a.publish(t("gw-b", TopicKind.TELEMETRY), payload, qos=1)
        await gw_a.publish(t("gw-b", TopicKind.STATE), encode(State(online=False, bdseq=0)),
                           qos=1)  # fmt: skip
        await gw_a.publish(t("gw-a", TopicKind.PROGRAM), b"{}", qos=1)  # only the controller
        await gw_a.publish(t("gw-b", TopicKind.CMD), b"{}", qos=1)
        await gw_a.publish(t("gw-a", TopicKind.CMD), b"{}", qos=1)
        await gw_a.publish(t("gw-a", TopicKind.TELEMETRY), payload, qos=1)
        await ctl.publish(t("gw-b", TopicKind.CMD), b"{}", qos=1)
        await ctl.publish(t("gw-b", TopicKind.PROGRAM), b"{}", qos=1)
        await ctl.publish(t("gw-a", TopicKind.CMD), b"{}", qos=1)
        got = [str(m.topic) for m in await _collect(ctl, 1.0)]
        leaked = [str(m.topic) for m in await _collect(gw_a, 0.5)]
    # the controller saw only what gw-a may write, and its own messages
    assert sorted(got) == sorted(
        [t("gw-a", TopicKind.TELEMETRY), t("gw-b", TopicKind.CMD), t("gw-b", TopicKind.PROGRAM),
         t("gw-a", TopicKind.CMD)]
    )  # fmt: skip
    # gw-a read nothing of gw-b's, and through lykta/# only its own command
    assert set(leaked) == {t("gw-a", TopicKind.CMD)}


async def test_one_gateway_cannot_take_over_anothers_client_id(
    secure_broker: SecureBroker,
) -> None:
    """gw-a's credential with gw-b's client id must not disconnect gw-b (nor fire its will)."""
    b = secure_broker
    will = aiomqtt.Will(t("gw-b", TopicKind.STATE), encode(State(online=False, bdseq=7)),
                        qos=1, retain=False)  # fmt: skip
    victim_id = f"lykta-gw-{SITE}-gw-b"
    async with (
        make_client(b.cfg("lykta-controller", controller=True), "ctl-watch") as ctl,
        make_client(b.cfg("gw-b"), victim_id, will=will) as gw_b,
    ):
        await ctl.subscribe(t("gw-b", TopicKind.STATE), qos=1)
        await ctl.subscribe(t("gw-b", TopicKind.TELEMETRY), qos=1)
        for attempt_id in (victim_id, "gw-b"):
            async with make_client(b.cfg("gw-a"), attempt_id) as attacker:
                await attacker.publish(t("gw-a", TopicKind.TELEMETRY), b"x", qos=1)
        # gw-b is still connected: its publish arrives, and its will never fired
        await gw_b.publish(t("gw-b", TopicKind.TELEMETRY), encode(TelemetryBatch(seq=1, ts=1)),
                           qos=1, timeout=5)  # fmt: skip
        got = await _collect(ctl, 1.5)
    assert [str(m.topic) for m in got] == [t("gw-b", TopicKind.TELEMETRY)]
    # the broker recorded gw-a's sessions under gw-a's own name, never gw-b's
    log = b.log()
    assert "as gw-a (p5" in log and "already connected, closing old connection" not in log


async def test_acl_lets_a_gateway_read_only_its_own_confirmations(
    secure_broker: SecureBroker,
) -> None:
    b = secure_broker
    async with (
        make_client(b.cfg("lykta-controller", controller=True), "ctl-confirm") as ctl,
        make_client(b.cfg("gw-a"), "gw-a") as gw_a,
    ):
        await gw_a.subscribe(t("gw-a", TopicKind.CONFIRM), qos=1)
        await gw_a.subscribe(t("gw-b", TopicKind.CONFIRM), qos=1)  # not allowed
        await ctl.subscribe(f"lykta/v1/{SITE}/+/confirm", qos=1)
        # a gateway cannot confirm anything, not even for itself
        await gw_a.publish(t("gw-a", TopicKind.CONFIRM), b'{"ts": 1}', qos=1)
        for gw in ("gw-a", "gw-b"):
            await ctl.publish(t(gw, TopicKind.CONFIRM), b'{"ts": 2}', qos=1)
        got = [(str(m.topic), m.payload) for m in await _collect(gw_a, 1.0)]
        seen = [(str(m.topic), m.payload) for m in await _collect(ctl, 0.5)]
    assert got == [(t("gw-a", TopicKind.CONFIRM), b'{"ts": 2}')]  # the controller's, gw-a's only
    assert (t("gw-a", TopicKind.CONFIRM), b'{"ts": 1}') not in seen  # the gateway's was refused
