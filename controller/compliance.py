"""Street safety and uptime, measured: what each zone and gateway did, minute by minute.

Pure: fed the messages ingest decodes (:meth:`Minutes.telemetry`, :meth:`Minutes.event`) and
asked, for each closed minute, what happened (:meth:`Minutes.close`); no clock and no I/O
(:mod:`controller.minute_writer` owns the clock and writes the lines).

Per **zone** the strategy's demand comes from the same evaluator the gateways run
(:func:`lykta.strategy.evaluate`), judged against each luminaire's last reading:

- *dark*: luminaires that should be lit (the zone is in its lit window) but report a level
  below the zone's safety floor, or a lamp failure. One per luminaire per minute: summed over
  time this is the **dark minutes** the city's safety programme is about; its goal is 0.
- *not answering*: luminaires with no reading for ``answer_window_ms`` (a DALI luminaire that
  does not answer is left out of telemetry, never sent as level 0).
- mean level against the expected mean (percent of full light), and the safety floor. The
  expected level is the schedule's class stepped down by the traffic steps the luminaire's own
  gateway reported for its zone (``TelemetryBatch.zone_steps``, traffic-adaptive dimming): a
  quiet street dimmed as the strategy allows is on expected, not below it. No steps reported,
  or none in ``answer_window_ms``, is unknown traffic: the unadapted class, as at the gateway.
  The safety floor, and so *dark*, does not depend on them: traffic never steps below it;
- presence: detections in the zone, those the gateway reacted to (``boosted`` > 0).

A luminaire that switched on less than ``grace_ms`` ago is not judged yet (fades, and the
second or two between the gateway's and the controller's view of dusk).

Energy per zone: the power its luminaires report (measured, else the gateway's estimate) and
what the strategy's all-on reference (:func:`lykta.strategy.energy.baseline_power_w`, the
baseline of the energy estimate) would draw in the same minute, so the saving is one query.

Per **luminaire**: its state for the map (:class:`LuminaireState`) and where it stands.

Per **gateway**: online, luminaires answering, readings, age of the last reading, and whether
it runs the program the controller published to it (``program_ok``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lykta.contract import Event, EventKind, TelemetryBatch
from lykta.strategy import Strategy, evaluate
from lykta.strategy.dali_curve import MAX_LEVEL, arc_level_to_percent
from lykta.strategy.energy import baseline_lit, baseline_power_w
from lykta.strategy.model import Luminaire

LAMP_FAILURE_BIT = 0x02  # DALI status byte, bit 1 (IEC 62386-102)
MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class ZoneMinute:
    """What one zone did in the minute ending at ``ts`` (fields of ``zone_compliance``)."""

    zone: str
    ts: int
    safety_route: bool
    luminaires: int
    lit: bool
    answering: int
    not_answering: int
    dark: int
    failed: int
    level_pct: float | None
    expected_pct: float | None
    floor_pct: float | None
    presence: int
    reactions: int
    boosted: int
    power_w: float | None = None
    """Sum of the answering luminaires' last power (measured, else estimated); ``None``: none
    reports power."""
    baseline_w: float = 0.0
    """What the zone would draw all-on (100 % in the site's lit window, standby outside)."""
    power_baseline_w: float | None = None
    """The all-on draw of just the luminaires summed in ``power_w`` (``None`` with it): the
    saving's reference, so a luminaire that does not answer is not counted as saved energy."""


class LuminaireState(enum.IntEnum):
    """A luminaire's state on the map (``luminaire_state.state``), worst last."""

    OFF = 0
    DIMMED = 1
    FULL = 2
    BELOW_FLOOR = 3
    FAILED = 4
    NOT_ANSWERING = 5


@dataclass(frozen=True, slots=True)
class LuminaireMinute:
    """One luminaire at the end of the minute ``ts`` (fields of ``luminaire_state``)."""

    luminaire: str
    ts: int
    zone: str
    gateway: str
    state: LuminaireState
    level_pct: float | None
    latitude: float | None
    longitude: float | None


@dataclass(frozen=True, slots=True)
class GatewayMinute:
    """What one gateway did in the minute ending at ``ts`` (fields of ``gateway_health``)."""

    gateway: str
    ts: int
    zone: str | None
    online: bool
    luminaires: int
    answering: int
    readings: int
    last_seen_s: float | None
    program_ok: bool | None


@dataclass(slots=True)
class _Last:
    ts: int
    level: int
    status: int
    power_w: float | None


@dataclass(slots=True)
class Minutes:
    """Collects readings and presence events; :meth:`close` judges a minute."""

    answer_window_ms: int = 2 * MINUTE_MS
    grace_ms: int = MINUTE_MS
    last: dict[str, _Last] = field(default_factory=dict)
    """Luminaire id -> its newest reading."""
    last_batch: dict[str, int] = field(default_factory=dict)
    """Gateway -> arrival of its newest batch (its own ``ts``)."""
    zone_steps: dict[str, Mapping[str, int]] = field(default_factory=dict)
    """Gateway -> the traffic steps per zone in its newest batch (a zone absent: no step)."""
    readings: dict[str, int] = field(default_factory=dict)
    """Gateway -> readings since the last :meth:`close`."""
    presence: dict[str, list[int]] = field(default_factory=dict)
    """Zone -> ``boosted`` of each detection since the last :meth:`close`."""
    states: list[LuminaireMinute] = field(default_factory=list)
    """Every luminaire's state as the last :meth:`close` judged it."""

    def telemetry(self, gateway: str, batch: TelemetryBatch) -> None:
        """Take one telemetry batch of ``gateway``."""
        for r in batch.luminaires:
            prev = self.last.get(r.id)
            if prev is None or r.ts >= prev.ts:
                self.last[r.id] = _Last(r.ts, r.level, r.status, r.power_w)
        if batch.ts >= self.last_batch.get(gateway, 0):
            # the newest batch says the steps now (one without the field: none); an older one
            # replayed from the gateway's outbox does not undo them
            self.zone_steps[gateway] = dict(batch.zone_steps)
        self.last_batch[gateway] = max(batch.ts, self.last_batch.get(gateway, 0))
        self.readings[gateway] = self.readings.get(gateway, 0) + batch.reading_count()

    def event(self, zone: str | None, event: Event) -> None:
        """Take one gateway event; ``zone`` is where its source stands (presence counts)."""
        if event.kind is EventKind.PRESENCE and zone is not None:
            boosted = event.detail.get("boosted")
            n = boosted if type(boosted) is int else 0
            self.presence.setdefault(zone, []).append(n)

    def close(
        self,
        strategy: Strategy,
        end_ms: int,
        *,
        online: Mapping[str, bool],
        program_ok: Mapping[str, bool | None],
    ) -> tuple[list[ZoneMinute], list[GatewayMinute]]:
        """Judge the minute ending at ``end_ms``; reset the per-minute counters.

        ``online``: gateway -> online now; ``program_ok``: gateway -> whether it runs the
        expected program (``None``: nothing expected yet).
        """
        at = datetime.fromtimestamp(end_ms / 1000, UTC)
        before = datetime.fromtimestamp((end_ms - self.grace_ms) / 1000, UTC)
        zones: dict[str, dict] = {
            z: {"lums": 0, "answering": 0, "dark": 0, "failed": 0, "levels": [], "expected": [],
                "floor": None, "lit": False, "power": None, "baseline": 0.0,
                "power_baseline": 0.0}  # fmt: skip
            for z in strategy.zones
        }
        base_lit = baseline_lit(strategy, at)
        # a gateway silent for the answer window: its traffic steps are unknown, so 0 (the
        # unadapted class), as the gateway itself does with an unknown flow
        steps = {
            gw: zs for gw, zs in self.zone_steps.items()
            if end_ms - self.last_batch.get(gw, 0) <= self.answer_window_ms
        }  # fmt: skip
        states: list[LuminaireMinute] = []
        per_gw: dict[str, list[int]] = {}  # gateway -> [luminaires, answering]
        gw_zones: dict[str, set[str]] = {}
        for lum in strategy.luminaires:
            acc = zones[lum.zone]
            acc["lums"] += 1
            gw = per_gw.setdefault(lum.gateway, [0, 0])
            gw[0] += 1
            gw_zones.setdefault(lum.gateway, set()).add(lum.zone)
            # each luminaire with the steps of *its* gateway: two cabinets on one zone count
            # their own sensors and may step it differently. Steps never change the floor or
            # the lit window, so dark (below the floor, judged with ``before`` too) is as it was.
            k = steps.get(lum.gateway, {}).get(lum.zone, 0)
            target = evaluate(strategy, lum.id, at, adaptive_steps=k)
            acc["lit"] = acc["lit"] or target.lit
            all_on = baseline_power_w(lum, base_lit)
            acc["baseline"] += all_on
            if target.lit:
                acc["expected"].append(arc_level_to_percent(target.level))
                acc["floor"] = max(acc["floor"] or 0.0, arc_level_to_percent(target.floor_level))
            reading = self.last.get(lum.id)
            if reading is None or end_ms - reading.ts > self.answer_window_ms:
                states.append(_state(lum, end_ms, LuminaireState.NOT_ANSWERING, None))
                continue
            acc["answering"] += 1
            gw[1] += 1
            if reading.power_w is not None:
                acc["power"] = (acc["power"] or 0.0) + reading.power_w
                acc["power_baseline"] += all_on
            failed = bool(reading.status & LAMP_FAILURE_BIT)
            acc["failed"] += failed
            dark = False
            if target.lit:
                acc["levels"].append(0.0 if failed else arc_level_to_percent(reading.level))
                below = reading.level < target.floor_level
                dark = (failed or below) and evaluate(strategy, lum.id, before).lit
                acc["dark"] += dark
            if failed:
                state = LuminaireState.FAILED
            elif dark:
                state = LuminaireState.BELOW_FLOOR
            elif reading.level == 0:
                state = LuminaireState.OFF
            else:
                state = LuminaireState.FULL if reading.level >= MAX_LEVEL else LuminaireState.DIMMED
            level = round(arc_level_to_percent(reading.level), 2)
            states.append(_state(lum, end_ms, state, level))
        zone_out = []
        for z, acc in zones.items():
            detections = self.presence.get(z, [])
            zone_out.append(
                ZoneMinute(
                    zone=z,
                    ts=end_ms,
                    safety_route=strategy.zones[z].safety_route,
                    luminaires=acc["lums"],
                    lit=acc["lit"],
                    answering=acc["answering"],
                    not_answering=acc["lums"] - acc["answering"],
                    dark=acc["dark"],
                    failed=acc["failed"],
                    level_pct=_mean(acc["levels"]),
                    expected_pct=_mean(acc["expected"]),
                    floor_pct=acc["floor"],
                    presence=len(detections),
                    reactions=sum(1 for n in detections if n > 0),
                    boosted=sum(detections),
                    power_w=None if acc["power"] is None else round(acc["power"], 3),
                    baseline_w=round(acc["baseline"], 3),
                    power_baseline_w=(None if acc["power"] is None
                                      else round(acc["power_baseline"], 3)),
                )
            )
        gw_out = []
        for gw_id in sorted(set(per_gw) | set(online) | set(self.last_batch)):
            lums, answering = per_gw.get(gw_id, [0, 0])
            seen = self.last_batch.get(gw_id)
            zs = gw_zones.get(gw_id, set())
            gw_out.append(
                GatewayMinute(
                    gateway=gw_id,
                    ts=end_ms,
                    zone=next(iter(zs)) if len(zs) == 1 else None,
                    online=online.get(gw_id, False),
                    luminaires=lums,
                    answering=answering,
                    readings=self.readings.get(gw_id, 0),
                    last_seen_s=None if seen is None else max(0.0, (end_ms - seen) / 1000),
                    program_ok=program_ok.get(gw_id),
                )
            )
        self.readings.clear()
        self.presence.clear()
        self.states = states
        return zone_out, gw_out


def _state(lum: Luminaire, ts: int, state: LuminaireState, level: float | None) -> LuminaireMinute:
    return LuminaireMinute(lum.id, ts, lum.zone, lum.gateway, state, level, lum.latitude,
                           lum.longitude)  # fmt: skip


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 2) if xs else None
