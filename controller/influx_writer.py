"""The controller's writer of readings to InfluxDB: batches, retries, backpressure, spool.

::

    from controller.influx_writer import InfluxConfig, InfluxWriter

    async with InfluxWriter(InfluxConfig(url="http://127.0.0.1:8086"), spool_dir=path) as w:
        await w.write(lines)   # line protocol, ms precision; blocks while the queue is full
        await w.flush()        # everything written so far is in InfluxDB (or in the spool)
        mark = w.checkpoint()  # or, without cutting the batch short: a mark to wait for
        await w.committed(mark)
        w.stats                # counters for the UI

How a line travels:

1. :meth:`InfluxWriter.write` appends lines to the open batch. A batch is sealed when it holds
   ``batch_lines`` lines (5000) or its first line is ``flush_interval_s`` old (1 s). At most
   ``max_queued_lines`` lines wait in memory (open, sealed and in-flight batches together);
   past that, ``write`` waits until the sender made room. Memory is bounded; the MQTT side
   slows down instead (and the broker's persistent session holds the rest).
2. ``max_in_flight`` sender tasks (2) send sealed batches, oldest first; two requests in flight
   let InfluxDB use both cores while Python prepares the next. Batches may therefore land out
   of order by one; that is harmless because a point is identified by series and timestamp
   and Lykta never writes two different values for one point (``max_in_flight=1`` keeps
   strict order). 5xx answers (``engine: error syncing wal`` under load), 408/429, timeouts
   and connection errors are retried with exponential backoff and jitter
   (:func:`backoff_delay`). Retrying is safe for the same reason: InfluxDB overwrites the
   point with the same values. Refused credentials (401/403) are retried and spooled too: the
   data is fine, the configuration is not, and dropping every reading until someone renews a
   token would lose them all. (On start, refused credentials stop the writer with an error.)
3. After ``attempts_before_spool`` failed tries, InfluxDB counts as unreachable: the batch is
   appended to the on-disk spool (:mod:`lykta.spool`, fsync per batch), and so is every later
   batch until the spool is empty again, which keeps the order. A replay task probes with
   growing backoff and, once InfluxDB answers, replays the spool oldest first, acknowledging
   each batch after InfluxDB accepted it. A spool left behind by a stopped (or killed)
   controller is replayed on the next start. The spool holds at most ``spool_max_bytes``;
   when it is full, and without a ``spool_dir`` at all, the writer keeps retrying (and so keeps
   pushing back: the broker's persistent session holds the rest) until InfluxDB returns. Only
   at shutdown without a spool are unsendable lines given up, counted in ``lines_lost`` and
   logged.
4. Any other 4xx is a verdict on the data and is never retried: the writer logs the server's
   reason, counts the lines refused in ``lines_dropped`` and moves on with the next batch.
   InfluxDB 1.x answers a batch with some bad lines by storing the good ones and saying
   "partial write: unable to parse '<the line>': <why>" (or "... dropped=N" for a field type
   conflict), so only the bad lines are lost and the writer does not resend the rest (tested
   against the real server). A 400 that refuses the whole batch and stores nothing (1.x does
   this for a field type conflict *inside* one batch) is answered by sending the halves, and
   their halves, down to the refused lines: the earlier line's type wins, as it would have
   line by line, and only the conflicting lines are dropped. Any other rejection of the whole
   batch (e.g. a missing bucket, a body too large) drops that batch, logged with its first
   line. A 404 "database not found" first re-creates the database (1.x) and tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from controller.influx_api import Outcome, Result, V1Api, V2Api, make_api
from controller.influx_config import InfluxConfig
from lykta.spool import Spool

__all__ = ["InfluxConfig", "InfluxWriter", "InfluxWriterError", "WriterStats", "backoff_delay"]

log = logging.getLogger(__name__)


class InfluxWriterError(RuntimeError):
    """The writer cannot go on (its sender failed, or it is used outside ``async with``)."""


def backoff_delay(attempt: int, *, initial: float, cap: float, u: float) -> float:
    """Seconds to wait before retry number ``attempt`` (0 = the first retry).

    Exponential (``initial * 2**attempt``), capped at ``cap``, with "equal jitter": half of
    the delay is fixed and half is ``u`` (uniform in [0, 1)) times the other half, so many
    controllers that failed together do not retry together, yet none retries immediately.
    """
    d = min(cap, initial * 2.0 ** min(attempt, 62))
    return d / 2 + (d / 2) * u


def spool_record(body: bytes, lines: int) -> bytes:
    """A spooled batch: its line count on the first line, then the line protocol body.

    (Counting newlines in the body would be wrong: a string field may hold one.)
    """
    return b"%d\n" % lines + body


def parse_spool_record(record: bytes) -> tuple[int, bytes]:
    """The (line count, body) of a :func:`spool_record`."""
    head, _, body = record.partition(b"\n")
    try:
        return int(head), body
    except ValueError:
        raise ValueError(
            f"InfluxDB spool record does not start with a line count: {head[:40]!r}"
        ) from None


def _disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.seg"))


@dataclasses.dataclass(slots=True)
class WriterStats:
    """Counters since the writer started (a snapshot: :attr:`InfluxWriter.stats`)."""

    lines_written: int = 0
    """Lines InfluxDB accepted (including those replayed from the spool)."""
    batches_written: int = 0
    retries: int = 0
    """Attempts that failed with a retryable error (5xx, timeout, connection) and were retried."""
    batches_spooled: int = 0
    lines_spooled: int = 0
    batches_replayed: int = 0
    """Spooled batches that reached InfluxDB."""
    batches_rejected: int = 0
    """Batches with lines refused for good (a non-retryable 4xx)."""
    lines_dropped: int = 0
    """Lines InfluxDB refused for good (4xx), each logged with the server's reason."""
    lines_lost: int = 0
    """Lines given up at shutdown because InfluxDB was unreachable and there was no spool."""
    queued_lines: int = 0
    """Lines waiting in memory right now."""
    spool_batches: int = 0
    """Batches waiting in the spool right now."""


