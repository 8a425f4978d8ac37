"""Building MQTT v5 clients the same way for both roles (TLS, credentials, session)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import math
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
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
    timeout_s: float | None = None,
) -> aiomqtt.Client:
    """An MQTT v5 client for ``cfg``. ``clean_start=False`` with ``session_expiry_s`` keeps
    the broker-side session (and its queued QoS 1 messages) across reconnects and restarts.
    (A consumer that must acknowledge only what it stored, and never drop, uses
    :class:`BoundedClient`.)"""
    props = _connect_properties(session_expiry_s, receive_maximum)
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
    return client


def _connect_properties(session_expiry_s: int, receive_maximum: int | None) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    if session_expiry_s:
        props.SessionExpiryInterval = session_expiry_s
    if receive_maximum:
        props.ReceiveMaximum = receive_maximum
    return props


class BoundedClient:
    """An asyncio MQTT v5 client for a consumer that acknowledges only what it has stored and
    never drops a message: paho-mqtt's own client, driven through its public socket API
    (``socket``, ``loop_read``, ``loop_write``, ``loop_misc``, the ``on_socket_*`` callbacks, as
    in paho's asyncio example) and ``manual_ack``.

    Received messages wait in an asyncio queue. Once ``high_water`` wait, the client stops
    reading its socket (it removes its own reader from the event loop); TCP flow control then
    holds the broker back. Below ``high_water // 2`` it reads again. (Mosquitto 2.0 honours
    MQTT v5 *Receive Maximum* only until the first PUBACK, so the socket is the bound that
    holds; aiomqtt's bounded queue would drop messages instead.)

    The subset of ``aiomqtt.Client`` that ingest uses: ``async with``, :attr:`messages`,
    :meth:`publish`, :meth:`subscribe`, plus :meth:`ack`. Failures raise ``aiomqtt.MqttError``.
    """

    def __init__(
        self,
        cfg: MqttConfig,
        identifier: str,
        *,
        will: aiomqtt.Will | None = None,
        clean_start: bool = True,
        session_expiry_s: int = 0,
        receive_maximum: int | None = None,
        max_inflight: int = 100,
        high_water: int = 1000,
        connect_timeout_s: float = 30.0,
    ) -> None:
        self.cfg = cfg
        self.high_water, self.low_water = high_water, high_water // 2
        self.connect_timeout_s = connect_timeout_s
        self.pauses = 0
        """How often the socket was paused (for tests and the live view)."""
        self.max_queued = 0
        """The most messages that ever waited at once (never above ``high_water``)."""
        self._clean_start = clean_start
        self._props = _connect_properties(session_expiry_s, receive_maximum)
        c = self._paho = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=identifier,
            protocol=paho.MQTTv5,
            manual_ack=True,
        )
        c.max_inflight_messages_set(max_inflight)
        c.max_queued_messages_set(0)
        if cfg.username is not None:
            c.username_pw_set(cfg.username, cfg.password())
        ctx = tls_context(cfg)
        if ctx is not None:
            c.tls_set_context(ctx)
        if will is not None:
            c.will_set(will.topic, will.payload, will.qos, will.retain, will.properties)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe
        c.on_socket_open = self._on_socket_open
        c.on_socket_close = self._on_socket_close
        c.on_socket_register_write = self._on_socket_register_write
        c.on_socket_unregister_write = self._on_socket_unregister_write
        self._queue: collections.deque[paho.MQTTMessage] = collections.deque()
        self._arrived = asyncio.Event()
        self._fd: int | None = None
        self._reading = False
        self._writing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected: asyncio.Future[None] | None = None
        self._disconnected: asyncio.Future[None] | None = None
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._misc: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> BoundedClient:
        loop = self._loop = asyncio.get_running_loop()
        self._connected, self._disconnected = loop.create_future(), loop.create_future()
        try:
            # connect() resolves, opens the socket and sends CONNECT: blocking, so in a thread
            # (the on_socket_* callbacks then hand over to the event loop thread-safely)
            rc = await loop.run_in_executor(None, functools.partial(
                self._paho.connect, self.cfg.host, self.cfg.port,
                keepalive=self.cfg.keepalive_s, clean_start=self._clean_start,
                properties=self._props,
            ))  # fmt: skip
            if rc != paho.MQTT_ERR_SUCCESS:
                raise aiomqtt.MqttError(f"connect: {paho.error_string(rc)}")
            async with asyncio.timeout(self.connect_timeout_s):
                await asyncio.shield(self._connected)
        except (OSError, TimeoutError) as e:
            self._teardown()
            where = f"{self.cfg.host}:{self.cfg.port}"
            raise aiomqtt.MqttError(f"cannot connect to {where}: {e}") from e
        except BaseException:
            self._teardown()
            raise
        self._misc = loop.create_task(self._misc_loop(), name="mqtt-misc")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._disconnected is not None
        if not self._disconnected.done():
            self._paho.disconnect()
            with contextlib.suppress(Exception, TimeoutError):
                async with asyncio.timeout(5):
                    await asyncio.shield(self._disconnected)
        self._teardown()

    def _teardown(self) -> None:
        if self._misc is not None:
            self._misc.cancel()
        self._unwatch()
        self._unwrite()
        self._fd = None
        with contextlib.suppress(Exception):
            sock = self._paho.socket()
            if sock is not None:
                sock.close()
        self._fail(aiomqtt.MqttError("disconnected"))

    # -- the consumer's side --------------------------------------------------------------------

    @property
    def messages(self) -> AsyncIterator[paho.MQTTMessage]:
        """The received messages, in order; ends with ``aiomqtt.MqttError`` when the
        connection is lost."""
        return self._messages()

    async def _messages(self) -> AsyncIterator[paho.MQTTMessage]:
        assert self._disconnected is not None
        queue, arrived, lost = self._queue, self._arrived, self._disconnected
        while True:
            while queue:
                message = queue.popleft()
                if not self._reading and len(queue) <= self.low_water:
                    self._watch()
                yield message
            if lost.done():
                lost.result()  # raises the reason
            arrived.clear()
            waiter = asyncio.ensure_future(arrived.wait())
            either: set[asyncio.Future[Any]] = {waiter, lost}
            try:
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()

    def ack(self, message: paho.MQTTMessage) -> None:
        """Send the PUBACK of ``message`` (nothing for QoS 0)."""
        if message.qos > 0:
            self._paho.ack(message.mid, message.qos)

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - aiomqtt's signature, which ingest calls
    ) -> None:
        """Publish; for QoS > 0 return once the broker acknowledged it."""
        info = self._paho.publish(topic, payload, qos, retain, properties)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_QUEUE_SIZE):
            raise aiomqtt.MqttCodeError(info.rc, f"publish to {topic}")
        if qos > 0 and not info.is_published():
            await self._wait(info.mid, timeout)

    async def subscribe(
        self,
        topic: str,
        qos: int = 0,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - aiomqtt's signature
    ) -> None:
        """Subscribe; return once the broker acknowledged it."""
        rc, mid = self._paho.subscribe(topic, qos)
        if rc != paho.MQTT_ERR_SUCCESS or mid is None:
            raise aiomqtt.MqttCodeError(rc, f"subscribe to {topic}")
        await self._wait(mid, timeout)

    async def _wait(self, mid: int, timeout_s: float) -> None:
        assert self._loop is not None and self._disconnected is not None
        fut = self._pending.setdefault(mid, self._loop.create_future())
        try:
            async with asyncio.timeout(None if math.isinf(timeout_s) else timeout_s):
                await asyncio.wait({fut, self._disconnected}, return_when=asyncio.FIRST_COMPLETED)
            if not fut.done():
                self._disconnected.result()
            fut.result()
        finally:
            self._pending.pop(mid, None)

    # -- paho callbacks (all on the event loop thread, except during connect) -------------------

    def _on_connect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        assert self._connected is not None
        if self._connected.done():
            return
        if reason.is_failure:
            self._connected.set_exception(aiomqtt.MqttCodeError(reason.value, "CONNACK"))
        else:
            self._connected.set_result(None)

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self._fail(aiomqtt.MqttCodeError(getattr(reason, "value", -1), "disconnected"))

    def _fail(self, exc: Exception) -> None:
        for fut in (self._connected, self._disconnected):
            if fut is not None and not fut.done():
                fut.set_exception(exc)
                fut.exception()  # retrieved: no "never retrieved" warning
        self._arrived.set()

    def _on_message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        queue = self._queue
        queue.append(message)
        self._arrived.set()
        if len(queue) > self.max_queued:
            self.max_queued = len(queue)
        if self._reading and len(queue) >= self.high_water:
            self._unwatch()  # backpressure: TCP holds the broker back
            self.pauses += 1

    def _on_publish(self, _c: Any, _u: Any, mid: int, _reason: Any, _props: Any) -> None:
        self._settle(mid)

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, _codes: Any, _props: Any) -> None:
        self._settle(mid)

    def _settle(self, mid: int) -> None:
        assert self._loop is not None
        fut = self._pending.get(mid)
        if fut is None:  # answered before anyone waited (possible for a fast broker)
            fut = self._pending[mid] = self._loop.create_future()
        if not fut.done():
            fut.set_result(None)

    def _on_socket_open(self, _c: Any, _u: Any, sock: Any) -> None:
        assert self._loop is not None
        self._fd = sock.fileno()
        self._loop.call_soon_threadsafe(self._watch)

    def _on_socket_close(self, _c: Any, _u: Any, sock: Any) -> None:
        self._unwatch()
        self._unwrite()
        self._fd = None  # paho closes it right after this callback

    def _on_socket_register_write(self, _c: Any, _u: Any, sock: Any) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._write, sock.fileno())

    def _on_socket_unregister_write(self, _c: Any, _u: Any, sock: Any) -> None:
        self._unwrite()

    def _write(self, fd: int) -> None:
        if self._fd == fd and not self._writing and self._loop is not None:
            self._writing = True
            self._loop.add_writer(fd, self._writable)

    def _unwrite(self) -> None:
        if self._writing and self._fd is not None and self._loop is not None:
            with contextlib.suppress(OSError, ValueError, KeyError):
                self._loop.remove_writer(self._fd)
        self._writing = False

    # -- socket --------------------------------------------------------------------------------

    def _watch(self) -> None:
        if self._reading or self._fd is None or self._loop is None:
            return
        self._reading = True
        self._loop.add_reader(self._fd, self._readable)
        self._loop.call_soon(self._readable)  # bytes paho or TLS already buffered

    def _unwatch(self) -> None:
        if self._reading and self._fd is not None and self._loop is not None:
            with contextlib.suppress(OSError, ValueError, KeyError):
                self._loop.remove_reader(self._fd)
        self._reading = False

    def _readable(self) -> None:
        c = self._paho
        while self._reading and self._fd is not None:
            rc = c.loop_read()
            if rc != paho.MQTT_ERR_SUCCESS:
                self._fail(aiomqtt.MqttCodeError(rc, "connection lost"))
                self._unwatch()
                return
            sock = c.socket()
            # TLS: bytes already decrypted are not signalled by the socket again
            if not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                return

    def _writable(self) -> None:
        if self._fd is None:
            return
        rc = self._paho.loop_write()
        if rc != paho.MQTT_ERR_SUCCESS:
            self._fail(aiomqtt.MqttCodeError(rc, "connection lost"))

    async def _misc_loop(self) -> None:
        while self._paho.loop_misc() == paho.MQTT_ERR_SUCCESS:
            await asyncio.sleep(1.0)


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
