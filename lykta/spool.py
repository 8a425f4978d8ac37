"""A durable first-in, first-out queue of byte records on disk (store-and-forward).

The gateway spools telemetry while the broker is away; the controller spools InfluxDB batches
while the database is away. Both need the same thing: append now, hand out in order later,
forget a record only once the next hop acknowledged it, survive a crash.

Layout: numbered segment files ``<n>.seg`` of records ``[length u32][crc32 u32][data]`` and a
``head`` file naming the first unacknowledged record (segment, offset). Fully acknowledged
segments are deleted. On open, a torn or corrupt tail (a crash mid-write) is cut off: the
records before it are kept, the partial one is lost — it was never acknowledged to anyone.

Durability: every append is written to the OS (survives a process crash). ``fsync=True``
also forces it to the device (survives power loss) at the cost of a disk flush per append.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from pathlib import Path

_HEADER = struct.Struct(">II")
SEGMENT_BYTES = 8 * 1024 * 1024


class SpoolError(RuntimeError):
    """The spool directory cannot be used (permissions, not a directory)."""


class Spool:
    """FIFO of byte records in ``directory``. Not thread-safe; one owner at a time."""

    def __init__(
        self, directory: Path, *, fsync: bool = False, segment_bytes: int = SEGMENT_BYTES
    ) -> None:
        self.dir = Path(directory)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SpoolError(f"spool dir {self.dir}: {e.strerror}") from None
        # (segment number, offset, length) of every unacknowledged record, in order
        self._index: deque[tuple[int, int, int]] = deque()
        self._recover()
        last = self._segments()[-1] if self._segments() else 1
        self._wseg = last
        self._wfile = open(self._seg_path(last), "ab")
        self._rfiles: dict[int, object] = {}

    # -- public API --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._index)

    def append(self, record: bytes) -> None:
        """Add ``record`` at the tail (durable once this returns, see module doc)."""
        if self._wfile.tell() >= self.segment_bytes:
            self._roll()
        offset = self._wfile.tell()
        self._wfile.write(_HEADER.pack(len(record), zlib.crc32(record)) + record)
        self._wfile.flush()
        if self.fsync:
            os.fsync(self._wfile.fileno())
        self._index.append((self._wseg, offset + _HEADER.size, len(record)))

    def peek(self, n: int) -> list[bytes]:
        """Up to ``n`` records from the head, without removing them."""
        out = []
        for i, (seg, off, length) in enumerate(self._index):
            if i >= n:
                break
            f = self._reader(seg)
            f.seek(off)
            out.append(f.read(length))
        return out

    def ack(self, n: int) -> None:
        """Forget the first ``n`` records: the next hop has them."""
        if n > len(self._index):
            raise ValueError(f"ack({n}) but only {len(self._index)} records are spooled")
        for _ in range(n):
            seg, _off, _len = self._index.popleft()
        if n == 0:
            return
        head = self._index[0] if self._index else (self._wseg, self._wfile.tell() + _HEADER.size, 0)
        self._write_head(head[0], head[1] - _HEADER.size)
        for s in self._segments():
            if s < head[0]:
                self._drop_segment(s)

    def close(self) -> None:
        """Close the files (the records stay on disk for the next open)."""
        self._wfile.close()
        for f in self._rfiles.values():
            f.close()  # type: ignore[attr-defined]
        self._rfiles.clear()

    # -- internals ---------------------------------------------------------------------------

    def _seg_path(self, n: int) -> Path:
        return self.dir / f"{n:012d}.seg"

    def _segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.dir.glob("*.seg") if p.stem.isdigit())

    def _reader(self, seg: int):  # noqa: ANN202 - a binary file object
        f = self._rfiles.get(seg)
        if f is None:
            f = self._rfiles[seg] = open(self._seg_path(seg), "rb")
        return f

    def _roll(self) -> None:
        self._wfile.close()
        self._wseg += 1
        self._wfile = open(self._seg_path(self._wseg), "ab")

    def _drop_segment(self, seg: int) -> None:
        f = self._rfiles.pop(seg, None)
        if f is not None:
            f.close()  # type: ignore[attr-defined]
        self._seg_path(seg).unlink(missing_ok=True)

    def _write_head(self, seg: int, offset: int) -> None:
        tmp = self.dir / "head.tmp"
        tmp.write_bytes(struct.pack(">QQ", seg, offset))
        tmp.replace(self.dir / "head")

    def _read_head(self) -> tuple[int, int]:
        try:
            return struct.unpack(">QQ", (self.dir / "head").read_bytes())
        except (OSError, struct.error):
            return (0, 0)

    def _recover(self) -> None:
        head_seg, head_off = self._read_head()
        for seg in self._segments():
            if seg < head_seg:
                self._seg_path(seg).unlink(missing_ok=True)
                continue
            path = self._seg_path(seg)
            data = path.read_bytes()
            pos = head_off if seg == head_seg else 0
            good_end = pos
            while pos + _HEADER.size <= len(data):
                length, crc = _HEADER.unpack_from(data, pos)
                start, end = pos + _HEADER.size, pos + _HEADER.size + length
                if end > len(data) or zlib.crc32(data[start:end]) != crc:
                    break
                self._index.append((seg, start, length))
                pos = good_end = end
            if good_end < len(data) and seg == self._segments()[-1]:
                # torn tail from a crash mid-append: cut it so new records follow good ones
                with open(path, "r+b") as f:
                    f.truncate(good_end)
