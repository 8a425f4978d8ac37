"""Pedestrians and cyclists walking a zone's path past presence sensors (pure, seeded).

A path is a line of ``length_m`` metres with sensors at given positions. People arrive at
either end as a Poisson process (per hour, per kind), walk or ride at realistic speeds
(pedestrians 1.0–1.7 m/s, cyclists 3.5–7 m/s) to the other end, and trigger each sensor when
they come within its detection range — in path order, at the times their speed implies.

Time is passed in (``advance(t)``); the same seed gives the same people.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["pedestrian", "cyclist"]

SPEED_MPS: dict[str, tuple[float, float]] = {"pedestrian": (1.0, 1.7), "cyclist": (3.5, 7.0)}
"""Uniform speed ranges per kind (walking ~1.3 m/s, urban cycling ~18 km/h)."""


@dataclass(frozen=True, slots=True)
class Walker:
    """One person on the path: enters at ``start_t`` from one end and keeps a speed."""

    kind: Kind
    start_t: float
    speed_mps: float
    forward: bool  # True: from position 0 towards length_m


@dataclass(frozen=True, slots=True, order=True)
class Detection:
    """A walker entered the detection range of sensor ``sensor`` at time ``t``."""

    t: float
    sensor: int
    kind: Kind = field(compare=False)
    speed_mps: float = field(compare=False)
    distance_m: float = field(compare=False)


@dataclass
class PathSimulation:
    """People on one path; :meth:`advance` returns the detections up to a time, in order."""

    length_m: float
    sensor_positions_m: Sequence[float]
    pedestrians_per_hour: float = 30.0
    cyclists_per_hour: float = 10.0
    detection_range_m: float = 8.0
    start_t: float = 0.0
    seed: int = 1
    counts: dict[str, int] = field(default_factory=lambda: {"pedestrian": 0, "cyclist": 0})

    def __post_init__(self) -> None:
        for p in self.sensor_positions_m:
            if not 0 <= p <= self.length_m:
                raise ValueError(f"sensor at {p} m is off the {self.length_m} m path")
        self._rng = random.Random(self.seed)
        self._t = self.start_t
        self._pending: list[Detection] = []
        self._on_path: list[tuple[float, Walker]] = []  # (leaves_t, walker)
        self._next_arrival = {k: self._draw_gap(k, self.start_t) for k in SPEED_MPS}
        self.last_detection: dict[int, Detection] = {}
        self.sensor_counts: list[dict[str, int]] = [
            {"pedestrian": 0, "cyclist": 0} for _ in self.sensor_positions_m]

    def _rate(self, kind: str) -> float:
        per_hour = self.pedestrians_per_hour if kind == "pedestrian" else self.cyclists_per_hour
        return per_hour / 3600.0

    def _draw_gap(self, kind: str, after: float) -> float:
        rate = self._rate(kind)
        return after + self._rng.expovariate(rate) if rate > 0 else float("inf")

    def add_walker(self, walker: Walker) -> None:
        """Put a person on the path (arrivals are drawn automatically; this adds one more)."""
        self._on_path.append((walker.start_t + self.length_m / walker.speed_mps, walker))
        for i, pos in enumerate(self.sensor_positions_m):
            along = pos if walker.forward else self.length_m - pos
            # enters the range detection_range_m before the sensor (or at once if it starts
            # inside it)
            t = walker.start_t + max(0.0, along - self.detection_range_m) / walker.speed_mps
            distance = min(self.detection_range_m, along)
            heapq.heappush(self._pending, Detection(t, i, walker.kind, walker.speed_mps,
                                                    distance))

    def advance(self, t: float) -> list[Detection]:
        """Everything that happened up to ``t`` (inclusive), oldest first."""
        if t < self._t:
            raise ValueError(f"time went backwards: {t} < {self._t}")
        for kind in SPEED_MPS:
            while self._next_arrival[kind] <= t:
                start = self._next_arrival[kind]
                lo, hi = SPEED_MPS[kind]
                self.add_walker(Walker(kind, start, self._rng.uniform(lo, hi),  # type: ignore[arg-type]
                                       self._rng.random() < 0.5))
                self.counts[kind] += 1
                self._next_arrival[kind] = self._draw_gap(kind, start)
        out: list[Detection] = []
        while self._pending and self._pending[0].t <= t:
            d = heapq.heappop(self._pending)
            self.last_detection[d.sensor] = d
            self.sensor_counts[d.sensor][d.kind] += 1
            out.append(d)
        self._on_path = [(leave, w) for leave, w in self._on_path if leave > t]
        self._t = t
        return out

    def on_path(self) -> int:
        """People on the path now."""
        return len(self._on_path)

    def occupied(self, sensor: int, t: float, hold_s: float = 5.0) -> bool:
        """Whether ``sensor`` saw someone within ``hold_s`` before ``t``."""
        last = self.last_detection.get(sensor)
        return last is not None and t - last.t <= hold_s
