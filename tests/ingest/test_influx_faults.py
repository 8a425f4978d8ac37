"""Server errors, timeouts and cut connections between the writer and a real InfluxDB:
retried with backoff, nothing lost, nothing duplicated, memory bounded."""

from __future__ import annotations

import asyncio
from pathlib import Path

from controller.influx_writer import InfluxConfig, InfluxWriter
from lykta.stack import StackInfo
from tests.ingest.faultproxy import Fault, FaultProxy
from tests.ingest.test_influx_writer import _count, _lines

WAL = Fault(status=500, body=b'{"error":"engine: error syncing wal"}')


def _cfg(url: str, db: str, **kw: object) -> InfluxConfig:
    base = {"retry_initial_s": 0.02, "retry_max_s": 0.2, "flush_interval_s": 0.1}
    return InfluxConfig(url=url, database=db, **{**base, **kw})


async def test_wal_sync_errors_under_load_are_retried(
    stack: StackInfo, influx_db: str, tmp_path: Path
) -> None:
    async with FaultProxy(stack.influx_url, [WAL, WAL, WAL]) as proxy:
        async with InfluxWriter(_cfg(proxy.url, influx_db), spool_dir=tmp_path) as w:
            for start in range(0, 20_000, 1000):
                await w.write(_lines(start, 1000))
            await w.flush()
            stats = w.stats
    assert stats.retries == 3 and stats.batches_spooled == 0 and stats.lines_dropped == 0
    assert _count(stack.influx_url, influx_db) == 20_000


async def test_timeouts_and_cut_connections_are_retried_without_duplicates(
    stack: StackInfo, influx_db: str, tmp_path: Path
) -> None:
    # The late write reaches InfluxDB after the writer gave up on it, and the writer sends the
    # batch again: both land, and the count shows one point per line (same series + time).
    faults = [Fault(delay_s=0.6), Fault(cut=True), None, Fault(delay_s=0.6)]
    async with FaultProxy(stack.influx_url, faults) as proxy:
        cfg = _cfg(proxy.url, influx_db, timeout_s=0.3, max_in_flight=1)
        async with InfluxWriter(cfg, spool_dir=tmp_path) as w:
            for start in range(0, 15_000, 500):
                await w.write(_lines(start, 500))
            await w.flush()
            stats = w.stats
        await asyncio.sleep(0.5)  # let the late forwarded writes finish
    assert stats.retries == 3 and stats.lines_written == 15_000
    assert _count(stack.influx_url, influx_db) == 15_000


async def test_memory_stays_bounded_while_influxdb_is_slow(
    stack: StackInfo, influx_db: str
) -> None:
    # Every write is delayed; the producer offers far more than the queue holds. The queue
    # never exceeds max_queued_lines, the producer is slowed down, and everything arrives.
    faults = [Fault(delay_s=0.05)] * 100
    cap = 2_000
    async with FaultProxy(stack.influx_url, faults) as proxy:
        cfg = _cfg(proxy.url, influx_db, batch_lines=500, max_queued_lines=cap)
        async with InfluxWriter(cfg) as w:
            peak = 0
            for start in range(0, 20_000, 250):
                await w.write(_lines(start, 250))
                peak = max(peak, w.stats.queued_lines)
            await w.flush()
    assert peak <= cap
    assert _count(stack.influx_url, influx_db) == 20_000


async def test_refused_credentials_keep_the_data_in_the_spool(
    stack: StackInfo, influx_db: str, tmp_path: Path
) -> None:
    # A revoked or expired credential is not a verdict on the data: the batches wait in the
    # spool (with the reason logged) and arrive once InfluxDB accepts the writer again.
    denied = Fault(status=401, body=b'{"error":"authorization failed"}')
    async with FaultProxy(stack.influx_url, [denied] * 3) as proxy:
        cfg = _cfg(proxy.url, influx_db, attempts_before_spool=2, max_in_flight=1)
        async with InfluxWriter(cfg, spool_dir=tmp_path) as w:
            for start in range(0, 3000, 1000):
                await w.write(_lines(start, 1000))
                await w.flush()
            await asyncio.wait_for(w.wait_drained(), 10)
            stats = w.stats
    assert stats.batches_spooled >= 1 and stats.lines_dropped == 0
    assert stats.lines_written == 3000
    assert _count(stack.influx_url, influx_db) == 3000
