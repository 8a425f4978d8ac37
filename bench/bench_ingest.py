"""Controller ingest end to end: simulated gateways -> Mosquitto -> Ingest -> InfluxDB 1.x.

Everything runs on a private :class:`lykta.stack.LocalStack` in a temp dir (127.0.0.1 only);
the publishers (:mod:`bench._load`, 2 processes, one MQTT connection per gateway, QoS 1,
100 luminaire readings per ``TelemetryBatch``) and each consumer (:mod:`bench._consumers`)
are separate processes, so the two cores are used as in production. Every part checks zero
loss by an InfluxQL ``count`` in a fresh database against the readings published.

1. lykta: :class:`controller.ingest.Ingest` + :class:`controller.influx_writer.InfluxWriter`,
   a fixed load published as fast as the broker takes it; the rate is readings / (last reading
   stored - first published), median of the runs.
2. ceiling, same run: a bare paho subscriber (no decoding) POSTing pre-built lines in
   5000-line bodies.
3. naive, same run: one ``influxdb_client.Point`` and one ``/write`` per reading (short).
4. two controller processes on the shared subscription (``detect_gaps=False``): the split
   and the total stored.
5. overload: 1.5 x the measured sustained rate for ``--overload-seconds``; the controller is
   killed with SIGKILL at a third and started again with the same client id (its persistent
   session holds the backlog), and killed again at two thirds and replaced by a NEW process
   with a new client id (the old session stays in the shared group, drawing its share, until
   it expires after ``SESSION_EXPIRY_S``); every reading must be stored, and each controller's
   peak RSS (``VmHWM``) stay below 1 GiB. Also shown: the most messages the controller held
   unacknowledged (aiomqtt's queue plus those not yet committed) against the Receive Maximum
   it asked for: the broker is supposed to bound it, Mosquitto 2.0.11 does not.

6. latency: the same path at 0.5 x and 1.0 x the sustained rate; a probe gateway in this
   process publishes one batch every 0.25 s and polls InfluxDB (every 20 ms) until the batch
   is queryable: publish -> queryable p50/p99, measured without the code under test. The
   publishers also report publish -> confirmation received.

End-to-end confirmation is on wherever Lykta's controller runs (parts 1, 4, 5, 6): the
publishers behave like gateways' outboxes (``bench._load --confirm-timeout``), keep every
batch until the controller confirms it, and re-send what is not confirmed in time.

``./run.sh bench ingest`` runs the full benchmark (about 5 minutes); for a smoke run:
``LYKTA_BENCH_QUICK=1 ./run.sh bench ingest`` or
``.venv/bin/python -m bench.bench_ingest --quick [--overload-seconds S] [--overload-rate R]
[--profile]``.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench._consumers import vm_hwm_kb
from controller.datamodel import LUMINAIRE
from controller.ingest import Ingest
from lykta.stack import LocalStack, StackInfo

READINGS = 100  # luminaire readings per telemetry batch
GATEWAYS = 20
PUBLISHERS = 2  # publisher processes
GOAL_VS_CEILING = 0.5
GOAL_VS_NAIVE = 5.0
GOAL_ABSOLUTE = 100_000
RSS_LIMIT_KB = 1 << 20  # 1 GiB
RECEIVE_MAX = inspect.signature(Ingest).parameters["receive_maximum"].default
IDLE_GIVE_UP_S = 20.0  # nothing stored for this long after publishing ended: report the loss
RESTART_WITHIN_S = 120.0  # the restarted controller must be subscribed by then
CONFIRM_TIMEOUT_S = 30.0  # the gateways' default (gateway.link.CONFIRM_TIMEOUT_S)
SESSION_EXPIRY_S = 20  # the benchmark's controllers: a replaced one's share returns soon
PROBE_PERIOD_S = 0.25


@dataclass(frozen=True, slots=True)
class Plan:
    """Sizes of one benchmark run."""

    runs: int
    lykta_messages: int  # per gateway, per run (x GATEWAYS x READINGS readings)
    naive_readings: int
    split_messages: int  # per gateway, two-controller part
    overload_s: float
    latency_s: float  # each latency run


FULL = Plan(runs=3, lykta_messages=300, naive_readings=5_000, split_messages=100, overload_s=120,
            latency_s=30)  # fmt: skip
QUICK = Plan(runs=1, lykta_messages=30, naive_readings=2_000, split_messages=25, overload_s=15,
             latency_s=8)  # fmt: skip


# -- processes -----------------------------------------------------------------------------


class NotReady(RuntimeError):
    """A consumer process that did not get subscribed (the message says why)."""


class Child:
    """A benchmark subprocess printing JSON lines; keeps the latest status line."""

    def __init__(self, argv: list[str], name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, *argv], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parent.parent,
        )
        self.ready = threading.Event()
        self.last: dict = {}
        self.max_hwm_kb = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if msg.get("ready"):
                self.ready.set()
            else:
                self.last = msg
                self.max_hwm_kb = max(self.max_hwm_kb, msg.get("hwm_kb", 0))

    def wait_ready(self, within_s: float = 60.0) -> Child:
        """Return once the child is subscribed; raise naming the child otherwise."""
        deadline = time.monotonic() + within_s
        while not self.ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                why = self.last.get("error", f"exit code {self.proc.returncode}")
                raise NotReady(f"{self.name} did not become ready: {why}")
        return self

    def stop(self, within_s: float = 60.0) -> dict:
        """SIGTERM, wait for the exit, return the last status line."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(within_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reader.join(5)
        return self.last

    def kill(self) -> None:
        """SIGKILL (no goodbye: a crashed controller) and reap."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait()
        self._reader.join(5)


@dataclass(slots=True)
class Published:
    """What the publishers report once the broker acknowledged everything."""

    messages: int = 0
    readings: int = 0
    t_first: float = 0.0
    t_last: float = 0.0
    per_gateway: dict[str, int] = field(default_factory=dict)
    confirmed: int = 0
    unconfirmed: int = 0
    resent: int = 0
    confirm_p50_ms: list[float] = field(default_factory=list)  # per publisher process
    confirm_p99_ms: list[float] = field(default_factory=list)


class Bench:
    """The stack, a temp dir, and every child process started, cleaned up on exit."""

    def __init__(self, stack: StackInfo, tmp: Path) -> None:
        self.stack = stack
        self.tmp = tmp
        self.children: list[Child] = []

    def close(self) -> None:
        """Kill whatever child is still running (after a failure)."""
        for c in self.children:
            c.kill()

    def site(self) -> str:
        return f"bench{uuid.uuid4().hex[:8]}"

    def consumer(self, mode: str, site: str, db: str, *extra: str, within_s: float = 60) -> Child:
        """Start a consumer process (see :mod:`bench._consumers`) and wait until subscribed."""
        argv = ["-m", "bench._consumers", mode, "--port", str(self.stack.mqtt_port),
                "--site", site, "--influx", self.stack.influx_url, "--db", db,
                "--connect-timeout", str(within_s - 5), *extra]
        c = Child(argv, f"{mode} consumer")
        self.children.append(c)
        return c.wait_ready(within_s)

    def lykta(self, site: str, db: str, client_id: str, *extra: str,
              within_s: float = 60) -> Child:
        """Start a controller ingest process with a persistent session under ``client_id``."""
        spool = self.tmp / f"spool-{client_id}"
        return self.consumer("lykta", site, db, "--client-id", client_id, "--spool", str(spool),
                             "--session-expiry", str(SESSION_EXPIRY_S), *extra,
                             within_s=within_s)

    def publish(self, site: str, gateways: int, *how: str, confirm: bool = False) -> list[Child]:
        """Start the publisher processes for ``gateways`` gateways (``how``: the mode;
        ``confirm``: keep batches until the controller confirms them, as gateways do)."""
        if confirm:
            how = (*how, "--confirm-timeout", str(CONFIRM_TIMEOUT_S))
        names = [f"gw{i:03d}" for i in range(gateways)]
        procs = min(PUBLISHERS, gateways)
        pubs = []
        for p in range(procs):
            argv = ["-m", "bench._load", "--port", str(self.stack.mqtt_port), "--site", site,
                    "--gateways", ",".join(names[p::procs]), "--readings", str(READINGS), *how]
            pubs.append(Child(argv, f"publisher {p}"))
        self.children.extend(pubs)
        return pubs

    def published(self, pubs: list[Child], within_s: float = 600.0) -> Published:
        """Wait for the publishers to finish; their totals."""
        out = Published(t_first=float("inf"))
        for p in pubs:
            try:
                code = p.proc.wait(within_s)
            except subprocess.TimeoutExpired:
                p.kill()
                raise RuntimeError(f"bench_ingest: {p.name} did not finish") from None
            p._reader.join(5)
            if code != 0 or not p.last:
                raise RuntimeError(f"bench_ingest: {p.name} failed (exit code {code})")
            out.messages += p.last["messages"]
            out.readings += p.last["readings"]
            out.t_first = min(out.t_first, p.last["t_first"])
            out.t_last = max(out.t_last, p.last["t_last"])
            out.per_gateway.update(p.last["per_gateway"])
            if "confirmed" in p.last:
                out.confirmed += p.last["confirmed"]
                out.unconfirmed += p.last["unconfirmed"]
                out.resent += p.last["resent"]
                if p.last["confirm_p50_ms"] is not None:
                    out.confirm_p50_ms.append(p.last["confirm_p50_ms"])
                    out.confirm_p99_ms.append(p.last["confirm_p99_ms"])
        return out

    def count(self, db: str, where: str = "") -> int:
        """Luminaire points stored in ``db`` (InfluxQL ``count``), optionally ``WHERE ...``."""
        q = f'SELECT count("level") FROM "{LUMINAIRE}"' + (f" WHERE {where}" if where else "")
        r = httpx.post(f"{self.stack.influx_url}/query", data={"db": db, "q": q}, timeout=300)
        r.raise_for_status()
        series = r.json()["results"][0].get("series")
        return series[0]["values"][0][1] if series else 0

    def drop(self, db: str) -> None:
        """Drop ``db`` (keeps the InfluxDB small between parts)."""
        httpx.post(f"{self.stack.influx_url}/query", data={"q": f'DROP DATABASE "{db}"'},
                   timeout=120).raise_for_status()


def wait_stored(consumers: list[Child], expected: int, give_up_s: float = IDLE_GIVE_UP_S) -> int:
    """Wait until the consumers together report ``expected`` readings stored, or nothing new
    was stored for ``give_up_s``; return the total they report."""
    last, since = -1, time.monotonic()
    while True:
        total = sum(c.last.get("stored", 0) for c in consumers)
        if total >= expected:
            return total
        if total != last:
            last, since = total, time.monotonic()
        elif time.monotonic() - since > give_up_s:
            return total
        time.sleep(0.05)


# -- the parts -----------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    """One measured run: the rate and the zero-loss check."""

    rate: float
    published: int
    stored: int
    publish_rate: float  # readings/s the publishers got acknowledged by the broker


def _timed(b: Bench, mode: str, messages_per_gw: int, gateways: int, *extra: str) -> Run:
    site, db = b.site(), f"{mode}_{uuid.uuid4().hex[:6]}"
    total_msgs = messages_per_gw * gateways
    if mode == "lykta":
        c = b.lykta(site, db, f"ctl-{site}", *extra)
    else:
        c = b.consumer(mode, site, db, "--messages", str(total_msgs), "--readings", str(READINGS))
    pub = b.published(b.publish(site, gateways, "--messages", str(messages_per_gw),
                                confirm=mode == "lykta"))  # fmt: skip
    wait_stored([c], pub.readings)
    last = c.stop()
    stored = b.count(db)
    b.drop(db)
    return Run(pub.readings / (last["t_stored"] - pub.t_first), pub.readings, stored,
               pub.readings / (pub.t_last - pub.t_first))


def part_rates(b: Bench, plan: Plan) -> dict[str, list[Run]]:
    """Parts 1-3: lykta, ceiling (interleaved, ``plan.runs`` each) and one naive run."""
    runs: dict[str, list[Run]] = {"lykta": [], "ceiling": [], "naive": []}
    for i in range(plan.runs):
        for mode in ("lykta", "ceiling"):
            r = _timed(b, mode, plan.lykta_messages, GATEWAYS)
            runs[mode].append(r)
            print(f"  run {i + 1} {mode:8s} {r.rate:10,.0f} readings/s  "
                  f"stored {r.stored:,} of {r.published:,} (published at {r.publish_rate:,.0f}/s)",
                  flush=True)
    naive_gws = 5
    r = _timed(b, "naive", max(1, plan.naive_readings // (READINGS * naive_gws)), naive_gws)
    runs["naive"].append(r)
    print(f"  run 1 naive    {r.rate:10,.0f} readings/s  stored {r.stored:,} of {r.published:,}",
          flush=True)
    return runs


@dataclass(slots=True)
class Split:
    """Part 4: two controllers on the shared subscription."""

    published: int
    per_process: list[int]
    stored: int


def part_split(b: Bench, plan: Plan) -> Split:
    """Two controller processes, one shared subscription, a fixed load."""
    site, db = b.site(), f"split_{uuid.uuid4().hex[:6]}"
    ctls = [b.lykta(site, db, f"ctl{i}-{site}", "--no-gaps") for i in range(2)]
    pub = b.published(b.publish(site, GATEWAYS, "--messages", str(plan.split_messages),
                                confirm=True))  # fmt: skip
    wait_stored(ctls, pub.readings)
    per = [c.stop().get("stored", 0) for c in ctls]
    stored = b.count(db)
    b.drop(db)
    return Split(pub.readings, per, stored)


@dataclass(slots=True)
class Overload:
    """Part 5: offered load above capacity, two crashes: a restart with the same client id,
    then a replacement by a new process with a new client id."""

    offered: float  # readings/s
    seconds: float
    published: int
    stored: int
    drain_s: float  # from the end of publishing to the last batch confirmed
    hwm_kb: list[int]  # peak RSS of each controller incarnation
    held_max: list[int]  # most messages held unacknowledged, each incarnation
    broker_hwm_kb: int
    gaps: int
    restart_error: str  # empty when the restarted controllers got subscribed
    confirmed: int
    unconfirmed: int
    resent: int


def part_overload(b: Bench, rate: float, seconds: float) -> Overload:
    """Publish at ``rate`` readings/s for ``seconds``; SIGKILL the controller at a third and
    restart it (same client id); SIGKILL it at two thirds and start a new process with a new
    client id; wait until every batch is confirmed, then count."""
    site, db = b.site(), f"overload_{uuid.uuid4().hex[:6]}"
    ctl = b.lykta(site, db, f"ctl-{site}", "--no-gaps")
    per_proc = rate / READINGS / PUBLISHERS
    pubs = b.publish(site, GATEWAYS, "--rate", f"{per_proc:.1f}", "--seconds", str(seconds),
                     confirm=True)  # fmt: skip
    hwm: list[int] = []
    held: list[int] = []
    restart_error = ""
    for step, client_id in ((1, f"ctl-{site}"), (2, f"ctl-new-{site}")):
        time.sleep(seconds / 3)
        ctl.kill()
        how = "same client id" if step == 1 else f"a NEW process, client id {client_id}"
        print(f"  killed the controller at {step * seconds / 3:.0f} s "
              f"(it had stored {ctl.last.get('stored', 0):,}); starting {how}", flush=True)
        hwm.append(ctl.max_hwm_kb)
        held.append(ctl.last.get("held_max", 0))
        time.sleep(1.0)  # a real restart takes a moment; the backlog grows meanwhile
        try:
            ctl = b.lykta(site, db, client_id, "--no-gaps", within_s=RESTART_WITHIN_S)
        except NotReady as e:
            restart_error = str(e)
            print(f"  restart FAILED: {e}", flush=True)
            failed = b.children[-1]
            hwm.append(failed.max_hwm_kb or failed.last.get("hwm_kb", 0))
            break
    # the publishers end once every batch is confirmed (re-sending what is not)
    pub = b.published(pubs, within_s=seconds + 900)
    last: dict = {}
    if not restart_error:
        last = ctl.stop()
        hwm.append(ctl.max_hwm_kb)
        held.append(last.get("held_max", 0))
    stored = b.count(db)
    broker_hwm = vm_hwm_kb(b.stack.mqtt.pid)
    b.drop(db)
    t_done = max((p.last.get("t_confirmed", pub.t_last) for p in pubs), default=pub.t_last)
    return Overload(rate, seconds, pub.readings, stored, max(0.0, t_done - pub.t_last), hwm,
                    held, broker_hwm, last.get("gaps", 0), restart_error, pub.confirmed,
                    pub.unconfirmed, pub.resent)


@dataclass(slots=True)
class Latency:
    """Part 6: publish -> queryable in InfluxDB, and publish -> confirmed, at one rate."""

    rate: float
    probes: int
    queryable_p50_ms: float
    queryable_p99_ms: float
    lost_probes: int
    confirm_p50_ms: float
    confirm_p99_ms: float
    stored: int
    published: int


def _probe(b: Bench, site: str, db: str, stop: threading.Event, out: list[float],
           lost: list[int]) -> None:
    """A gateway of its own: one batch every PROBE_PERIOD_S, each polled for in InfluxDB
    until it is queryable (InfluxQL, every 20 ms); the latencies go to ``out``."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from bench._load import STEP_MS, T0, payload_template, stamp
    from lykta.contract import Topic, TopicKind

    gw = "probe"
    topic = str(Topic(site, gw, TopicKind.TELEMETRY))
    template = payload_template(gw, READINGS)
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-probe-{site}",
                    protocol=paho.MQTTv5)  # fmt: skip
    c.connect("127.0.0.1", b.stack.mqtt_port, keepalive=60)
    c.loop_start()
    outstanding: dict[int, float] = {}  # ts -> monotonic publish time
    seq, next_pub = 0, time.monotonic()
    last_id = f"{gw}-L{READINGS - 1:03d}"
    with httpx.Client(timeout=10) as http:
        while not stop.is_set() or outstanding:
            now = time.monotonic()
            if not stop.is_set() and now >= next_pub:
                ts = T0 + seq * STEP_MS
                outstanding[ts] = time.monotonic()
                c.publish(topic, stamp(template, seq), qos=1)
                seq += 1
                next_pub += PROBE_PERIOD_S
            if outstanding:
                q = (f"SELECT \"level\" FROM \"{LUMINAIRE}\" WHERE gateway = '{gw}' AND "
                     f"luminaire = '{last_id}' AND time >= {min(outstanding)}ms")
                r = http.post(f"{b.stack.influx_url}/query",
                              data={"db": db, "q": q, "epoch": "ms"})  # fmt: skip
                seen = time.monotonic()
                series = r.json()["results"][0].get("series") if r.status_code == 200 else None
                for t, _level in series[0]["values"] if series else []:
                    sent = outstanding.pop(t, None)
                    if sent is not None:
                        out.append((seen - sent) * 1000)
                for t, sent in list(outstanding.items()):
                    if seen - sent > 60:
                        outstanding.pop(t)
                        lost[0] += 1
            time.sleep(0.02)
    c.disconnect()
    c.loop_stop()


