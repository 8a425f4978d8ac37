"""The consumer side of ``bench_ingest``, one process each (``python -m bench._consumers MODE``).

Modes, all reading ``lykta/v1/{site}/+/telemetry`` from the broker and writing to InfluxDB:

- ``lykta``: the controller's real :class:`controller.ingest.Ingest` with
  :class:`controller.influx_writer.InfluxWriter` (shared subscription, manual PUBACK after the
  lines are stored, persistent session under ``--client-id``);
- ``ceiling``: a bare paho subscriber (auto PUBACK, no decoding) that POSTs pre-built lines to
  ``/write`` in 5000-line bodies, two requests in flight: what broker and database give at best;
- ``naive``: decode each batch, one ``influxdb_client.Point`` and one ``/write`` POST per
  reading: how a first attempt would look.

Every process prints JSON lines on stdout: ``{"ready": true}`` once subscribed, then every
``STATUS_S`` its counters: ``messages``, ``readings`` (received), ``stored`` (lines in InfluxDB,
for ``lykta`` the readings acknowledged after the writer stored them), ``t_stored`` (wall
clock when ``stored`` last grew) and ``hwm_kb`` (peak resident memory, ``VmHWM``). SIGTERM
stops it cleanly after a last status line.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path

import httpx

STATUS_S = 0.25
BODY_LINES = 5000


def vm_hwm_kb(pid: int | str = "self") -> int:
    """Peak resident set size of ``pid`` in KiB (``VmHWM`` of ``/proc/PID/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _emit(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


# -- lykta ---------------------------------------------------------------------------------


async def run_lykta(a: argparse.Namespace) -> None:
    """The controller's ingest path as deployed, reporting its counters until SIGTERM."""
    from controller.influx_writer import InfluxConfig, InfluxWriter
    from controller.ingest import Ingest
    from lykta.config import MqttConfig

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    influx = InfluxConfig(url=a.influx, database=a.db)
    async with InfluxWriter(influx, spool_dir=Path(a.spool)) as writer:
        ingest = Ingest(
            MqttConfig(host=a.host, port=a.port),
            a.site,
            writer,
            client_id=a.client_id,
            session_expiry_s=a.session_expiry,
            detect_gaps=not a.no_gaps,
        )
        async with ingest:
            try:
                # Up = subscribed, or already ingesting what its resumed session delivers (the
                # SUBACKs of a restarted controller may queue behind that backlog).
                async with asyncio.timeout(a.connect_timeout):
                    while not (ingest.connected.is_set() or ingest.stats.messages):
                        await asyncio.sleep(0.05)
            except TimeoutError:
                _emit(error=f"not subscribed within {a.connect_timeout:.0f} s", hwm_kb=vm_hwm_kb(),
                      messages=ingest.stats.messages)
                raise SystemExit(1) from None
            _emit(ready=True)
            stored, t_stored, next_status, held_max = 0, time.time(), 0.0, 0
            while not stop.is_set():
                # Poll often so t_stored is exact to ~20 ms; report less often.
                s = ingest.stats
                if s.readings_committed != stored:
                    stored, t_stored = s.readings_committed, time.time()
                now = time.monotonic()
                held_max = max(held_max, _held(ingest))
                if now >= next_status:
                    next_status = now + STATUS_S
                    _emit(messages=s.messages, readings=s.readings, stored=stored,
                          t_stored=t_stored, malformed=s.malformed, gaps=s.gaps,
                          queued=writer.stats.queued_lines, hwm_kb=vm_hwm_kb(),
                          held_max=held_max, duplicates=s.duplicates,
                          confirms=ingest.confirmations.sent)
                try:
                    async with asyncio.timeout(0.02):
                        await stop.wait()
                except TimeoutError:
                    pass
        s = ingest.stats
    _emit(messages=s.messages, readings=s.readings, stored=s.readings_committed,
          t_stored=t_stored, malformed=s.malformed, gaps=s.gaps, queued=0,
          hwm_kb=vm_hwm_kb(), held_max=held_max, final=True)


def _held(ingest: object) -> int:
    """Messages the broker sent that the controller has not acknowledged yet: those waiting
    in aiomqtt's queue plus those taken but not committed. Receive Maximum should bound it.
    (Reads Ingest's client, a private attribute: an instrument, not an interface; 0 if
    it is not there.)"""
    client = getattr(ingest, "_client", None)
    stats = ingest.stats  # type: ignore[attr-defined]
    uncommitted = (stats.readings - stats.readings_committed) // 100
    try:
        return len(client.messages) + uncommitted if client is not None else uncommitted
    except (AttributeError, TypeError):
        return uncommitted


# -- ceiling and naive (paho, threads) ---------------------------------------------------


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages = 0
        self.readings = 0
        self.stored = 0
        self.t_stored = time.time()

    def add_stored(self, n: int) -> None:
        with self.lock:
            self.stored += n
            self.t_stored = time.time()

    def report(self, **extra: object) -> None:
        with self.lock:
            _emit(messages=self.messages, readings=self.readings, stored=self.stored,
                  t_stored=self.t_stored, hwm_kb=vm_hwm_kb(), **extra)


def _subscriber(a: argparse.Namespace, on_message: object, name: str) -> object:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.subscribeoptions import SubscribeOptions

    from lykta.contract import TopicKind
    from lykta.contract.topics import subscription

    subscribed = threading.Event()
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{name}-{a.site}",
                    protocol=paho.MQTTv5)
    c.max_inflight_messages_set(1000)
    c.on_message = on_message
    c.on_subscribe = lambda *_: subscribed.set()
    c.connect(a.host, a.port, keepalive=60)
    c.subscribe(subscription(a.site, TopicKind.TELEMETRY), options=SubscribeOptions(qos=1))
    c.loop_start()
    if not subscribed.wait(30):
        raise SystemExit(f"bench._consumers {name}: no SUBACK from {a.host}:{a.port}")
    return c


def _wait_for_stop(counters: _Counters, expected: int) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set() and counters.stored < expected:
        counters.report()
        stop.wait(STATUS_S)
    counters.report(final=True)


def run_ceiling(a: argparse.Namespace) -> None:
    """Bare subscriber: every message stands for ``--readings`` pre-built lines, POSTed in
    5000-line bodies by two sender threads (two requests in flight, as the writer does)."""
    from bench._load import STEP_MS, T0
    from controller.lineprotocol import encode_line

    per_msg = a.readings
    total_lines = a.messages * per_msg
    # Pre-built: the same shape of line the data model writes, one distinct point per reading.
    lines = [
        encode_line(
            "luminaire",
            {"site": a.site, "gateway": f"gw{(k // 100) % 100}", "luminaire": f"L{k % 100:02d}"},
            {"energy_wh": 1000.5, "level": 180, "power_w": 25.5, "status": 0},
            T0 + (k // 10_000) * STEP_MS,  # 100 x 100 series, then the next timestamp
        )
        for k in range(total_lines)
    ]
    bodies = ["\n".join(lines[i : i + BODY_LINES]).encode()
              for i in range(0, total_lines, BODY_LINES)]
    del lines
    msgs_per_body = BODY_LINES // per_msg
    todo: queue.Queue[int | None] = queue.Queue()
    counters = _Counters()

    def on_message(client: object, userdata: object, message: object) -> None:
        with counters.lock:
            counters.messages += 1
            counters.readings += per_msg
            n = counters.messages
        if n % msgs_per_body == 0 or n == a.messages:
            todo.put((n - 1) // msgs_per_body)

    def sender() -> None:
        with httpx.Client(base_url=a.influx, timeout=60) as http:
            while (i := todo.get()) is not None:
                if i < len(bodies):
                    r = http.post("/write", params={"db": a.db, "precision": "ms"},
                                  content=bodies[i])
                    r.raise_for_status()
                    counters.add_stored(bodies[i].count(b"\n") + 1)

    httpx.post(f"{a.influx}/query", data={"q": f'CREATE DATABASE "{a.db}"'}).raise_for_status()
    senders = [threading.Thread(target=sender, daemon=True) for _ in range(2)]
    for t in senders:
        t.start()
    c = _subscriber(a, on_message, "ceiling")
    _emit(ready=True)
    _wait_for_stop(counters, total_lines)
    c.disconnect()  # type: ignore[attr-defined]
    for _ in senders:
        todo.put(None)


def run_naive(a: argparse.Namespace) -> None:
    """Decode each batch; one ``Point`` and one ``/write`` POST per reading (keep-alive)."""
    from influxdb_client import Point, WritePrecision

    from controller.datamodel import LUMINAIRE
    from lykta.contract import TelemetryBatch, Topic, decode

    counters = _Counters()
    http = httpx.Client(base_url=a.influx, timeout=60)
    params = {"db": a.db, "precision": "ms"}

    def on_message(client: object, userdata: object, message: object) -> None:
        t = Topic.parse(message.topic)  # type: ignore[attr-defined]
        batch = decode(message.payload, TelemetryBatch)  # type: ignore[attr-defined]
        with counters.lock:
            counters.messages += 1
            counters.readings += len(batch.luminaires)
        for r in batch.luminaires:
            p = (
                Point(LUMINAIRE)
                .tag("site", t.site)
                .tag("gateway", t.gateway)
                .tag("luminaire", r.id)
                .field("level", r.level)
                .field("power_w", r.power_w)
                .field("energy_wh", r.energy_wh)
                .field("status", r.status)
                .time(r.ts, WritePrecision.MS)
            )
            http.post("/write", params=params, content=p.to_line_protocol()).raise_for_status()
            counters.add_stored(1)

    http.post("/query", data={"q": f'CREATE DATABASE "{a.db}"'}).raise_for_status()
    c = _subscriber(a, on_message, "naive")
    _emit(ready=True)
    _wait_for_stop(counters, a.messages * a.readings)
    c.disconnect()  # type: ignore[attr-defined]
    http.close()


def main(argv: list[str] | None = None) -> None:
    """Parse the options and run the chosen consumer."""
    p = argparse.ArgumentParser(prog="python -m bench._consumers", description=__doc__)
    p.add_argument("mode", choices=("lykta", "ceiling", "naive"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--site", required=True)
    p.add_argument("--influx", required=True, help="InfluxDB URL")
    p.add_argument("--db", required=True)
    p.add_argument("--client-id", help="lykta: MQTT client id (the persistent session's key)")
    p.add_argument("--spool", help="lykta: the writer's spool directory")
    p.add_argument("--no-gaps", action="store_true", help="lykta: detect_gaps=False")
    p.add_argument("--session-expiry", type=int, default=300,
                   help="lykta: MQTT session expiry (s), as [mqtt] session_expiry_s")
    p.add_argument("--profile", help="lykta: write cProfile stats to this file")
    p.add_argument("--connect-timeout", type=float, default=30.0,
                   help="lykta: give up if not subscribed within this many seconds")
    p.add_argument("--messages", type=int, default=0, help="ceiling/naive: messages expected")
    p.add_argument("--readings", type=int, default=100, help="ceiling/naive: per message")
    a = p.parse_args(argv)
    if a.mode == "lykta":
        if not (a.client_id and a.spool):
            p.error("lykta needs --client-id and --spool")
        if a.profile:
            prof = cProfile.Profile()
            prof.enable()
            try:
                asyncio.run(run_lykta(a))
            finally:
                prof.disable()
                prof.dump_stats(a.profile)
        else:
            asyncio.run(run_lykta(a))
    elif a.mode == "ceiling":
        run_ceiling(a)
    else:
        run_naive(a)
    os._exit(0)  # paho/httpx daemon threads must not hold the exit


if __name__ == "__main__":
    main(sys.argv[1:])
