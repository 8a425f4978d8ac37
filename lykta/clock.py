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

    def __init__(
        self, start_ms: int | None = None, speed: float = 1.0, *, running: bool = True
    ) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed {speed} must be positive")
        self.start_ms = now_ms() if start_ms is None else start_ms
        self.speed = speed
        self._t0: float | None = time.monotonic() if running else None

    @property
    def running(self) -> bool:
        """Whether the clock runs (a clock made with ``running=False`` stands at ``start_ms``
        until :meth:`start`)."""
        return self._t0 is not None

    def start(self) -> None:
        """Let a standing clock run from ``start_ms`` now (no-op when it runs): the demo holds
        its clock while the stack, controller and gateways come up, so that ``--at 15:00
        --speed 3600`` starts the street at 15:00 rather than at whatever time the start-up
        took it to."""
        if self._t0 is None:
            self._t0 = time.monotonic()

    def _elapsed_s(self) -> float:
        return 0.0 if self._t0 is None else time.monotonic() - self._t0

    def now_ms(self) -> int:
        """Milliseconds since the epoch on this clock."""
        return self.start_ms + int(self._elapsed_s() * 1000 * self.speed)

    def seconds(self) -> float:
        """Seconds since the epoch on this clock (the field simulator's ``now``)."""
        return self.start_ms / 1000 + self._elapsed_s() * self.speed

    def real_s(self, sim_s: float) -> float:
        """How many real seconds ``sim_s`` seconds of this clock take."""
        return sim_s / self.speed
