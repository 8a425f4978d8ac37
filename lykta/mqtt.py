"""Building MQTT v5 clients the same way for both roles (TLS, credentials, session)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from lykta.config import MqttConfig
from lykta.secrets import check_secret_file


def tls_context(cfg: MqttConfig) -> ssl.SSLContext | None:
    """An SSL context verifying the broker against ``tls.ca_file``, with the client cert."""
    if cfg.tls is None:
        return None
    ctx = ssl.create_default_context(cafile=str(cfg.tls.ca_file))
    if cfg.tls.cert_file is not None:
        assert cfg.tls.key_file is not None  # TlsConfig pairs them
        check_secret_file(cfg.tls.key_file, "private key")
        ctx.load_cert_chain(str(cfg.tls.cert_file), str(cfg.tls.key_file))
    return ctx


def make_client(
    cfg: MqttConfig,
    identifier: str,
    *,
    will: aiomqtt.Will | None = None,
    clean_start: bool = True,
    session_expiry_s: int = 0,
    max_inflight: int = 100,
    max_queued_incoming: int | None = None,
    receive_maximum: int | None = None,
    manual_ack: bool = False,
    timeout_s: float | None = None,
    incoming_high_water: int | None = None,
) -> aiomqtt.Client:
    """An MQTT v5 client for ``cfg``. ``clean_start=False`` with ``session_expiry_s`` keeps
    the broker-side session (and its queued QoS 1 messages) across reconnects and restarts.

    ``manual_ack=True`` withholds PUBACK until the caller acknowledges with :func:`ack`, and
    ``receive_maximum`` caps how many unacknowledged QoS 1 messages the broker sends: together
    they turn a slow consumer into backpressure at the broker instead of lost messages."""
    props = Properties(PacketTypes.CONNECT)
    if session_expiry_s:
        props.SessionExpiryInterval = session_expiry_s
    if receive_maximum:
        props.ReceiveMaximum = receive_maximum
    client = aiomqtt.Client(
        cfg.host,
        cfg.port,
        username=cfg.username,
        password=cfg.password(),
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5,
        will=will,
        clean_start=clean_start,
        properties=props,
        keepalive=cfg.keepalive_s,
        tls_context=tls_context(cfg),
        max_inflight_messages=max_inflight,
        max_queued_incoming_messages=max_queued_incoming,
        timeout=timeout_s,
    )
    if manual_ack:
        client._client.manual_ack_set(True)  # noqa: SLF001 - aiomqtt does not expose it
    if incoming_high_water:
        client._queue = BackpressureQueue(client, incoming_high_water)  # noqa: SLF001
    return client


class BackpressureQueue(asyncio.Queue):
    """aiomqtt's incoming message queue, bounded by pausing the socket instead of dropping.

    At ``high`` waiting messages it stops reading the broker's socket; at ``high // 2`` it
    reads again. TCP flow control then holds the broker back. (aiomqtt's own bounded queue
    drops messages when full, which a controller must never do.)
    """

    def __init__(self, client: aiomqtt.Client, high: int) -> None:
        super().__init__()
        self.client, self.high, self.low = client, high, high // 2
        self._paused: tuple[int, Callable[[], None]] | None = None
        self.pauses = 0

    def put_nowait(self, item: aiomqtt.Message) -> None:
        super().put_nowait(item)
        if self._paused is None and self.qsize() >= self.high:
            sock = self.client._client.socket()  # noqa: SLF001
            if sock is None:
                return
            loop = asyncio.get_running_loop()
            fd = sock.fileno()
            try:
                # aiomqtt registered a closure as the reader; keep it to put it back
                callback = loop._selector.get_key(fd).data[0]._callback  # type: ignore[attr-defined]  # noqa: SLF001
            except (AttributeError, KeyError, TypeError):
                return  # not the selector loop we know: stay unbounded rather than break
            loop.remove_reader(fd)
            self._paused = (fd, callback)
            self.pauses += 1

    def get_nowait(self) -> aiomqtt.Message:
        item = super().get_nowait()
        if self._paused is not None and self.qsize() <= self.low:
            fd, callback = self._paused
            self._paused = None
            sock = self.client._client.socket()  # noqa: SLF001
            if sock is not None and sock.fileno() == fd:
                asyncio.get_running_loop().add_reader(fd, callback)
        return item


def ack(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    """Send the PUBACK for ``message`` (clients made with ``manual_ack=True``)."""
    if message.qos > 0:
        client._client.ack(message.mid, message.qos)  # noqa: SLF001


def publish_properties(
    *,
    expiry_s: int | None = None,
    correlation: bytes | None = None,
    response_topic: str | None = None,
) -> Properties | None:
    """PUBLISH properties: message expiry (stale commands die in the broker), correlation."""
    if expiry_s is None and correlation is None and response_topic is None:
        return None
    p = Properties(PacketTypes.PUBLISH)
    if expiry_s is not None:
        p.MessageExpiryInterval = max(1, int(expiry_s))
    if correlation is not None:
        p.CorrelationData = correlation
    if response_topic is not None:
        p.ResponseTopic = response_topic
    return p