def _pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def part_latency(b: Bench, rate: float, seconds: float) -> Latency:
    """The load at ``rate`` readings/s for ``seconds``, with the probe measuring latency."""
    site, db = b.site(), f"latency_{uuid.uuid4().hex[:6]}"
    c = b.lykta(site, db, f"ctl-{site}")
    per_proc = rate / READINGS / PUBLISHERS
    pubs = b.publish(site, GATEWAYS, "--rate", f"{per_proc:.1f}", "--seconds", str(seconds),
                     confirm=True)  # fmt: skip
    stop = threading.Event()
    lat: list[float] = []
    lost = [0]
    probe = threading.Thread(target=_probe, args=(b, site, db, stop, lat, lost), daemon=True)
    probe.start()
    pub = b.published(pubs, within_s=seconds + 600)
    stop.set()
    probe.join(90)
    c.stop()
    stored = b.count(db, "gateway != 'probe'")  # the probe's batches are not the publishers'
    b.drop(db)
    return Latency(rate, len(lat), _pct(lat, 0.5), _pct(lat, 0.99), lost[0],
                   statistics.median(pub.confirm_p50_ms) if pub.confirm_p50_ms else float("nan"),
                   max(pub.confirm_p99_ms, default=float("nan")), stored, pub.readings)


def _profile(b: Bench, plan: Plan) -> None:
    """One extra lykta run under cProfile (not counted): where the controller's time goes."""
    out = b.tmp / "ingest.prof"
    r = _timed(b, "lykta", plan.lykta_messages, GATEWAYS, "--profile", str(out))
    print(f"\nprofiled run (cProfile slows it): {r.rate:,.0f} readings/s; top by own time:")
    pstats.Stats(str(out)).sort_stats("tottime").print_stats(18)


