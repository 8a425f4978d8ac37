"""The wall clock in the contract's unit. Pure code takes the time as an argument; the I/O
shells default their injectable ``clock`` to this."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the epoch, UTC (the wire contract's timestamp unit)."""
    return int(time.time() * 1000)


class ScaledClock:
    """A clock that starts at ``start_ms`` and runs ``speed`` times as fast as real time: the
    demo's and the tests' time on demand (``lykta demo --at 2027-01-15T01:00 --speed 60``).

    Hand :meth:`now_ms` to whatever takes a ``clock`` (gateway, runner, controller) and
    :meth:`seconds` to the field simulator (``now``), so gateways, simulated gear, pedestrians
    and the sun all share one time.
    """

    def __init__(self, start_ms: int | None = None, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed {speed} must be positive")
        self.start_ms = now_ms() if start_ms is None else start_ms
        self.speed = speed
        self._t0 = time.monotonic()

    def now_ms(self) -> int:
        """Milliseconds since the epoch on this clock."""
        return self.start_ms + int((time.monotonic() - self._t0) * 1000 * self.speed)

    def seconds(self) -> float:
        """Seconds since the epoch on this clock (the field simulator's ``now``)."""
        return self.start_ms / 1000 + (time.monotonic() - self._t0) * self.speed

    def real_s(self, sim_s: float) -> float:
        """How many real seconds ``sim_s`` seconds of this clock take."""
        return sim_s / self.speed
