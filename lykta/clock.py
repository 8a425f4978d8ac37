"""The wall clock in the contract's unit. Pure code takes the time as an argument; the I/O
shells default their injectable ``clock`` to this."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the epoch, UTC (the wire contract's timestamp unit)."""
    return int(time.time() * 1000)
