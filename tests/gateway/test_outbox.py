"""The gateway's outbox (gateway/outbox.py): kept until confirmed, re-sent on time, bounded
with the oldest telemetry dropped first (never events), corrupt records skipped, a full disk
survived."""

from __future__ import annotations

import resource
import signal
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.outbox import EVENT, TELEMETRY, Outbox
from lykta.contract.ranges import coalesce


def _due_seqs(box: Outbox, now: float) -> list[tuple[str, int]]:
    return [(e.kind, e.seq) for e in box.due(now, 10_000)]


def test_kept_until_confirmed_and_resent_with_backoff(tmp_path: Path) -> None:
    box = Outbox(tmp_path, confirm_timeout_s=10)
    for s in range(5):
        box.add(TELEMETRY, s, b"t%d" % s, readings=3)
    box.add(EVENT, 0, b"e0")
    assert _due_seqs(box, 0) == [(EVENT, 0)] + [(TELEMETRY, s) for s in range(5)]  # events first
    for e in box.due(0, 100):
        box.mark_sent(e, 0)
    assert box.due(5, 100) == [] and box.next_due_in(5) == 5
    box.confirm(TELEMETRY, [(1, 2), (4, 4)])  # out of order, as several controllers confirm
    box.confirm(EVENT, [(0, 0)])
    assert len(box) == 2 and _due_seqs(box, 10) == [(TELEMETRY, 0), (TELEMETRY, 3)]
    for e in box.due(10, 100):
        box.mark_sent(e, 10)
    assert box.due(29, 100) == []  # the second timeout is twice the first
    assert _due_seqs(box, 30) == [(TELEMETRY, 0), (TELEMETRY, 3)]
    box.resend_all()  # a controller said resume: due at once
    assert _due_seqs(box, 10) == [(TELEMETRY, 0), (TELEMETRY, 3)]
    box.close()
    # confirmed out of order but not yet released from disk: it comes back (the controller
    # drops the duplicate); nothing unconfirmed is ever missing
    again = Outbox(tmp_path)
    assert {s for k, s in _due_seqs(again, 0)} >= {0, 3}
    assert again.max_seq(TELEMETRY) == 4
    again.confirm(TELEMETRY, [(0, 10)])
    assert len(again) == 0
    again.close()
    assert len(Outbox(tmp_path)) == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("tele"), st.integers(0, 400)),
            st.tuples(st.just("event"), st.integers(0, 100)),
            st.tuples(st.just("confirm"), st.lists(st.integers(0, 60), max_size=8)),
            st.tuples(st.just("reopen"), st.just(0)),
        ),
        max_size=50,
    )
)
def test_the_bound_drops_oldest_telemetry_never_events(program: list) -> None:
    # Invariant: telemetry never takes more than max_bytes; every event stays until confirmed;
    # what is dropped is always the oldest telemetry, and every drop is counted.
    max_bytes = 2000
    with tempfile.TemporaryDirectory() as d:
        box = Outbox(Path(d), max_bytes=max_bytes)
        tele: list[int] = []  # unconfirmed, not dropped, in order
        events: set[int] = set()
        seq = eseq = 0
        dropped = 0
        for op, arg in program:
            if op == "tele":
                box.add(TELEMETRY, seq, b"x" * arg, readings=1)
                tele.append(seq)
                seq += 1
                gone = len(tele) - box.count(TELEMETRY)
                dropped += gone
                del tele[:gone]  # the oldest go first
            elif op == "event":
                box.add(EVENT, eseq, b"e" * arg)
                events.add(eseq)
                eseq += 1
            elif op == "confirm":
                box.confirm(TELEMETRY, coalesce(arg))
                box.confirm(EVENT, coalesce(arg))
                tele = [s for s in tele if s not in arg]
                events -= set(arg)
            else:
                box.close()
                box = Outbox(Path(d), max_bytes=max_bytes)
                back = box.due(0, 10**6)
                back_t = [e.seq for e in back if e.kind == TELEMETRY]
                back_e = {e.seq for e in back if e.kind == EVENT}
                # nothing unconfirmed is missing (a confirmed one may come back: at least once)
                assert set(tele) <= set(back_t) and events <= back_e
                tele, events, dropped = back_t, back_e, 0
            assert box.telemetry_bytes() <= max_bytes
            due = box.due(0, 10**6)
            assert {e.seq for e in due if e.kind == EVENT} == events
            assert [e.seq for e in due if e.kind == TELEMETRY] == tele
            if op != "reopen":
                assert box.stats["dropped_batches"] == dropped
        box.close()


def test_drops_are_reported_once(tmp_path: Path) -> None:
    box = Outbox(tmp_path, max_bytes=1000)
    for s in range(20):
        box.add(TELEMETRY, s, b"y" * 100, readings=7)
    d = box.take_drops()
    assert d is not None and d.first_seq == 0 and d.batches == box.stats["dropped_batches"] > 0
    assert d.readings == 7 * d.batches and d.last_seq == d.batches - 1
    assert box.take_drops() is None


def test_a_corrupt_record_is_skipped_and_counted_not_the_rest(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    for s in range(10):
        box.add(TELEMETRY, s, b'{"seq": %d}' % s)
    box.close()
    [seg] = (tmp_path / "telemetry").glob("*.seg")
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle
    seg.write_bytes(bytes(data))
    again = Outbox(tmp_path)
    left = [e.seq for e in again.due(0, 100)]
    assert len(left) == 9 and left == sorted(left) and left[-1] == 9
    assert again.stats["corrupt_records"] == 1


def test_a_full_disk_keeps_records_in_memory_and_never_raises(tmp_path: Path) -> None:
    # A real write failure from the kernel: the file-size limit (EFBIG, like ENOSPC a write
    # that the disk refuses), lifted again afterwards.
    box = Outbox(tmp_path)
    box.add(TELEMETRY, 0, b"on disk")
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200, old_limit[1]))
    try:
        for s in range(1, 20):
            box.add(TELEMETRY, s, b"z" * 50, readings=1)
        box.add(EVENT, 0, b"lamp failure")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert box.stats["write_errors"] > 0
    entries = box.due(0, 100)
    assert [e.seq for e in entries if e.kind == TELEMETRY] == list(range(20))  # nothing lost
    assert [box.payload(e) for e in entries if e.kind == EVENT] == [b"lamp failure"]
    box.confirm(TELEMETRY, [(0, 19)])
    box.confirm(EVENT, [(0, 0)])
    assert len(box) == 0
    box.add(TELEMETRY, 20, b"disk is back")  # and the disk is used again
    box.close()
    assert [e.seq for e in Outbox(tmp_path).due(0, 10)] == [20]
