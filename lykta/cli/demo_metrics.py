"""What the demo's street did against what the preview promised, in luminaire-minutes.

:class:`StreetWatch` samples the simulated gear of every demo cabinet on the demo's clock and
compares each luminaire's actual arc level with the preview's — the very evaluator the
controller previews and compiles with (:func:`lykta.strategy.evaluate`), fed the presence
detections the gateway saw:

- ``dark_minutes``: luminaire-minutes in which the strategy says lit (and not switched off
  for maintenance) but the gear was below the zone's safety floor;
- ``preview_mismatch_minutes``: luminaire-minutes in which the gear's level differed from the
  preview's, outside transitions. A transition is a fade the gear runs, or the first moments
  after the preview's level changed: the gateway's reaction time, which at ``--speed 300`` is
  90 s of demo time per 0.3 s real (``grace_real_s``). For a lit luminaire the preview's
  level also changes at every detection whose corridor holds it and at the end of that hold,
  even when both fall between two samples (at ``--speed 3600`` a 90 s hold lasts 25 ms);
- ``lit_luminaires``: gear at an arc level above 0 at the last sample.

Sampling starts once every gateway runs its program (before, the fail-safe runs by design).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from fieldsim.cabinet import SimulatedCabinet
from gateway.program_runner import ProgramRunner
from lykta.strategy import Detection, Strategy, evaluate
from lykta.strategy.presence import corridor


@dataclass
class WatchedCabinet:
    """One demo gateway's cabinet, its executor and its luminaire ids by short address."""

    cabinet: SimulatedCabinet
    runner: ProgramRunner
    luminaires: dict[int, str]


@dataclass
class StreetWatch:
    """See the module docstring; call :meth:`sample` often, read :meth:`summary` at the end."""

    cabinets: Sequence[WatchedCabinet]
    strategy: Callable[[], Strategy | None]
    clock_ms: Callable[[], int]
    speed: float = 1.0
    grace_real_s: float = 0.3
    dark_s: float = 0.0
    mismatch_s: float = 0.0
    watched_s: float = 0.0
    lit_luminaires: int | None = None
    mismatches: list[tuple[int, str, int, int]] = field(default_factory=list)
    _last_ms: int | None = None
    _changed_at: dict[str, tuple[int, int]] = field(default_factory=dict)

    def sample(self) -> None:
        """Compare every luminaire now with the preview; account the time since the last."""
        strategy = self.strategy()
        now = self.clock_ms()
        if strategy is None or any(c.runner.mode != "program" for c in self.cabinets):
            self._last_ms = None
            return
        dt_s = 0.0 if self._last_ms is None else max(0.0, (now - self._last_ms) / 1000)
        self._last_ms = now
        at = dt.datetime.fromtimestamp(now / 1000, dt.UTC)
        grace_ms = self.grace_real_s * self.speed * 1000
        lit = 0
        for c in self.cabinets:
            presence = _detections(c.runner, strategy, now)
            recent = _detections(c.runner, strategy, now, also_ms=int(grace_ms))
            moved = _presence_changed_at(strategy, recent, now)
            for gear in c.cabinet.dali_bus.gear:
                lum_id = c.luminaires.get(gear.shortaddr) if gear.shortaddr is not None else None
                if lum_id is None:
                    continue
                actual = gear.actual_level if not gear.lamp_failure else 0
                lit += actual > 0
                zone = strategy.luminaire(lum_id).zone
                target = evaluate(strategy, lum_id, at, presence=presence,
                                  adaptive_steps=c.runner.adaptive_steps.get(zone, 0))  # fmt: skip
                level, since = self._changed_at.get(lum_id, (target.level, now))
                if level != target.level:
                    since = now
                self._changed_at[lum_id] = (target.level, since)
                if target.lit:  # presence moves lit luminaires only
                    since = max(since, moved.get(lum_id, since))
                if gear.fade_running or now - since < grace_ms:
                    continue  # a transition: the gear fades or the gateway is reacting
                self.watched_s += dt_s
                if target.lit and target.level >= target.floor_level > actual:
                    self.dark_s += dt_s
                if actual != target.level:
                    self.mismatch_s += dt_s
                    if len(self.mismatches) < 20:
                        self.mismatches.append((now, lum_id, actual, target.level))
        self.lit_luminaires = lit

    def summary(self) -> dict[str, object]:
        """The summary JSON's street figures."""
        return {
            "lit_luminaires": self.lit_luminaires,
            "dark_minutes": round(self.dark_s / 60, 3),
            "preview_mismatch_minutes": round(self.mismatch_s / 60, 3),
            "compared_luminaire_minutes": round(self.watched_s / 60, 1),
            "first_mismatches": [
                {"at": dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds"),
                 "luminaire": lum, "street": actual, "preview": want}
                for ms, lum, actual, want in self.mismatches
            ],
        }


def _presence_changed_at(
    strategy: Strategy, presence: dict[str, list[Detection]], now_ms: int
) -> dict[str, int]:
    """Per luminaire, the last instant up to now at which presence changed its preview: a
    detection whose corridor holds it (the corridor lights) or the end of that hold (it fades
    back). At high speed a whole hold can fall between two samples, so the level seen at the
    samples never changes; the gateway's reaction to either instant is still a transition."""
    held: dict[str, list[tuple[int, int]]] = {}
    for zone, detections in presence.items():
        rule = strategy.zones[zone].presence
        if rule is None:
            continue
        path = strategy.zone_path(zone)
        positions = [lum.position_m for lum in path]
        hold_ms = int(rule.hold_s * 1000)
        for d in detections:
            at = int(d.at.timestamp() * 1000)
            for i in corridor(positions, d.position_m, rule.ahead, rule.behind):
                held.setdefault(path[i].id, []).append((at, at + hold_ms))
    out: dict[str, int] = {}
    for lum_id, spans in held.items():
        # a renewed hold changes nothing: only the edges of the merged holds move the level
        spans.sort()
        edges: list[int] = []
        start, end = spans[0]
        for a, b in spans[1:]:
            if a > end:
                edges += [start, end]
                start = a
            end = max(end, b)
        edges += [start, end]
        past = [t for t in edges if t <= now_ms]
        if past:
            out[lum_id] = max(past)
    return out


def _detections(
    runner: ProgramRunner, strategy: Strategy, now_ms: int, also_ms: int = 0
) -> dict[str, list[Detection]]:
    """The presence detections the gateway saw, as the evaluator takes them (those within the
    longest hold, and ``also_ms`` before)."""
    out: dict[str, list[Detection]] = {}
    longest_hold_ms = max(
        (z.presence.hold_s * 1000 for z in strategy.zones.values() if z.presence), default=0
    )
    for key, ts in reversed(runner.detections):
        if now_ms - ts > longest_hold_ms + also_ms:
            break
        sensor = runner.sensors.get(key)
        if sensor is not None:
            at = dt.datetime.fromtimestamp(ts / 1000, dt.UTC)
            out.setdefault(sensor.zone, []).append(Detection(sensor.position_m, at))
    return out
