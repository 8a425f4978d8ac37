"""The on-disk spool: in order, nothing lost, nothing duplicated, crash-safe."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lykta.spool import HEADER_BYTES, Spool

ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.binary(max_size=300)),
        st.tuples(st.just("ack"), st.integers(0, 5)),
        st.tuples(st.just("reopen"), st.booleans()),  # True: tear the tail like a crash
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_spool_replays_exactly_the_unacknowledged_records_in_order(program: list) -> None:
    with tempfile.TemporaryDirectory() as d:
        spool = Spool(Path(d), segment_bytes=512)  # small segments: exercise rolling
        model: list[bytes] = []
        for op, arg in program:
            if op == "append":
                spool.append(arg)
                model.append(arg)
            elif op == "ack":
                n = min(arg, len(model))
                spool.ack(n)
                del model[:n]
            else:
                spool.close()
                if arg and model:
                    # a crash mid-append leaves half a record at the end of the last segment
                    last = sorted(Path(d).glob("*.seg"))[-1]
                    with open(last, "ab") as f:
                        f.write(b"\x00\x00\x01\x00garbage")
                spool = Spool(Path(d), segment_bytes=512)
            assert len(spool) == len(model)
            assert spool.peek(len(model) + 1) == model
        spool.close()


def test_acknowledged_segments_are_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=100)
    for i in range(50):
        spool.append(bytes([i]) * 40)
    assert len(list(tmp_path.glob("*.seg"))) > 5
    spool.ack(50)
    assert len(list(tmp_path.glob("*.seg"))) == 1
    spool.append(b"after")
    spool.close()
    again = Spool(tmp_path, segment_bytes=100)
    assert again.peek(10) == [b"after"]


# -- corruption: one bad byte costs at most the records it touches --------------------------

corruptions = st.lists(
    st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=4
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=120), min_size=1, max_size=30), corruptions)
def test_corruption_at_random_offsets_skips_only_the_records_it_touches(
    records: list[bytes], hits: list[tuple[float, int]]
) -> None:
    # Invariant: after bytes anywhere in the segments are changed, reopening yields, in order,
    # every record whose frame is intact, never a record that was not appended, counts the
    # damage, and goes on appending after it.
    with tempfile.TemporaryDirectory() as d:
        spool = Spool(Path(d), segment_bytes=400)
        locs = [spool.append(r) for r in records]
        spool.close()
        segs = sorted(Path(d).glob("*.seg"))
        sizes = [p.stat().st_size for p in segs]
        total = sum(sizes)
        touched: set[tuple[int, int]] = set()  # (segment index, byte offset)
        data = [bytearray(p.read_bytes()) for p in segs]
        for where, xor in hits:
            off = int(where * total)
            i = 0
            while off >= sizes[i]:
                off -= sizes[i]
                i += 1
            data[i][off] ^= xor
        for i, (p, b) in enumerate(zip(segs, data, strict=True)):
            original = p.read_bytes()
            touched.update((i, o) for o in range(len(b)) if b[o] != original[o])
            p.write_bytes(bytes(b))
        seg_index = {int(p.stem): i for i, p in enumerate(segs)}

        def intact(loc: object) -> bool:
            seg, off, length = loc  # type: ignore[misc]
            i = seg_index[seg]
            return not any(j == i and off - HEADER_BYTES <= o < off + length for j, o in touched)

        expected = [r for r, loc in zip(records, locs, strict=True) if intact(loc)]
        again = Spool(Path(d), segment_bytes=400)
        got = again.peek(len(records) + 1)
        assert got == expected
        damaged = len(records) - len(expected)
        assert (again.stats.corrupt_records > 0 or again.stats.torn_bytes > 0) == (damaged > 0)
        again.append(b"after")
        again.close()
        assert Spool(Path(d), segment_bytes=400).peek(len(records) + 2) == [*expected, b"after"]


# -- power cut: only what was fsync'ed survives --------------------------------------------


class Device:
    """What a disk holds after a power cut: every file (by inode) with its content at its last
    fsync, under the names its directory had at the directory's last fsync."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.content: dict[int, bytes] = {}  # inode -> bytes at the last fsync
        self.names: dict[str, int] = {}  # name -> inode at the directory's last fsync

    def sync(self, fd: int) -> None:
        os.fsync(fd)
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if path == self.dir:
            self.names = {p.name: p.stat().st_ino for p in self.dir.iterdir()}
        else:
            self.content[os.fstat(fd).st_ino] = path.read_bytes()

    def cut(self, torn: bytes) -> None:
        """Replace the directory by what survives; unsynced tails come back as ``torn``."""
        for p in list(self.dir.iterdir()):
            p.unlink()
        for name, ino in self.names.items():
            data = self.content.get(ino, b"")
            if name.endswith(".seg"):
                data += torn  # a write the disk had started, half on the platter
            (self.dir / name).write_bytes(data)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.binary(max_size=80)),
            st.tuples(st.just("ack"), st.integers(0, 3)),
        ),
        max_size=40,
    ),
    st.binary(max_size=30),
)
def test_a_power_cut_keeps_every_record_whose_append_returned(program: list, torn: bytes) -> None:
    # The stated policy (fsync=True): a record is on the device when append returns, and so
    # is an acknowledgement when ack returns (fails with fsync=False: nothing is on the device).
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        dev = Device(d)
        spool = Spool(d, fsync=True, segment_bytes=200, sync=dev.sync)
        appended: list[bytes] = []
        acked = 0
        for op, arg in program:
            if op == "append":
                spool.append(arg)
                appended.append(arg)
            else:
                n = min(arg, len(appended) - acked)
                spool.ack(n)
                acked += n
        spool.close()
        dev.cut(torn)
        after = Spool(d, fsync=True, segment_bytes=200).peek(len(appended) + 1)
        unacked = appended[acked:]
        # every unacknowledged record, in order; the acknowledgements reached the device too
        assert after == unacked
