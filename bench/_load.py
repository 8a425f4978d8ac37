"""Load generator for ``bench_ingest``: simulated gateways publishing telemetry over MQTT.

Run as its own process (``python -m bench._load ...``) so the publishers use a core of their
own and the controller under test another. Each simulated gateway has its own MQTT v5
connection (paho, as a real gateway has its own) and publishes ``TelemetryBatch`` payloads of
``--readings`` luminaire readings at QoS 1 on ``lykta/v1/{site}/{gateway}/telemetry``, with
``seq`` counting up from 0 and a distinct timestamp per batch (so no two readings are the same
InfluxDB point and a count in InfluxDB equals the readings published).

Payloads are encoded once with :func:`lykta.contract.encode` and then stamped per message by a
byte replacement of ``seq`` and ``ts`` (see :func:`payload_template`): the generator must cost
far less CPU than the consumer it measures.

Two modes: ``--messages N`` publishes N batches per gateway as fast as the broker takes them
(at most ``--window`` unacknowledged at a time); ``--rate R --seconds S`` paces R batches/s
over all this process's gateways for S seconds. At the end, once the broker acknowledged
every message, one JSON line goes to stdout: messages, readings, first and last publish time.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from lykta.contract import LuminaireReading, TelemetryBatch, Topic, TopicKind, encode

T0 = (int(time.time()) // 86_400 - 2) * 86_400_000
"""Timestamp of batch 0 (ms): midnight UTC two days ago, the same in every process of a run
and inside ingest's plausible window (``[limits] max_age_s``, 30 days; a run's batches stay
well below the 2 days ahead); batch ``seq`` is stamped ``T0 + seq * STEP_MS``."""
STEP_MS = 1000
_SEQ_MARK = 987_654_321
_TS_MARK = 1_111_111_111_111


def payload_template(gateway: str, readings: int) -> bytes:
    """A ``TelemetryBatch`` of ``readings`` luminaire readings, encoded, with marker values
    where ``seq`` and the timestamps go (:func:`stamp` fills them in)."""
    batch = TelemetryBatch(
        seq=_SEQ_MARK,
        ts=_TS_MARK,
        luminaires=[
            LuminaireReading(
                id=f"{gateway}-L{i:03d}",
                ts=_TS_MARK,
                level=100 + i % 150,
                power_w=20.0 + (i % 17) * 0.5,
                energy_wh=1000.0 + i,
                status=i % 2,
            )
            for i in range(readings)
        ],
    )
    body = encode(batch)
    assert body.count(str(_SEQ_MARK).encode()) == 1, "seq marker must occur once"
    return body


def stamp(template: bytes, seq: int) -> bytes:
    """The payload of batch ``seq`` from a :func:`payload_template`."""
    return template.replace(b"%d" % _SEQ_MARK, b"%d" % seq, 1).replace(
        b"%d" % _TS_MARK, b"%d" % (T0 + seq * STEP_MS)
    )


class Gateways:
    """``names`` as paho clients connected to the broker, sharing one acknowledgement window."""

    def __init__(self, host: str, port: int, site: str, names: list[str], readings: int) -> None:
        self.names = names
        self.topics = [str(Topic(site, g, TopicKind.TELEMETRY)) for g in names]
        self.templates = [payload_template(g, readings) for g in names]
        self.seq = [0] * len(names)
        self.sent = 0
        self.acked = 0
        self._cond = threading.Condition()
        self.clients: list[paho.Client] = []
        for g in names:
            c = paho.Client(
                CallbackAPIVersion.VERSION2,
                client_id=f"bench-gw-{site}-{g}",
                protocol=paho.MQTTv5,
            )
            c.max_inflight_messages_set(200)
            c.max_queued_messages_set(0)
            c.on_publish = self._on_publish
            c.connect(host, port, keepalive=60)
            c.loop_start()
            self.clients.append(c)
        deadline = time.monotonic() + 10
        while not all(c.is_connected() for c in self.clients):
            if time.monotonic() > deadline:
                raise SystemExit(f"bench._load: gateways could not connect to {host}:{port}")
            time.sleep(0.01)

    def _on_publish(self, client: paho.Client, userdata: object, mid: int, rc: object,
                    props: object) -> None:
        with self._cond:
            self.acked += 1
            self._cond.notify_all()

    def publish(self, i: int, window: int) -> None:
        """Publish gateway ``i``'s next batch once fewer than ``window`` await their PUBACK."""
        with self._cond:
            while self.sent - self.acked >= window:
                self._cond.wait(1.0)
            self.sent += 1
        seq = self.seq[i]
        self.seq[i] = seq + 1
        info = self.clients[i].publish(self.topics[i], stamp(self.templates[i], seq), qos=1)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise SystemExit(f"bench._load: publish on {self.topics[i]} failed: rc={info.rc}")

    def drain(self, within_s: float = 120.0) -> None:
        """Wait until the broker acknowledged everything published, then disconnect."""
        with self._cond:
            self._cond.wait_for(lambda: self.acked >= self.sent, within_s)
        for c in self.clients:
            c.disconnect()
            c.loop_stop()


def main(argv: list[str] | None = None) -> None:
    """Parse the options, publish, print the summary line."""
    p = argparse.ArgumentParser(prog="python -m bench._load", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--site", required=True)
    p.add_argument("--gateways", required=True, help="comma-separated gateway ids")
    p.add_argument("--readings", type=int, default=100, help="luminaire readings per batch")
    p.add_argument("--messages", type=int, help="batches per gateway, as fast as possible")
    p.add_argument("--rate", type=float, help="batches/s over all gateways of this process")
    p.add_argument("--seconds", type=float, help="how long to publish at --rate")
    p.add_argument("--window", type=int, default=1000, help="unacknowledged messages at most")
    a = p.parse_args(argv)
    if (a.messages is None) == (a.rate is None) or (a.rate is not None and a.seconds is None):
        p.error("give either --messages, or --rate with --seconds")
    gws = Gateways(a.host, a.port, a.site, a.gateways.split(","), a.readings)
    n = len(gws.names)
    t_first = time.time()
    if a.messages is not None:
        for _ in range(a.messages):
            for i in range(n):
                gws.publish(i, a.window)
    else:
        start = time.monotonic()
        k = 0
        while (elapsed := time.monotonic() - start) < a.seconds:
            due = int(elapsed * a.rate)
            while k < due:
                gws.publish(k % n, a.window)
                k += 1
            time.sleep(0.005)
    t_last = time.time()
    gws.drain()
    print(json.dumps({
        "messages": gws.sent,
        "acked": gws.acked,
        "readings": gws.sent * a.readings,
        "per_gateway": dict(zip(gws.names, gws.seq, strict=True)),
        "t_first": t_first,
        "t_last": t_last,
    }), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
