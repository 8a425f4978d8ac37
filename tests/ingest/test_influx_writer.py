"""The InfluxDB writer against a real InfluxDB 1.x: batches arrive, bad lines are dropped with a
reason, an outage goes to the spool and comes back in order, memory stays bounded."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.influx_writer import InfluxConfig, InfluxWriter
from lykta.spool import Spool
from lykta.stack import LocalStack, StackInfo, free_port, influx_query

T0 = 1_700_000_000_000


def _lines(start: int, n: int, *, value: float | None = None, series: str = "a") -> list[str]:
    v = value if value is not None else None
    return [
        f"reading,gateway={series} v={v if v is not None else (i % 97) + 0.5},i={i}i {T0 + i}"
        for i in range(start, start + n)
    ]


def _count(url: str, db: str, measurement: str = "reading") -> int:
    res = influx_query(url, f'SELECT count("i") FROM "{measurement}"', db)["results"][0]
    series = res.get("series")
    return series[0]["values"][0][1] if series else 0


def _config(url: str, db: str, **kw: object) -> InfluxConfig:
    fast = {"retry_initial_s": 0.05, "retry_max_s": 0.5, "flush_interval_s": 0.2}
    return InfluxConfig(url=url, database=db, **{**fast, **kw})


async def test_lines_arrive_in_batches(stack: StackInfo, influx_db: str, tmp_path: Path) -> None:
    async with InfluxWriter(_config(stack.influx_url, influx_db), spool_dir=tmp_path) as w:
        for start in range(0, 12_000, 1000):
            await w.write(_lines(start, 1000))
        await w.flush()
        stats = w.stats
    assert _count(stack.influx_url, influx_db) == 12_000
    assert stats.lines_written == 12_000
    assert stats.batches_written == 3  # 5000 + 5000 + 2000 (the last one sealed by flush)
    assert stats.batches_spooled == stats.lines_dropped == stats.queued_lines == 0


async def test_partial_lines_are_sent_after_the_flush_interval(
    stack: StackInfo, influx_db: str
) -> None:
    async with InfluxWriter(_config(stack.influx_url, influx_db, flush_interval_s=0.1)) as w:
        await w.write(_lines(0, 10))
        for _ in range(100):
            if w.stats.lines_written == 10:
                break
            await asyncio.sleep(0.05)  # no flush(): the 0.1 s timer must send the batch
        assert w.stats.lines_written == 10
    assert _count(stack.influx_url, influx_db) == 10


async def test_missing_database_is_created(stack: StackInfo) -> None:
    db = f"created_{random.randrange(1 << 30)}"
    try:
        async with InfluxWriter(_config(stack.influx_url, db)) as w:
            await w.write(_lines(0, 5))
            await w.flush()
        assert _count(stack.influx_url, db) == 5
    finally:
        influx_query(stack.influx_url, f'DROP DATABASE "{db}"')


async def test_bad_line_is_dropped_with_its_reason_and_the_rest_is_stored(
    stack: StackInfo, influx_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Decision (documented in controller/influx_writer.py): a 4xx is never retried. InfluxDB
    # stores the good lines of the batch and names the bad one; the writer logs that reason,
    # counts the bad line as dropped and goes on with the next batch.
    bad = "reading,gateway=a v=oops-not-a-number 1700000000999"
    batch = _lines(0, 50) + [bad] + _lines(50, 49)
    caplog.set_level(logging.ERROR, logger="controller.influx_writer")
    async with InfluxWriter(_config(stack.influx_url, influx_db)) as w:
        await w.write(batch)
        await w.flush()
        await w.write(_lines(100, 20))
        await w.flush()
        stats = w.stats
    assert _count(stack.influx_url, influx_db) == 119
    assert (stats.lines_dropped, stats.batches_rejected, stats.retries) == (1, 1, 0)
    assert stats.lines_written == 119
    assert any("oops-not-a-number" in r.getMessage() for r in caplog.records)


async def test_field_type_conflict_is_dropped_not_retried(
    stack: StackInfo, influx_db: str
) -> None:
    async with InfluxWriter(_config(stack.influx_url, influx_db)) as w:
        await w.write(_lines(0, 10))
        await w.flush()
        # "i" was an integer; a string for it is a type conflict (partial write, dropped=1)
        await w.write([f'reading,gateway=a v=1,i="text" {T0 + 500}', *_lines(10, 5)])
        await w.flush()
        stats = w.stats
    assert stats.lines_dropped == 1 and stats.retries == 0
    assert _count(stack.influx_url, influx_db) == 15


async def test_influxdb_stopped_and_restarted_while_writing_loses_nothing(
    local_stack: LocalStack, stack: StackInfo, influx_db: str, tmp_path: Path
) -> None:
    total, chunk = 40_000, 500
    cfg = _config(stack.influx_url, influx_db, attempts_before_spool=2, timeout_s=2.0)
    async with InfluxWriter(cfg, spool_dir=tmp_path / "spool") as w:

        async def produce() -> None:
            for start in range(0, total, chunk):
                await w.write(_lines(start, chunk))
                await asyncio.sleep(0.03)  # spans the outage below

        producer = asyncio.create_task(produce())
        await asyncio.sleep(0.3)
        await asyncio.to_thread(local_stack.stop_service, "influxdb")
        try:
            await asyncio.sleep(1.5)  # writing on while InfluxDB is away: into the spool
            spooled_during_outage = w.stats.batches_spooled
        finally:
            await asyncio.to_thread(local_stack.start_service, "influxdb")
        assert spooled_during_outage > 0
        await producer
        await asyncio.wait_for(w.wait_drained(), 60)
        stats = w.stats
    # Every line once: the count equals what was offered (a duplicate would be an overwrite of
    # the same series and timestamp, so the count also proves no extra points appeared).
    assert _count(stack.influx_url, influx_db) == total
    assert stats.lines_written == total and stats.lines_dropped == 0
    assert stats.batches_replayed == stats.batches_spooled > 0
    assert Spool(tmp_path / "spool").peek(1) == []


async def test_spool_is_replayed_in_order(stack: StackInfo, influx_db: str, tmp_path: Path):
    # Three batches write the same series and timestamps with values 1, 2, 3 while InfluxDB
    # is unreachable. Replayed in order, the last value wins; any other order shows.
    dead = f"http://127.0.0.1:{free_port()}"
    cfg = _config(dead, influx_db, attempts_before_spool=1)
    async with InfluxWriter(cfg, spool_dir=tmp_path) as w:
        for value in (1.0, 2.0, 3.0):
            await w.write(_lines(0, 100, value=value))
            await w.flush()
        assert w.stats.batches_spooled == 3
    # A later writer (after a controller restart) finds the spool and replays it first.
    async with InfluxWriter(_config(stack.influx_url, influx_db), spool_dir=tmp_path) as w:
        await asyncio.wait_for(w.wait_drained(), 30)
        assert w.stats.batches_replayed == 3
    res = influx_query(stack.influx_url, 'SELECT DISTINCT("v") FROM "reading"', influx_db)
    assert [row[1] for row in res["results"][0]["series"][0]["values"]] == [3.0]
    assert _count(stack.influx_url, influx_db) == 100


async def test_write_blocks_when_the_queue_is_full(tmp_path: Path) -> None:
    # InfluxDB unreachable and no spool: the writer can only retry, so write() must push back
    # once max_queued_lines are waiting, instead of growing without bound.
    dead = f"http://127.0.0.1:{free_port()}"
    cfg = _config(dead, "x", max_queued_lines=300, batch_lines=100, retry_max_s=0.05)
    w = InfluxWriter(cfg)
    async with w:
        await w.write(_lines(0, 300))
        blocked = asyncio.create_task(w.write(_lines(300, 1)))
        await asyncio.sleep(0.3)
        assert not blocked.done() and w.stats.queued_lines == 300
        blocked.cancel()
    assert w.stats.lines_lost == 300  # given up only at shutdown, and counted


_CHILD = """
import asyncio, sys
from pathlib import Path
from controller.influx_writer import InfluxConfig, InfluxWriter
from tests.ingest.test_influx_writer import _lines