# -- main ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _bench() -> Iterator[Bench]:
    tmp = Path(tempfile.mkdtemp(prefix="lykta-bench-ingest-"))
    b: Bench | None = None
    try:
        with LocalStack(tmp / "stack") as stack:
            b = Bench(stack, tmp)
            yield b
    finally:
        if b is not None:
            b.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _ok(flag: bool) -> str:
    return "ok" if flag else "NO"


def main(argv: list[str] | None = None) -> None:
    """Run the five parts and print the table (``argv``: ``--quick``, ``--overload-seconds``,
    ``--profile``; without argv, ``LYKTA_BENCH_QUICK=1`` selects the quick plan)."""
    p = argparse.ArgumentParser(prog="python -m bench.bench_ingest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: small loads, one run each")
    p.add_argument("--overload-seconds", type=float, help="overload duration (120; quick 15)")
    p.add_argument("--overload-rate", type=float,
                   help="offered readings/s in the overload (default: 1.5 x the measured rate)")
    p.add_argument("--profile", action="store_true", help="add a cProfile'd controller run")
    a = p.parse_args(argv or [])
    quick = a.quick or os.environ.get("LYKTA_BENCH_QUICK") == "1"
    plan = QUICK if quick else FULL
    overload_s = a.overload_seconds if a.overload_seconds is not None else plan.overload_s
    load0 = os.getloadavg()[0]
    print(f"{'quick' if quick else 'full'} plan; {GATEWAYS} gateways in {PUBLISHERS} publisher "
          f"processes, {READINGS} readings per batch, QoS 1; load average {load0:.2f}",
          flush=True)
    with _bench() as b:
        runs = part_rates(b, plan)
        lykta = statistics.median(r.rate for r in runs["lykta"])
        ceiling = statistics.median(r.rate for r in runs["ceiling"])
        naive = statistics.median(r.rate for r in runs["naive"])
        split = part_split(b, plan)
        print(f"  two controllers: {split.per_process} stored of {split.published:,}", flush=True)
        over = part_overload(b, a.overload_rate or 1.5 * lykta, overload_s)
        print(f"  overload: {over.stored:,} stored of {over.published:,}, {over.resent:,} "
              f"re-sent, drained {over.drain_s:.1f} s after publishing", flush=True)
        lats = []
        for share in (0.5, 1.0):
            lt = part_latency(b, share * lykta, plan.latency_s)
            lats.append(lt)
            print(f"  latency at {lt.rate:,.0f} rdg/s: queryable p50 {lt.queryable_p50_ms:.0f} ms"
                  f" p99 {lt.queryable_p99_ms:.0f} ms ({lt.probes} probes); confirmed p50 "
                  f"{lt.confirm_p50_ms:.0f} ms p99 {lt.confirm_p99_ms:.0f} ms", flush=True)
        if a.profile:
            _profile(b, plan)
    lossless = all(r.stored == r.published for rs in runs.values() for r in rs)
    peak = max(over.hwm_kb)
    print()
    print(f"{'what':44s} {'result':>24s}  goal")
    print(f"{'lykta ingest, sustained (median)':44s} {lykta:16,.0f} rdg/s  "
          f">= {GOAL_ABSOLUTE:,}: {_ok(lykta >= GOAL_ABSOLUTE)}")
    print(f"{'ceiling: bare subscriber + 5000-line POSTs':44s} {ceiling:16,.0f} rdg/s")
    print(f"{'naive: Point + one POST per reading':44s} {naive:16,.0f} rdg/s")
    print(f"{'lykta / ceiling':44s} {lykta / ceiling:22.2f} x  "
          f">= {GOAL_VS_CEILING}: {_ok(lykta / ceiling >= GOAL_VS_CEILING)}")
    print(f"{'lykta / naive':44s} {lykta / naive:22.1f} x  "
          f">= {GOAL_VS_NAIVE:.0f}: {_ok(lykta / naive >= GOAL_VS_NAIVE)}")
    print(f"{'parts 1-3: stored == published, every run':44s} {_ok(lossless):>24s}")
    per_process = " + ".join(f"{n:,}" for n in split.per_process)
    print(f"{'two controllers: per process':44s} {per_process:>24s}")
    print(f"{'two controllers: stored / published':44s} "
          f"{f'{split.stored:,} / {split.published:,}':>24s}  "
          f"equal: {_ok(split.stored == split.published)}")
    print(f"{'overload: offered, duration':44s} "
          f"{f'{over.offered:,.0f} rdg/s, {over.seconds:.0f} s':>24s}  "
          f"({over.offered / lykta:.1f} x sustained)")
    print(f"{'overload + 2 x kill -9 (same id, then new id)':44s} "
          f"{f'{over.stored:,} / {over.published:,}':>24s}  "
          f"stored == published: {_ok(over.stored == over.published)}")
    print(f"{'overload: batches confirmed / unconfirmed':44s} "
          f"{f'{over.confirmed:,} / {over.unconfirmed:,}':>24s}  "
          f"all: {_ok(over.unconfirmed == 0)}")
    print(f"{'overload: batches re-sent (not confirmed in time)':44s} {over.resent:24,d}")
    print(f"{'overload: all confirmed, after publishing':44s} {over.drain_s:20.1f} s")
    print(f"{'overload: controller peak RSS (each process)':44s} "
          f"{' / '.join(f'{k / 1024:.0f}' for k in over.hwm_kb):>20s} MiB  "
          f"< 1024: {_ok(0 < peak < RSS_LIMIT_KB)}")
    print(f"{'overload: most messages held unacknowledged':44s} "
          f"{' / '.join(f'{k:,}' for k in over.held_max):>24s}  (Receive Maximum {RECEIVE_MAX:,})")
    print(f"{'overload: broker peak RSS':44s} {over.broker_hwm_kb / 1024:20.0f} MiB")
    print(f"{'overload: seq gaps seen after the restart':44s} {over.gaps:24d}")
    for lt in lats:
        label = f"latency at {lt.rate / lykta:.1f} x sustained ({lt.rate:,.0f} rdg/s)"
        print(f"{label:44s} {'':>24s}")
        print(f"{'  publish -> queryable in InfluxDB p50 / p99':44s} "
              f"{f'{lt.queryable_p50_ms:,.0f} / {lt.queryable_p99_ms:,.0f} ms':>24s}  "
              f"({lt.probes} probes, {lt.lost_probes} never seen)")
        print(f"{'  publish -> confirmation received p50 / p99':44s} "
              f"{f'{lt.confirm_p50_ms:,.0f} / {lt.confirm_p99_ms:,.0f} ms':>24s}")
        print(f"{'  stored / published':44s} {f'{lt.stored:,} / {lt.published:,}':>24s}  "
              f"equal: {_ok(lt.stored == lt.published)}")
    if over.restart_error:
        print(f"overload: the restarted controller FAILED: {over.restart_error}")
    size = plan.lykta_messages * GATEWAYS * READINGS
    print(f"(lykta/ceiling: median of {plan.runs} run(s) of {size:,} readings each; naive: "
          f"1 run of {runs['naive'][0].published:,}; load average "
          f"{load0:.2f} -> {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main(sys.argv[1:])
