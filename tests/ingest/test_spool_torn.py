"""The shared spool (lykta/spool.py) as the InfluxDB writer uses it: a crash tears the last
append at any byte, and the spool replays exactly the acknowledged-minus-torn records."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lykta.spool import HEADER_BYTES, Spool

ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.binary(min_size=0, max_size=200)),
        st.tuples(st.just("ack"), st.integers(0, 4)),
        # crash while appending this record: only `cut` of its bytes reach the disk
        st.tuples(st.just("torn"), st.tuples(st.binary(min_size=1, max_size=200),
                                             st.floats(0, 1, exclude_max=True))),
    ),
    max_size=40,
)


def _last_segment(d: Path) -> Path:
    return max(d.glob("*.seg"), key=lambda p: int(p.stem))


@settings(max_examples=150, deadline=None)
@given(ops)
def test_torn_appends_at_any_byte_lose_only_the_torn_record(program: list) -> None:
    # Invariant: after any sequence of appends, acks and crashes that tear the append in
    # progress at any byte, the spool holds exactly the appended, unacknowledged, untorn
    # records, in order, and goes on appending after them.
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        spool = Spool(d, segment_bytes=300, fsync=False)
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
                record, fraction = arg
                spool.append(record)
                spool.close()
                last = _last_segment(d)
                frame = HEADER_BYTES + len(record)
                keep = int(fraction * frame)  # 0 .. frame-1 bytes of the record survive
                os.truncate(last, last.stat().st_size - frame + keep)
                spool = Spool(d, segment_bytes=300, fsync=False)
            assert len(spool) == len(model)
            assert spool.peek(len(model) + 1) == model
        spool.close()
