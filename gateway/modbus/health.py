"""Per-device health (pure): when a device counts as offline, and how often to poll it then.

A poll fails when no request of it got an answer (timeout, CRC/framing error, connection lost).
An exception reply is an answer: the device is there, the register map is wrong; it is
reported but does not make the device offline. After ``offline_after`` failed polls in a row the
device is offline (one event) and is polled every ``offline_interval_s`` instead of its normal
interval, so a dead device does not eat the bus; the first answer brings it back (one event).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Transition(enum.Enum):
    """A change of a device's reachability, reported as an event."""

    WENT_OFFLINE = "offline"
    CAME_ONLINE = "online"


@dataclass
class DeviceHealth:
    """Reachability of one device; all times are monotonic seconds passed in by the caller."""

    interval_s: float
    offline_after: int = 3
    offline_interval_s: float = 30.0
    online: bool = True
    failures: int = 0
    next_poll_s: float = 0.0

    def due(self, now: float) -> bool:
        """Whether the device should be polled at ``now``."""
        return now >= self.next_poll_s

    def record(self, now: float, *, answered: bool) -> Transition | None:
        """Account one poll at ``now``; return the transition it caused, if any."""
        if answered:
            self.failures = 0
            self.next_poll_s = now + self.interval_s
            if not self.online:
                self.online = True
                return Transition.CAME_ONLINE
            return None
        self.failures += 1
        if self.online and self.failures >= self.offline_after:
            self.online = False
            self.next_poll_s = now + self.offline_interval_s
            return Transition.WENT_OFFLINE
        self.next_poll_s = now + (self.interval_s if self.online else self.offline_interval_s)
        return None
