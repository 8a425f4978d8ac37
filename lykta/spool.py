"""A durable first-in, first-out queue of byte records on disk (store-and-forward).

The gateway keeps its outbox in spools; the controller spools InfluxDB batches while the
database is away. Both need the same thing: append now, hand out in order later, forget a
record only once the next hop has it for good, survive a crash and a power cut.

Layout: numbered segment files ``<n>.seg`` of records ``[magic][length u32][crc32 u32][data]``
(the crc covers the length and the data) and a ``head`` file naming the first unacknowledged
record (segment, offset). Fully acknowledged segments are deleted.

Reopening (:meth:`Spool.__init__`) scans every segment. A record that does not check out
(flipped bits, a bad sector, an overwritten block) is skipped and counted in
``stats.corrupt_records``; the scan finds the next record by its magic and goes on, so one bad
byte costs one record, never the rest of the file. Bytes after the last good record of the
last segment are a torn append (a crash mid-write, never acknowledged to anyone): they are
cut off so new records follow good ones, and counted in ``stats.torn_bytes``.

Durability (``fsync=True``, what both roles use): :meth:`append` returns once the record is
on the device (``fsync`` of the segment; a new segment file also ``fsync``\\ s the directory),
and the ``head`` file is replaced atomically (written, ``fsync``\\ ed, renamed, directory
``fsync``\\ ed). After a power cut the spool therefore holds every record whose ``append``
returned and was not acknowledged — at worst an acknowledged record comes back (at least once,
never lost). With ``fsync=False`` records survive a process crash but not a power cut.

Disk full: :meth:`append` raises ``OSError`` and leaves the files as they were (a partial write
is cut back), so the caller can make room (:meth:`ack`) and try again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import struct
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

MAGIC = b"\xa5LkR"
_LEN_CRC = struct.Struct(">II")
HEADER_BYTES = len(MAGIC) + _LEN_CRC.size
SEGMENT_BYTES = 8 * 1024 * 1024
MAX_RECORD = 64 * 1024 * 1024


class SpoolError(RuntimeError):
    """The spool directory cannot be used (permissions, not a directory)."""


class Locator(NamedTuple):
    """Where one record's data lies: segment number, offset of the data, its length."""

    segment: int
    offset: int
    length: int


@dataclasses.dataclass(slots=True)
class SpoolStats:
    """What the last open found, and what the spool holds."""

    corrupt_records: int = 0
    """Stretches of bytes that did not check out and were skipped on open."""
    corrupt_bytes: int = 0
    torn_bytes: int = 0
    """Bytes of a torn last append cut off on open."""


def _frame(record: bytes) -> bytes:
    length = struct.pack(">I", len(record))
    return MAGIC + length + struct.pack(">I", zlib.crc32(record, zlib.crc32(length))) + record


def scan(data: bytes, start: int = 0) -> Iterator[tuple[int, int, int]]:
    """The records in ``data`` from ``start``: ``(frame start, data start, data end)`` of each
    good one, in order, skipping whatever does not check out (pure; see the module doc)."""
    pos = start
    n = len(data)
    while pos + HEADER_BYTES <= n:
        if data[pos : pos + 4] == MAGIC:
            length, crc = _LEN_CRC.unpack_from(data, pos + 4)
            begin, end = pos + HEADER_BYTES, pos + HEADER_BYTES + length
            if length <= MAX_RECORD and end <= n:
                c = zlib.crc32(data[begin:end], zlib.crc32(data[pos + 4 : pos + 8]))
                if c == crc:
                    yield pos, begin, end
                    pos = end
                    continue
        nxt = data.find(MAGIC, pos + 1)
        if nxt < 0:
            return
        pos = nxt