class InfluxWriter:
    """Writes line protocol to the InfluxDB of ``config``; use as ``async with``.

    ``spool_dir`` holds batches while InfluxDB is unreachable (give one in production: without
    it, an outage can only be ridden out by backpressure). ``rng`` makes the backoff jitter
    reproducible in tests.
    """

    def __init__(
        self,
        config: InfluxConfig,
        *,
        spool_dir: Path | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.spool_dir = spool_dir
        self._rng = rng or random.Random()
        self._stats = WriterStats()
        self._api: V1Api | V2Api | None = None
        self._spool: Spool | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._prepared = False
        self._stopping = False
        self._failure: BaseException | None = None
        self._pending: list[str] = []  # the open batch
        self._pending_since = 0.0
        self._ready: deque[tuple[int, list[str]]] = deque()  # sealed (number, lines), in order
        self._queued = 0  # lines in the open, sealed and in-flight batches
        self._sealed = 0  # batches sealed so far (the next batch's number)
        self._done_below = 0  # every batch numbered below this is delivered
        self._done_above: set[int] = set()  # delivered batches numbered above it
        self._next_probe = 0.0  # loop time when a spool replay may be tried again
        self._probe_attempt = 0
        self._spool_lock = asyncio.Lock()  # one spool operation at a time (it is not threadsafe)
        self._drain_task: asyncio.Task[None] | None = None  # the replay, while one runs
        self._spool_bytes = 0  # payload bytes in the spool (for spool_max_bytes)
        self._tick = asyncio.Event()  # the timer task has something to look at
        self._batch = asyncio.Event()  # a batch was sealed (wakes the senders)
        self._space = asyncio.Event()  # the queue has room again
        self._progress = asyncio.Event()  # a batch was delivered / a spooled batch replayed

    # -- lifecycle --

    async def __aenter__(self) -> InfluxWriter:
        self._api = make_api(self.config)
        if self.spool_dir is not None:
            self._spool = await asyncio.to_thread(Spool, self.spool_dir, fsync=True)
            # What the spool holds on disk, from the segment files (an upper bound: the oldest
            # segment may still hold some acknowledged records).
            self._spool_bytes = await asyncio.to_thread(_disk_bytes, self.spool_dir)
            if len(self._spool):
                log.info(
                    "InfluxDB spool %s holds %d batches from before; replaying them first",
                    self.spool_dir, len(self._spool),
                )
        result = await self._api.prepare()
        if result.outcome is Outcome.REJECTED:
            await self._api.close()
            raise InfluxWriterError(
                f"InfluxDB {self._api.target}: cannot prepare the database "
                f"(HTTP {result.status}): {result.reason}"
            )
        self._prepared = result.outcome is Outcome.WRITTEN
        if not self._prepared:
            log.warning(
                "InfluxDB %s not reachable on start (%s); will retry", self._api.target,
                result.reason,
            )
        self._running = True
        self._tasks = [asyncio.create_task(self._timer(), name="influx-writer-timer")] + [
            asyncio.create_task(self._sender(), name=f"influx-writer-sender-{i}")
            for i in range(self.config.max_in_flight)
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Stopping first: a batch that cannot be delivered now goes to the spool (or, without
        # one, is given up and counted) instead of holding the shutdown forever.
        self._stopping = True
        try:
            if self._failure is None and self._running:
                await self.flush()
        finally:
            self._running = False
            self._tick.set()
            self._batch.set()
            if self._drain_task is not None:
                self._tasks.append(self._drain_task)  # it stops after the batch in flight
            results = await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []
            if self._api is not None:
                await self._api.close()
            if self._spool is not None:
                self._spool.close()
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors and exc == (None, None, None):
                raise InfluxWriterError(f"InfluxDB writer failed: {errors[0]!r}") from errors[0]

    # -- public API --

    async def write(self, lines: Sequence[str]) -> None:
        """Queue ``lines`` (line protocol, timestamps in ms) for writing.

        Returns as soon as the lines are queued; waits while the queue is full
        (``max_queued_lines``), which is how overload reaches the producer.
        """
        self._check()
        cap = self.config.max_queued_lines
        size = self.config.batch_lines
        i, n = 0, len(lines)
        while i < n:
            while self._queued >= cap:
                self._seal()  # full: the open batch goes now rather than when its timer ends
                self._space.clear()
                await self._space.wait()
                self._check()
            take = min(n - i, cap - self._queued, size - len(self._pending))
            if not self._pending:
                self._pending_since = asyncio.get_running_loop().time()
                self._tick.set()  # the timer starts this batch's clock
            self._pending.extend(lines[i : i + take])
            self._queued += take
            i += take
            if len(self._pending) >= size:
                self._seal()

    async def flush(self) -> None:
        """Return once every line written before this call is in InfluxDB, or in the spool
        because InfluxDB is unreachable (or was refused with a 4xx, see the module doc).

        Sends the open batch at once, however small. To acknowledge upstream messages without
        shrinking batches, use :meth:`checkpoint` and :meth:`committed` instead.
        """
        self._check()
        self._seal()
        await self.committed(self._sealed)

    def tasks(self) -> list[asyncio.Task[None]]:
        """The writer's loops (timer, senders) while it runs (for the service's supervisor)."""
        return list(self._tasks)

    def checkpoint(self) -> int:
        """A mark for "every line written so far", to pass to :meth:`committed` later.

        Unlike :meth:`flush` it does not cut the open batch short: batches keep their size
        (or their ``flush_interval_s``), so a consumer can acknowledge its MQTT messages once
        their lines are stored while it goes on receiving.
        """
        return self._sealed + (1 if self._pending else 0)

    async def committed(self, checkpoint: int) -> None:
        """Return once every line written before ``checkpoint`` was taken is in InfluxDB (or
        the spool, or refused with a 4xx). Waits at most about ``flush_interval_s`` plus the
        time to send, unless InfluxDB is slow or away."""
        while self._done_below < checkpoint:
            self._check()
            self._progress.clear()
            await self._progress.wait()
        self._check()

    async def wait_drained(self) -> None:
        """Return once the queue and the spool are both empty (all replayed into InfluxDB)."""
        await self.flush()
        while self._spool is not None and len(self._spool):
            self._progress.clear()
            self._tick.set()
            await self._progress.wait()
            self._check()

    @property
    def stats(self) -> WriterStats:
        """A snapshot of the counters."""
        snap = dataclasses.replace(self._stats)
        snap.queued_lines = self._queued
        snap.spool_batches = len(self._spool) if self._spool is not None else 0
        return snap

    # -- batching --

    def _check(self) -> None:
        if self._failure is not None:
            raise InfluxWriterError(f"InfluxDB writer stopped: {self._failure!r}") from (
                self._failure
            )
        if not self._running:
            raise InfluxWriterError("InfluxWriter used outside `async with`")

    def _seal(self) -> None:
        if self._pending:
            self._ready.append((self._sealed, self._pending))
            self._pending = []
            self._sealed += 1
            self._batch.set()

    def _delivered(self, number: int, lines: int) -> None:
        self._queued -= lines
        self._done_above.add(number)
        while self._done_below in self._done_above:
            self._done_above.remove(self._done_below)
            self._done_below += 1
        self._space.set()
        self._progress.set()

    def _failed(self, e: BaseException) -> None:
        if self._failure is None:
            self._failure = e
            log.error("InfluxDB writer stopped", exc_info=e)
        self._space.set()
        self._progress.set()

    async def _timer(self) -> None:
        """Seal the open batch when it is ``flush_interval_s`` old; replay the spool when due."""
        loop = asyncio.get_running_loop()
        interval = self.config.flush_interval_s
        try:
            while True:
                now = loop.time()
                if self._pending and (self._stopping or now >= self._pending_since + interval):
                    self._seal()
                    continue
                if not self._running:
                    return
                backlog = self._spool is not None and len(self._spool) > 0
                draining = self._drain_task is not None and not self._drain_task.done()
                if backlog and not draining and now >= self._next_probe and not self._stopping:
                    # Its own task, so this timer goes on sealing batches during a long replay.
                    self._drain_task = asyncio.create_task(
                        self._drain_spool(), name="influx-writer-replay"
                    )
                    continue
                timeouts = []
                if self._pending:
                    timeouts.append(self._pending_since + interval - now)
                if backlog and not draining and not self._stopping:
                    timeouts.append(self._next_probe - now)
                self._tick.clear()
                try:
                    async with asyncio.timeout(min(timeouts) if timeouts else None):
                        await self._tick.wait()
                except TimeoutError:
                    pass
        except BaseException as e:
            self._failed(e)
            raise

    async def _sender(self) -> None:
        """Deliver sealed batches; ``max_in_flight`` of these run side by side."""
        try:
            while True:
                if not self._ready:
                    if not self._running:
                        return
                    self._batch.clear()
                    await self._batch.wait()
                    continue
                number, batch = self._ready.popleft()
                await self._deliver(batch)
                self._delivered(number, len(batch))
        except BaseException as e:
            self._failed(e)
            raise

    # -- delivery --

    async def _send(self, body: bytes) -> Result:
        assert self._api is not None
        if not self._prepared:
            result = await self._api.prepare()
            if result.outcome is not Outcome.WRITTEN:
                return result if result.outcome is Outcome.RETRY else Result(
                    Outcome.RETRY, result.status, f"preparing the database: {result.reason}"
                )
            self._prepared = True
        result = await self._api.send(body)
        if result.outcome is Outcome.REJECTED and self._api.database_missing(result):
            log.warning("InfluxDB %s: database missing, creating it again", self._api.target)
            self._prepared = False
            # Retryable from here: the next attempt re-creates the database first.
            return Result(Outcome.RETRY, result.status, result.reason)
        return result

    def _delay(self, attempt: int) -> float:
        c = self.config
        return backoff_delay(
            attempt, initial=c.retry_initial_s, cap=c.retry_max_s, u=self._rng.random()
        )

    async def _deliver(self, batch: list[str]) -> None:
        loop = asyncio.get_running_loop()
        body = "\n".join(batch).encode()
        while self._spool is not None and len(self._spool):
            # InfluxDB was unreachable and the spool is not empty: queue behind it, in order.
            # (The timer starts the replay when the next probe is due.)
            if self._spool_has_room(body):
                await self._spool_append(body, len(batch))
                self._tick.set()
                return
            # Spool full: hold this batch (and so, through the bounded queue, the producer)
            # until the replay frees room or empties the spool.
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.retry_max_s):
                    await self._progress.wait()
        attempt = 0
        while True:
            done = await self._attempt(batch, body)
            if done.retry is None:
                self._account(done)
                return
            result = done.retry
            attempt += 1
            if attempt >= self.config.attempts_before_spool:
                if self._spool is not None and self._spool_has_room(body):
                    assert self._api is not None
                    log.warning(
                        "InfluxDB %s unreachable after %d tries (%s); spooling to %s",
                        self._api.target, attempt, result.reason or result.status,
                        self.spool_dir,
                    )
                    await self._spool_append(body, len(batch))
                    self._probe_attempt = max(self._probe_attempt, attempt)
                    self._next_probe = loop.time() + self._delay(attempt)
                    self._tick.set()
                    return
                if self._stopping:
                    self._stats.lines_lost += len(batch)
                    log.error(
                        "InfluxDB unreachable at shutdown and no room in a spool: %d lines lost"
                        " (%s)", len(batch), result.reason or result.status,
                    )
                    return
            self._stats.retries += 1
            await asyncio.sleep(self._delay(attempt - 1))

    def _spool_has_room(self, body: bytes) -> bool:
        """Whether ``body`` fits under ``spool_max_bytes`` (always, when shutting down: a
        batch over the limit on disk is better than a batch lost)."""
        limit = self.config.spool_max_bytes
        return self._stopping or self._spool_bytes + len(body) <= limit

    async def _spool_append(self, body: bytes, lines: int) -> None:
        assert self._spool is not None
        record = spool_record(body, lines)
        async with self._spool_lock:
            await asyncio.to_thread(self._spool.append, record)
        self._spool_bytes += len(record)
        self._stats.batches_spooled += 1
        self._stats.lines_spooled += lines

    async def _drain_spool(self) -> None:
        """Replay spooled batches oldest first until the spool is empty, a send fails, or the
        writer stops (whatever is left stays in the spool for the next start)."""
        assert self._spool is not None
        loop = asyncio.get_running_loop()
        spool = self._spool
        try:
            while len(spool) and not self._stopping:
                async with self._spool_lock:
                    (record,) = await asyncio.to_thread(spool.peek, 1)
                try:
                    n, body = parse_spool_record(record)
                except ValueError as e:  # not written by this writer: skip it, loudly
                    log.error("InfluxDB spool %s: skipping a record: %s", self.spool_dir, e)
                    self._stats.batches_rejected += 1
                    async with self._spool_lock:
                        await asyncio.to_thread(spool.ack, 1)
                    self._spool_bytes = max(0, self._spool_bytes - len(record))
                    continue
                done = await self._attempt(None, body, n)
                if done.retry is not None:
                    self._stats.retries += 1
                    self._probe_attempt += 1
                    self._next_probe = loop.time() + self._delay(self._probe_attempt)
                    return
                self._account(done)
                self._stats.batches_replayed += 1
                async with self._spool_lock:
                    await asyncio.to_thread(spool.ack, 1)
                self._spool_bytes = max(0, self._spool_bytes - len(record))
                self._progress.set()
            if not len(spool):
                self._probe_attempt = 0
                log.info("InfluxDB spool replayed; writing directly again")
        except BaseException as e:
            self._failed(e)
            raise
        finally:
            self._progress.set()  # wait_drained() looks again
            self._tick.set()  # the timer decides about the next probe

    async def _attempt(
        self, lines: list[str] | None, body: bytes, count: int | None = None
    ) -> _Attempt:
        """Send one batch once. A 400 that refuses the whole batch (InfluxDB 1.x does so for a
        field type conflict inside the batch, storing none of it) is answered by sending the
        halves, down to the refused lines, so only those are dropped. Any retryable failure
        on the way makes the whole attempt retryable (resending stored lines is harmless)."""
        result = await self._send(body)
        if lines is None and result.outcome is Outcome.REJECTED:
            split = body.decode(errors="replace").split("\n")
            # A string field may hold a newline: then the body cannot be split into lines.
            lines = split if count is None or len(split) == count else None
        n = len(lines) if lines is not None else (count or 1)
        if result.outcome is Outcome.WRITTEN:
            return _Attempt(None, n)
        if result.outcome is Outcome.RETRY:
            return _Attempt(result)
        if _refused_whole(result) and lines is not None and len(lines) > 1:
            mid = len(lines) // 2
            first = await self._attempt(lines[:mid], "\n".join(lines[:mid]).encode())
            if first.retry is not None:
                return first
            second = await self._attempt(lines[mid:], "\n".join(lines[mid:]).encode())
            if second.retry is not None:
                return second
            return _Attempt(
                None, first.written + second.written, first.rejections + second.rejections
            )
        dropped = result.dropped_lines(n)
        sample = lines[0] if lines else body[:500].decode(errors="replace")
        return _Attempt(None, n - dropped, [(result, n, dropped, sample)])

    def _account(self, done: _Attempt) -> None:
        self._stats.lines_written += done.written
        self._stats.batches_written += 1 if done.written else 0
        self._stats.batches_rejected += 1 if done.rejections else 0
        assert self._api is not None
        for result, n, dropped, sample in done.rejections:
            self._stats.lines_dropped += dropped
            partial = "partial write" in result.reason
            log.error(
                "InfluxDB %s refused %d of %d lines (HTTP %s, not retried): %s%s",
                self._api.target, dropped, n, result.status, result.reason[:4000],
                "" if partial else f"; the line(s): {sample[:500]!r}",
            )


def _refused_whole(result: Result) -> bool:
    """A 400 that stored nothing because lines of the batch disagree about a field's type:
    worth splitting the batch. (A batch refused because none of it parses is not: splitting
    would only find every line bad, one request at a time.)"""
    return (
        result.status == 400
        and "partial write" not in result.reason
        and "field type conflict" in result.reason
    )


@dataclasses.dataclass(slots=True)
class _Attempt:
    retry: Result | None  # the retryable failure, or None when the attempt is over
    written: int = 0  # lines InfluxDB stored
    rejections: list[tuple[Result, int, int, str]] = dataclasses.field(default_factory=list)
    """(answer, lines sent, lines refused, first line) of every refused part."""
