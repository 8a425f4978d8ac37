"""The ingest client's bound on a real broker (lykta.mqtt.BoundedClient, public paho API only):
however far the consumer falls behind, at most ``high_water`` messages wait in memory; the rest
wait in the broker, and nothing is dropped or acknowledged before the consumer says so."""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt

from lykta.config import MqttConfig
from lykta.mqtt import BoundedClient

N = 3000
HIGH = 50
UNACKED = 400


async def test_a_stalled_consumer_holds_at_most_high_water_messages(mqtt_cfg: MqttConfig) -> None:
    topic = f"bp/{uuid.uuid4().hex}"
    client_id = f"bp-{uuid.uuid4().hex[:8]}"
    session = {"clean_start": False, "session_expiry_s": 300}
    consumer = BoundedClient(mqtt_cfg, client_id, high_water=HIGH, **session)
    async with consumer:
        await consumer.subscribe(topic, qos=1)
        async with aiomqtt.Client(mqtt_cfg.host, mqtt_cfg.port, max_inflight_messages=100,
                                  protocol=aiomqtt.ProtocolVersion.V5) as pub:  # fmt: skip
            for i in range(N):
                await pub.publish(topic, str(i).encode(), qos=1)
        await asyncio.sleep(1.0)  # the consumer reads nothing: the broker keeps sending
        assert consumer.max_queued <= HIGH
        assert consumer.pauses >= 1
        got = []
        async for m in consumer.messages:  # catching up: the socket is read again
            got.append(int(m.payload))
            if len(got) == UNACKED:
                break  # consumed, none acknowledged (the broker's in-flight window allows it)
            assert consumer.max_queued <= HIGH
    # reconnect the same session: nothing was acknowledged, so the broker sends everything
    # from the first unacknowledged message again; acknowledge as we go this time
    again = BoundedClient(mqtt_cfg, client_id, high_water=HIGH, **session)
    seen: set[int] = set()
    async with again:
        async with asyncio.timeout(60):
            async for m in again.messages:
                seen.add(int(m.payload))
                again.ack(m)
                if len(seen) == N:
                    break
        assert again.max_queued <= HIGH
    assert got == list(range(UNACKED)) and seen == set(range(N))