class Spool:
    """FIFO of byte records in ``directory``. Not thread-safe; one owner at a time.

    ``sync`` is what makes a file descriptor durable (``os.fsync``); the power-cut test passes
    its own to see exactly what a policy puts on the device.
    """

    def __init__(
        self,
        directory: Path,
        *,
        fsync: bool = False,
        segment_bytes: int = SEGMENT_BYTES,
        sync: Callable[[int], None] = os.fsync,
    ) -> None:
        self.dir = Path(directory)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self._sync = sync
        self.stats = SpoolStats()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SpoolError(f"spool dir {self.dir}: {e.strerror}") from None
        # every unacknowledged record, in order
        self._index: deque[Locator] = deque()
        self._bytes = 0  # frame bytes of the records in _index
        self._recover()
        segs = self._segments()
        self._wseg = segs[-1] if segs else 1
        self._wfd = self._open_segment(self._wseg)
        self._wsize = os.fstat(self._wfd).st_size
        self._rfiles: dict[int, BinaryIO] = {}

    # -- public API --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._index)

    @property
    def disk_bytes(self) -> int:
        """Bytes on disk taken by the unacknowledged records (headers included)."""
        return self._bytes

    def append(self, record: bytes) -> Locator:
        """Add ``record`` at the tail (durable once this returns, see the module doc).

        Raises ``OSError`` (disk full, I/O error) with the spool unchanged."""
        if self._wsize >= self.segment_bytes:
            self._roll()
        frame = _frame(record)
        start = self._wsize
        try:
            written = os.write(self._wfd, frame)
            if written != len(frame):
                raise OSError(28, "short write (disk full?)")
            if self.fsync:
                self._sync(self._wfd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._wfd, start)
            raise
        self._wsize = start + len(frame)
        loc = Locator(self._wseg, start + HEADER_BYTES, len(record))
        self._index.append(loc)
        self._bytes += len(frame)
        return loc

    def read(self, loc: Locator) -> bytes:
        """The data of the record at ``loc`` (one that is still in the spool)."""
        f = self._reader(loc.segment)
        f.seek(loc.offset)
        return f.read(loc.length)

    def locators(self) -> list[Locator]:
        """Every unacknowledged record's locator, oldest first."""
        return list(self._index)

    def peek(self, n: int) -> list[bytes]:
        """Up to ``n`` records from the head, without removing them."""
        out = []
        for i, loc in enumerate(self._index):
            if i >= n:
                break
            out.append(self.read(loc))
        return out

    def ack(self, n: int) -> None:
        """Forget the first ``n`` records: the next hop has them."""
        if n > len(self._index):
            raise ValueError(f"ack({n}) but only {len(self._index)} records are spooled")
        if n == 0:
            return
        for _ in range(n):
            loc = self._index.popleft()
            self._bytes -= loc.length + HEADER_BYTES
        if self._index:
            head = self._index[0]
            self._write_head(head.segment, head.offset - HEADER_BYTES)
        else:
            self._write_head(self._wseg, self._wsize)
        first = self._index[0].segment if self._index else self._wseg
        for s in self._segments():
            if s < first:
                self._drop_segment(s)

    def close(self) -> None:
        """Close the files (the records stay on disk for the next open)."""
        with contextlib.suppress(OSError):
            os.close(self._wfd)
        for f in self._rfiles.values():
            f.close()
        self._rfiles.clear()

    # -- internals ---------------------------------------------------------------------------

    def _seg_path(self, n: int) -> Path:
        return self.dir / f"{n:012d}.seg"

    def _segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.dir.glob("*.seg") if p.stem.isdigit())

    def _open_segment(self, n: int) -> int:
        path = self._seg_path(n)
        new = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if new and self.fsync:
            self._sync_dir()
        return fd

    def _sync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            self._sync(fd)
        finally:
            os.close(fd)

    def _reader(self, seg: int) -> BinaryIO:
        f = self._rfiles.get(seg)
        if f is None:
            f = self._rfiles[seg] = open(self._seg_path(seg), "rb")  # noqa: SIM115 - cached
        return f

    def _roll(self) -> None:
        fd = self._open_segment(self._wseg + 1)
        os.close(self._wfd)
        self._wseg += 1
        self._wfd, self._wsize = fd, 0

    def _drop_segment(self, seg: int) -> None:
        f = self._rfiles.pop(seg, None)
        if f is not None:
            f.close()
        self._seg_path(seg).unlink(missing_ok=True)

    def _write_head(self, seg: int, offset: int) -> None:
        tmp = self.dir / "head.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, struct.pack(">QQ", seg, offset))
            if self.fsync:
                self._sync(fd)
        finally:
            os.close(fd)
        tmp.replace(self.dir / "head")
        if self.fsync:
            self._sync_dir()

    def _read_head(self) -> tuple[int, int]:
        try:
            return struct.unpack(">QQ", (self.dir / "head").read_bytes())
        except (OSError, struct.error):
            return (0, 0)

    def _recover(self) -> None:
        head_seg, head_off = self._read_head()
        segs = self._segments()
        for seg in segs:
            if seg < head_seg:
                self._seg_path(seg).unlink(missing_ok=True)
                continue
            path = self._seg_path(seg)
            data = path.read_bytes()
            pos = head_off if seg == head_seg else 0
            if pos > len(data):
                pos = 0  # a head that points past the file (the file was replaced): rescan
            good_end = pos
            for start, begin, end in scan(data, pos):
                if start > good_end:
                    self.stats.corrupt_records += 1
                    self.stats.corrupt_bytes += start - good_end
                self._index.append(Locator(seg, begin, end - begin))
                self._bytes += end - start
                good_end = end
            if good_end < len(data):
                if seg == segs[-1]:
                    # torn tail from a crash mid-append: cut it so new records follow good ones
                    self.stats.torn_bytes += len(data) - good_end
                    with open(path, "r+b") as f:
                        f.truncate(good_end)
                else:
                    self.stats.corrupt_records += 1
                    self.stats.corrupt_bytes += len(data) - good_end