async def main():
    cfg = InfluxConfig(url=sys.argv[1], database="x", attempts_before_spool=1,
                       retry_initial_s=0.01)
    async with InfluxWriter(cfg, spool_dir=Path(sys.argv[2])) as w:
        for start in range(0, 5000, 500):
            await w.write(_lines(start, 500))
            await w.flush()
        print("flushed", flush=True)
        await asyncio.sleep(60)  # killed here, without a clean shutdown

asyncio.run(main())
"""


async def test_spool_survives_a_killed_controller(
    stack: StackInfo, influx_db: str, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, dead, str(tmp_path / "spool"),
        stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).parents[2],
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        assert line.strip() == b"flushed"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        await child.wait()
    async with InfluxWriter(
        _config(stack.influx_url, influx_db), spool_dir=tmp_path / "spool"
    ) as w:
        await asyncio.wait_for(w.wait_drained(), 30)
        assert w.stats.batches_replayed == 10 and w.stats.lines_written == 5000
    assert _count(stack.influx_url, influx_db) == 5000


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    calls=st.lists(st.one_of(st.integers(0, 400), st.just("flush")), min_size=1, max_size=10),
    batch_lines=st.integers(20, 600),
    max_queued=st.integers(1, 900),  # below batch_lines too: a full queue seals early
    in_flight=st.integers(1, 3),
)
async def test_any_mix_of_writes_and_flushes_stores_every_line_once(
    stack: StackInfo, influx_db: str, calls: list, batch_lines: int, max_queued: int,
    in_flight: int,
) -> None:
    # Invariant: whatever the write sizes, flushes, batch size, queue bound and number of
    # senders, InfluxDB ends up with exactly the lines handed in (checked point by point).
    influx_query(stack.influx_url, 'DROP SERIES FROM "reading"', influx_db)
    cfg = _config(stack.influx_url, influx_db, batch_lines=batch_lines,
                  max_queued_lines=max_queued, max_in_flight=in_flight)
    sent = 0
    async with InfluxWriter(cfg) as w:
        for call in calls:
            if call == "flush":
                await w.flush()
                assert w.stats.queued_lines == 0
            else:
                await w.write(_lines(sent, call))
                sent += call
                assert w.stats.queued_lines <= max_queued
    res = influx_query(stack.influx_url, 'SELECT "i" FROM "reading"', influx_db)["results"][0]
    got = [row[1] for row in res["series"][0]["values"]] if res.get("series") else []
    assert got == list(range(sent))


async def test_checkpoints_commit_without_cutting_batches_short(
    stack: StackInfo, influx_db: str
) -> None:
    # A consumer takes a checkpoint after each message and waits for it elsewhere: batches
    # still fill to batch_lines, and every checkpoint resolves once its lines are stored.
    cfg = _config(stack.influx_url, influx_db, batch_lines=1000, flush_interval_s=0.2)
    async with InfluxWriter(cfg) as w:
        marks = []
        for start in range(0, 3000, 100):
            await w.write(_lines(start, 100))
            marks.append(w.checkpoint())
        await asyncio.wait_for(asyncio.gather(*(w.committed(m) for m in marks)), 10)
        stats = w.stats
    assert stats.batches_written == 3 and stats.lines_written == 3000
    assert _count(stack.influx_url, influx_db) == 3000


def _disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.seg"))


async def test_a_full_spool_pushes_back_and_loses_nothing(
    stack: StackInfo, influx_db: str, tmp_path: Path
) -> None:
    # InfluxDB away and the spool at spool_max_bytes: the writer stops spooling, its queue
    # fills and write() waits. At shutdown the rest still goes to disk; nothing is lost.
    dead = f"http://127.0.0.1:{free_port()}"
    limit = 30_000
    cfg = _config(dead, influx_db, attempts_before_spool=1, batch_lines=100,
                  max_queued_lines=400, spool_max_bytes=limit, max_in_flight=1)
    async with InfluxWriter(cfg, spool_dir=tmp_path) as w:
        written = 0
        for start in range(0, 5000, 100):
            try:
                await asyncio.wait_for(w.write(_lines(start, 100)), 1.0)
            except TimeoutError:
                break
            written = start + 100
        assert written < 5000, "write() never pushed back"
        assert _disk_bytes(tmp_path) <= limit
    assert w.stats.lines_lost == 0
    async with InfluxWriter(_config(stack.influx_url, influx_db), spool_dir=tmp_path) as w2:
        await asyncio.wait_for(w2.wait_drained(), 30)
    # The write that timed out was cancelled part-way: count what was handed in before it.
    assert _count(stack.influx_url, influx_db) >= written
    assert w.stats.lines_spooled == w2.stats.lines_written


async def test_type_conflict_inside_one_batch_drops_only_the_conflicting_line(
    stack: StackInfo, influx_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    # InfluxDB 1.x refuses such a batch as a whole ("field type conflict", nothing stored).
    # The writer splits it until the conflicting line is alone; the earlier type (float)
    # wins, as it would have line by line.
    batch = _lines(0, 25) + [f"reading,gateway=a v=7i,i=25i {T0 + 25}"] + _lines(26, 25)
    caplog.set_level(logging.ERROR, logger="controller.influx_writer")
    async with InfluxWriter(_config(stack.influx_url, influx_db)) as w:
        await w.write(batch)
        await w.flush()
        stats = w.stats
    assert (stats.lines_written, stats.lines_dropped, stats.batches_rejected) == (50, 1, 1)
    assert _count(stack.influx_url, influx_db) == 50
    assert any("field type conflict" in r.getMessage() for r in caplog.records)


async def test_gzip_bodies_are_accepted(stack: StackInfo, influx_db: str) -> None:
    async with InfluxWriter(_config(stack.influx_url, influx_db, gzip=True)) as w:
        await w.write(_lines(0, 7000))
        await w.flush()
        assert w.stats.lines_written == 7000
    assert _count(stack.influx_url, influx_db) == 7000


async def test_retention_policy_is_honoured(stack: StackInfo, influx_db: str) -> None:
    influx_query(
        stack.influx_url, f'CREATE RETENTION POLICY "keep" ON "{influx_db}" DURATION INF '
        "REPLICATION 1"
    )
    cfg = _config(stack.influx_url, influx_db, retention_policy="keep")
    async with InfluxWriter(cfg) as w:
        await w.write(_lines(0, 10))
        await w.flush()
    q = f'SELECT count("i") FROM "{influx_db}"."keep"."reading"'
    assert influx_query(stack.influx_url, q)["results"][0]["series"][0]["values"][0][1] == 10
    assert _count(stack.influx_url, influx_db) == 0  # nothing in the default policy
