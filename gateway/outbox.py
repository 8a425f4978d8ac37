"""The gateway's outbox: every telemetry batch and event stays on disk until a controller
confirms it durable (no MQTT I/O here; :mod:`gateway.link` drives it).

Two spools (:mod:`lykta.spool`, fsync per record) under ``outbox/``: ``telemetry`` and
``events``. Each record is ``[kind][seq u64][readings u32][payload]``. A record is published,
then waits for a :class:`~lykta.contract.Confirm` naming its ``seq``; the broker's PUBACK alone
is not enough, because a broker restart without persistence, a lost session or a controller
that died before writing would strand it. An entry not confirmed within ``confirm_timeout_s``
is due again (the timeout doubles per re-send, up to 16 x), and all of them are due again when
a controller says ``resume``. Confirmations may come in any order (several controllers on one
shared subscription confirm what each stored); a spool forgets its oldest records once all of
them are confirmed, and a record confirmed out of order but still on disk at a restart is sent
again (the controller drops the duplicate).

Bounded: telemetry may take ``max_bytes`` on disk; past that the oldest telemetry is dropped
(confirmed or not), counted, and reported by :meth:`Outbox.take_drops` (the link turns it into
an ``outbox_dropped`` event). Events are never dropped. When the disk refuses a write
(``OSError``: disk full, I/O error) the record is kept in memory instead (not durable, counted
in ``write_errors``; at most ``max_memory_records``, oldest telemetry dropped first), so a full
disk never stops the gateway and never silently loses the newest data.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lykta.spool import Locator, Spool

log = logging.getLogger("lykta.gateway.outbox")

TELEMETRY = "T"
EVENT = "E"
_KINDS = (EVENT, TELEMETRY)  # events go first: they are few and they matter
_HEAD = struct.Struct(">cQI")
MAX_BACKOFF_DOUBLINGS = 4
MAX_BYTES = 256 * 1024 * 1024


@dataclass(slots=True, eq=False)
class Entry:
    """One batch or event waiting for its confirmation."""

    kind: str
    seq: int
    readings: int
    size: int
    loc: Locator | None  # None: held in memory because the disk refused it
    data: bytes | None = None
    sent_at: float | None = None
    sends: int = 0
    gone: bool = False  # confirmed (or dropped): nothing more to do
    confirmed: bool = False
    recovered: bool = False  # found on disk at open (made by an earlier process)


@dataclass(slots=True)
class Drops:
    """Telemetry dropped because the outbox was full (since the last report)."""

    batches: int = 0
    readings: int = 0
    first_seq: int | None = None
    last_seq: int | None = None


@dataclass(slots=True)
class _Queue:
    spool: Spool
    entries: deque[Entry] = field(default_factory=deque)
    by_seq: dict[int, Entry] = field(default_factory=dict)
    memory_bytes: int = 0
    memory_records: int = 0

    def pending(self) -> int:
        return len(self.by_seq)


def encode_record(kind: str, seq: int, readings: int, payload: bytes) -> bytes:
    """One outbox record (see the module doc)."""
    return _HEAD.pack(kind.encode(), seq, readings) + payload


def decode_record(record: bytes) -> tuple[str, int, int, bytes]:
    """``(kind, seq, readings, payload)`` of :func:`encode_record`; ``ValueError`` if it is
    not one."""
    if len(record) < _HEAD.size:
        raise ValueError("outbox record shorter than its header")
    k, seq, readings = _HEAD.unpack_from(record)
    kind = k.decode("latin-1")
    if kind not in _KINDS:
        raise ValueError(f"outbox record of unknown kind {kind!r}")
    return kind, seq, readings, record[_HEAD.size :]


class Outbox:
    """Batches and events of one gateway, from :meth:`add` until confirmed."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = MAX_BYTES,
        confirm_timeout_s: float = 30.0,
        max_memory_records: int = 10_000,
        fsync: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sync: Callable[[int], None] = os.fsync,
    ) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.confirm_timeout_s = confirm_timeout_s
        self.max_memory_records = max_memory_records
        self.clock = clock
        seg = max(4096, min(8 * 1024 * 1024, max_bytes // 8))
        self.stats = {
            "confirmed": 0,
            "resent": 0,
            "dropped_batches": 0,
            "dropped_readings": 0,
            "write_errors": 0,
            "corrupt_records": 0,
        }
        self._drops = Drops()
        self._q: dict[str, _Queue] = {}
        self._max_seq: dict[str, int] = {}
        for kind, name in ((TELEMETRY, "telemetry"), (EVENT, "events")):
            spool = Spool(self.dir / name, fsync=fsync, segment_bytes=seg, sync=sync)
            self._q[kind] = q = _Queue(spool)
            self.stats["corrupt_records"] += spool.stats.corrupt_records
            for loc in spool.locators():
                try:
                    k, seq, readings, _ = decode_record(spool.read(loc))
                    if k != kind:
                        raise ValueError(f"a {k} record in the {name} spool")
                except ValueError as e:
                    # passed the spool's crc but is not ours: count it, let it be acknowledged
                    log.warning("outbox %s: skipping a bad record: %s", name, e)
                    self.stats["corrupt_records"] += 1
                    q.entries.append(Entry(kind, -1, 0, loc.length, loc, gone=True))
                    continue
                e_ = Entry(kind, seq, readings, loc.length, loc, recovered=True)
                q.entries.append(e_)
                q.by_seq[seq] = e_
                self._max_seq[kind] = max(self._max_seq.get(kind, -1), seq)
            self._release(q)
        if self.stats["corrupt_records"]:
            log.warning(
                "outbox %s: %d corrupt record(s) skipped on open",
                self.dir,
                self.stats["corrupt_records"],
            )

    # -- what the link calls -----------------------------------------------------------------

    def __len__(self) -> int:
        """Records not yet confirmed."""
        return sum(q.pending() for q in self._q.values())

    def count(self, kind: str) -> int:
        """Records of ``kind`` not yet confirmed."""
        return self._q[kind].pending()

    def max_seq(self, kind: str) -> int | None:
        """The highest ``seq`` of ``kind`` found on disk when the outbox was opened."""
        return self._max_seq.get(kind)

    def telemetry_bytes(self) -> int:
        """Bytes the unconfirmed telemetry takes (disk and memory); bounded by max_bytes."""
        q = self._q[TELEMETRY]
        return q.spool.disk_bytes + q.memory_bytes

    def add(self, kind: str, seq: int, payload: bytes, readings: int = 0) -> Entry:
        """Keep a new record of ``kind`` and return its entry; never raises for a full disk
        (see the module doc)."""
        q = self._q[kind]
        record = encode_record(kind, seq, readings, payload)
        try:
            loc: Locator | None = q.spool.append(record)
            entry = Entry(kind, seq, readings, len(record), loc)
        except OSError as e:
            self.stats["write_errors"] += 1
            if self.stats["write_errors"] in (1, 10, 100) or self.stats["write_errors"] % 1000 == 0:
                log.error("outbox %s: cannot write (%s); keeping records in memory", self.dir, e)
            entry = Entry(kind, seq, readings, len(record), None, data=payload)
            q.memory_bytes += len(record)
            q.memory_records += 1
        q.entries.append(entry)
        q.by_seq[seq] = entry
        self._bound()
        return entry

    def due(self, now: float, limit: int) -> list[Entry]:
        """Up to ``limit`` entries to publish now: never sent, or not confirmed in time."""
        out: list[Entry] = []
        for kind in _KINDS:
            for e in self._q[kind].by_seq.values():
                if len(out) >= limit:
                    return out
                if e.sent_at is None or now - e.sent_at >= self._timeout(e):
                    out.append(e)
        return out

    def next_due_in(self, now: float) -> float | None:
        """Seconds until the next sent entry times out; ``None`` if nothing waits."""
        best: float | None = None
        for q in self._q.values():
            for e in q.by_seq.values():
                if e.sent_at is None:
                    return 0.0
                left = e.sent_at + self._timeout(e) - now
                best = left if best is None else min(best, left)
        return None if best is None else max(0.0, best)

    def payload(self, entry: Entry) -> bytes:
        """What to publish for ``entry`` (only while it is not ``gone``)."""
        if entry.loc is None:
            assert entry.data is not None
            return entry.data
        return self._q[entry.kind].spool.read(entry.loc)[_HEAD.size :]

    def mark_sent(self, entry: Entry, now: float) -> None:
        """``entry`` was published (the broker acknowledged it)."""
        if entry.sends:
            self.stats["resent"] += 1
        entry.sends += 1
        entry.sent_at = now

    def resend_all(self) -> None:
        """A controller (re)subscribed: everything unconfirmed is due again, backoff reset."""
        for q in self._q.values():
            for e in q.by_seq.values():
                e.sent_at = None
                e.sends = min(e.sends, 1)

    def confirm(self, kind: str, ranges: Iterable[tuple[int, int]]) -> int:
        """Forget the entries of ``kind`` whose ``seq`` lies in ``ranges``; return how many."""
        q = self._q[kind]
        n = 0
        for first, last in ranges:
            if last - first + 1 <= len(q.by_seq):
                hits = [q.by_seq[s] for s in range(first, last + 1) if s in q.by_seq]
            else:
                hits = [e for s, e in q.by_seq.items() if first <= s <= last]
            for e in hits:
                del q.by_seq[e.seq]
                e.gone = e.confirmed = True
                n += 1
        self.stats["confirmed"] += n
        if n:
            self._release(q)
        return n

    def take_drops(self) -> Drops | None:
        """What was dropped since the last call (for the ``outbox_dropped`` event)."""
        if not self._drops.batches:
            return None
        d, self._drops = self._drops, Drops()
        return d

    def close(self) -> None:
        """Close the spools (unconfirmed records stay on disk)."""
        for q in self._q.values():
            q.spool.close()

    # -- internals ---------------------------------------------------------------------------

    def _timeout(self, e: Entry) -> float:
        return self.confirm_timeout_s * (1 << min(max(e.sends - 1, 0), MAX_BACKOFF_DOUBLINGS))

    def _release(self, q: _Queue) -> None:
        """Acknowledge the spool's head while its entries are gone."""
        disk = 0
        while q.entries and q.entries[0].gone:
            e = q.entries.popleft()
            if e.loc is not None:
                disk += 1
            else:
                q.memory_bytes -= e.size
                q.memory_records -= 1
        if disk:
            try:
                q.spool.ack(disk)
            except OSError as err:  # the head file could not be written: retried next time
                log.error("outbox %s: cannot record progress (%s)", self.dir, err)
                self.stats["write_errors"] += 1

    def _bound(self) -> None:
        q = self._q[TELEMETRY]
        while q.by_seq and (
            q.spool.disk_bytes + q.memory_bytes > self.max_bytes
            or q.memory_records > self.max_memory_records
        ):
            # the oldest live entry: everything before it is gone, so releasing frees it
            victim = next(e for e in q.entries if not e.gone)
            del q.by_seq[victim.seq]
            victim.gone = True
            self.stats["dropped_batches"] += 1
            self.stats["dropped_readings"] += victim.readings
            d = self._drops
            d.batches += 1
            d.readings += victim.readings
            d.first_seq = victim.seq if d.first_seq is None else min(d.first_seq, victim.seq)
            d.last_seq = victim.seq if d.last_seq is None else max(d.last_seq, victim.seq)
            self._release(q)


__all__ = ["EVENT", "TELEMETRY", "Drops", "Entry", "Outbox"]
