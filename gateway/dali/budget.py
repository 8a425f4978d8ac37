"""Bus-time budget (pure): how much DALI bus time background work may take.

Presence reactions and schedule steps are *urgent* frames and always go first. Background work
(D4i memory bank reads, status polls) is admitted frame by frame, only while its bus time within
the sliding ``window_s`` stays below ``share`` of the window (default 50 %). Because background
work is split into single frames (each ≤ 55.3 ms), an urgent frame waits at most one frame,
never behind a whole bank read (≈ 0.8 s per luminaire).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class BusTimeBudget:
    """Accounts bus time per class and decides whether background work may run now."""

    share: float = 0.5
    window_s: float = 10.0
    urgent_s: float = 0.0
    background_s: float = 0.0
    _recent: deque[tuple[float, float]] = field(default_factory=deque, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise ValueError(f"background bus-time share {self.share} outside (0, 1]")
        if self.window_s <= 0:
            raise ValueError(f"budget window {self.window_s} s must be positive")

    def spend(self, now: float, seconds: float, *, background: bool) -> None:
        """Account ``seconds`` of bus time ending at ``now``."""
        if background:
            self.background_s += seconds
            self._recent.append((now, seconds))
        else:
            self.urgent_s += seconds

    def background_used(self, now: float) -> float:
        """Background bus time within the window ending at ``now``."""
        while self._recent and self._recent[0][0] <= now - self.window_s:
            self._recent.popleft()
        return sum(s for _, s in self._recent)

    def background_wait(self, now: float, frame_s: float) -> float:
        """Seconds until a background frame of ``frame_s`` fits the budget (0: send now)."""
        limit = self.share * self.window_s
        used = self.background_used(now)
        if used + frame_s <= limit:
            return 0.0
        # wait until enough old frames leave the window
        excess = used + frame_s - limit
        freed = 0.0
        for t, s in self._recent:
            freed += s
            if freed >= excess:
                return max(0.0, t + self.window_s - now)
        return self.window_s
