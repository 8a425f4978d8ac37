"""The controller's outgoing MQTT connection: programs, commands and alarm notices.

Kept apart from the ingest connection on purpose: ingest withholds acknowledgements for
backpressure, and outgoing commands must not wait behind that. ``async with Publisher(...)``
connects (and reconnects on the next publish after a broken link).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import aiomqtt
from paho.mqtt.properties import Properties

from lykta.config import MqttConfig
from lykta.mqtt import make_client

log = logging.getLogger("lykta.controller.publisher")


class Publisher:
    """One MQTT v5 client for everything the controller publishes."""

    def __init__(self, mqtt: MqttConfig, site: str, *, client_id: str | None = None) -> None:
        self.mqtt = mqtt
        self.site = site
        self.client_id = client_id or f"lykta-controller-out-{site}-{uuid.uuid4().hex[:8]}"
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Publisher:
        try:
            await self._connect()
        except aiomqtt.MqttError as e:
            # the broker may come up after us: the next publish connects (or raises)
            log.warning("broker not reachable yet (%s); will connect on the first publish", e)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Disconnect."""
        client, self._client = self._client, None
        if client is not None:
            try:
                # aiomqtt waits without a limit for the broker to close the connection
                async with asyncio.timeout(5):
                    await client.__aexit__(None, None, None)
            except (aiomqtt.MqttError, TimeoutError) as e:
                log.warning("closing the MQTT connection: %r", e)

    async def _connect(self) -> aiomqtt.Client:
        client = make_client(self.mqtt, self.client_id)
        await client.__aenter__()
        self._client = client
        return client

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        """Publish and wait for the broker's PUBACK (QoS 1); one reconnect on a broken link.

        Raises ``aiomqtt.MqttError`` if the broker cannot be reached.
        """
        async with self._lock:
            for attempt in (1, 2):
                try:
                    client = self._client or await self._connect()
                    await client.publish(
                        topic,
                        payload,
                        qos=qos,
                        retain=retain,
                        properties=properties,
                        timeout=timeout_s,
                    )
                    return
                except aiomqtt.MqttError as e:
                    log.warning("publish to %s failed (%s), attempt %d", topic, e, attempt)
                    await self.close()
                    if attempt == 2:
                        raise
