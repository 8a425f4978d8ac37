"""Runs the control program on the street: accepts signed programs, executes them on the DALI
buses, reacts to presence, applies override commands, and falls back to the fail-safe.

The decisions are pure (:mod:`gateway.levels`, :mod:`lykta.strategy.execution`); this module
is the shell that feeds them the clock, the verified program and the bus events, and hands the
wanted levels and fades to the DALI drivers, which send only what differs from what the gear
has (one group frame per (group, level); the gear fades by itself).

Event-driven: a presence event (:meth:`ProgramRunner.on_presence_event`) boosts its corridor
and wakes the executor at once; the executor interrupts whatever it is sending between two
frames and sends the corridor first. Between events it steps every ``tick_s`` (switch points,
expiries, levels to heal after a state read found them wrong).

Corridors across cabinets: a presence event of a neighbouring gateway (its ``event`` topic,
read for the gateways the program's presence rules name) lights this gateway's part of the
corridor, computed by the same function over the same path
(:meth:`ProgramRunner.on_neighbour_presence`); it only ever boosts, only while lit, and not
after the hold time counted from the neighbour's detection.

Commanded state survives: active overrides are kept in ``state_dir/overrides.json`` with their
original expiry and resumed after a restart; the last good program in ``program.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dali.exceptions import DALIError

from gateway.dali.driver import DaliLuminaireDriver, GearTarget
from gateway.levels import ActiveOverride, Boost, Source, Wanted, program_lit, wanted_levels
from lykta.clock import now_ms
from lykta.contract import Command, CommandResult, ContractError, Event, EventKind, decode
from lykta.contract.messages import CancelOverrideCommand, OverrideCommand
from lykta.contract.program import Program
from lykta.signing import PublicKeys, program_hash, trusted_keys, verify_program
from lykta.strategy import (
    LuxHysteresis,
    lux_switch,
    presence_corridor,
    program_valid,
    safe_default_level,
)
from lykta.strategy.adaptive import flow_per_h, next_steps

log = logging.getLogger("lykta.gateway.program")

MAX_OVERRIDE_MS = 12 * 3600 * 1000  # an override never outlives half a day without renewal


MAX_PEOPLE_PER_EVENT = 1000
"""A presence event counts at most this many people (a counter that jumped is not a crowd)."""

LUX_STALE_MS = 15 * 60 * 1000
"""A lux reading older than this is unknown: the program's lit windows decide again."""

NEIGHBOUR_SKEW_MS = 5_000
"""How far in this gateway's future a neighbour's presence event may be stamped (two NTP
clocks disagree by milliseconds); one from farther ahead is refused, so a wrong clock cannot
hold a corridor past its hold time."""


@dataclass(frozen=True, slots=True)
class PresenceSensor:
    """Where a presence sensor stands on a zone's path: a DALI Part 303 occupancy sensor
    (``bus``, ``short_address``) or a Modbus presence sensor (``device`` id)."""

    bus: str
    short_address: int
    zone: str
    position_m: float
    device: str | None = None

    @property
    def key(self) -> str:
        """The ``source`` of this sensor's presence events."""
        return self.device if self.device is not None else f"{self.bus}/sensor-{self.short_address}"


class ProgramRunner:
    """The gateway's executor. ``drivers`` maps bus name -> DALI driver; ``luminaires`` maps
    luminaire id -> bus name."""

    def __init__(
        self,
        *,
        site: str,
        gateway: str,
        drivers: Mapping[str, DaliLuminaireDriver],
        luminaires: Mapping[str, str],
        state_dir: Path,
        public_key: PublicKeys | None,
        latitude: float,
        longitude: float,
        sun_elevation_deg: float = -4.0,
        fail_safe_level: int = 254,
        presence_sensors: list[PresenceSensor] | None = None,
        emit: Callable[[Event], None] = lambda e: None,
        clock: Callable[[], int] = now_ms,
        tick_s: float = 1.0,
        speed: float = 1.0,
    ) -> None:
        self.site, self.gateway = site, gateway
        self.drivers = drivers
        self.luminaires = dict(luminaires)
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.public_key = trusted_keys(public_key)  # several during a key rotation
        self.latitude, self.longitude = latitude, longitude
        self.sun_elevation_deg = sun_elevation_deg
        self.fail_safe_level = fail_safe_level
        self.sensors = {s.key: s for s in presence_sensors or []}
        self.emit = emit
        self.clock = clock
        self.tick_s = tick_s
        self.speed = speed  # clock ms per real ms (the demo's time on demand; 1 on the street)
        self.detections: deque[tuple[str, int]] = deque(maxlen=10_000)
        """(sensor key, clock ms) of every presence detection seen (the preview's input)."""
        self.counts: dict[str, deque[tuple[int, int]]] = {}
        """Per sensor key, (clock ms, people) of its detections: the traffic count."""
        self.counting_since = clock()
        """Since when the counts are complete (a flow needs a whole window of them)."""
        self._sensor_seen: dict[str, int] = {}
        self.adaptive_steps: dict[str, int] = {}
        """Per zone, the classes traffic steps it down now (absent: none)."""
        self.program: Program | None = None
        self.overrides: dict[str, ActiveOverride] = {}
        self.boosts: dict[str, Boost] = {}
        self.commanded: dict[str, int] = {}
        self.sources: dict[str, Source] = {}
        self.frames_sent = 0
        self.steps = 0
        self.mode = "fail-safe"
        self.presence_reactions = 0
        self.presence_latencies_ms: deque[float] = deque(maxlen=10_000)
        """Sensor event read -> first corridor frame on the bus, per reaction (ms)."""
        self.neighbour_stats: Counter[str] = Counter()
        """Neighbours' presence events by outcome: ``reactions``, ``not_lit``, ``stale``,
        ``future``, ``not_neighbour``, ``bad_detail``, ``out_of_reach``, ``no_program``,
        ``unplaced`` (a detection of a sensor the neighbour does not place on a path)."""
        self.lux_lit: bool | None = None
        self._lux_at: int | None = None
        self._expired_reported: str | None = None
        self.last_step_at = time.monotonic()
        """When the executor last completed a step (monotonic): the watchdog's proof of
        progress."""
        self._changed = asyncio.Event()
        self._pending_reads: list[float] = []
        self._first: set[str] = set()
        for driver in drivers.values():
            driver.on_heal = self._changed.set
        self._load_saved_program()
        self._load_overrides()

    # -- programs ----------------------------------------------------------------------------

    @property
    def program_hash(self) -> str | None:
        """Hash of the program in force (reported in the gateway's birth)."""
        return program_hash(self.program) if self.program is not None else None

    def check_program(self, program: Program | None, now_ms: int) -> str | None:
        """Why ``program`` must not run here, or ``None`` if it may."""
        if program is None:
            return "not a valid program message"
        if program.site != self.site or program.gateway != self.gateway:
            return (
                f"program is for {program.site}/{program.gateway}, not {self.site}/{self.gateway}"
            )
        if not self.public_key:
            return "no public key configured: refusing unsigned trust"
        if not verify_program(program, self.public_key):
            return "bad signature"
        if program.valid_until <= now_ms:
            return f"expired at {program.valid_until}"
        running = self.program
        if running is not None and program.created_ts < running.created_ts:
            # a replayed old program (signed, but superseded) must not turn back the schedule
            return (f"older than the program in force (created {program.created_ts} < "
                    f"{running.created_ts})")  # fmt: skip
        return self.layout_problem(program)

    def layout_problem(self, program: Program) -> str | None:
        """Why ``program``'s luminaires and groups disagree with this gateway's DALI buses
        (None if they agree): a group frame must reach exactly the gear the program means, so
        a luminaire on another address or group, or a group whose members differ, refuses the
        program. A program luminaire this gateway does not drive at all is skipped."""
        on_bus: dict[tuple[str, int], frozenset[int]] = {}
        gear: dict[str, tuple[str, int, frozenset[int]]] = {}
        for bus, driver in self.drivers.items():
            for group, gear_members in driver.layout.groups.items():
                on_bus[(bus, group)] = gear_members
            for wired in driver.luminaires:
                gear[wired.id] = (bus, wired.short_address, wired.groups)
        wanted: dict[tuple[str, int], set[int]] = {}
        named: dict[str, set[int]] = {}
        for lum in program.luminaires:
            have = gear.get(lum.id)
            if have is None:
                continue  # not wired here (yet): nothing is sent to it; the rest may run
            bus, address, groups = have
            named.setdefault(bus, set()).add(address)
            if (lum.bus, lum.short_address) != (bus, address):
                return (
                    f"luminaire {lum.id}: program has bus {lum.bus} address "
                    f"{lum.short_address}, the gateway has bus {bus} address {address}"
                )
            if lum.group is not None:
                if lum.group not in groups:
                    return f"luminaire {lum.id}: not in DALI group {lum.group} on bus {bus}"
                wanted.setdefault((bus, lum.group), set()).add(address)
        for g in program.groups:
            members = wanted.get((g.bus, g.group), set())
            # the bus's members of the group among the gear the program names
            have_members = on_bus.get((g.bus, g.group), frozenset()) & named.get(g.bus, set())
            if members != have_members:
                return (
                    f"DALI group {g.group} on bus {g.bus}: program has short addresses "
                    f"{sorted(members)}, the bus has {sorted(have_members)}"
                )
        return None

    async def on_program(self, program: Program | None, raw: bytes) -> None:
        """A (retained) program arrived: verify it, then run it or keep what runs now."""
        if not raw:
            return  # retained program cleared: keep running what we have
        now = self.clock()
        reason = self.check_program(program, now)
        if reason is not None:
            log.warning("%s: program rejected: %s", self.gateway, reason)
            self.emit(
                Event(
                    ts=now,
                    kind=EventKind.PROGRAM_REJECTED,
                    source=self.gateway,
                    detail={
                        "reason": reason,
                        "version": program.version if program else None,
                        "created_ts": program.created_ts if program else None,
                        "running_version": self.program.version if self.program else None,
                    },
                )
            )
            return
        assert program is not None
        self.program = program
        self._expired_reported = None
        _write_atomic(self.state_dir / "program.json", raw)
        self.emit(
            Event(
                ts=now,
                kind=EventKind.PROGRAM_APPLIED,
                source=self.gateway,
                detail={
                    "version": program.version,
                    "hash": self.program_hash,
                    "valid_until": program.valid_until,
                },
            )
        )
        self._changed.set()

    def _load_saved_program(self) -> None:
        path = self.state_dir / "program.json"
        if not path.exists():
            return
        try:
            program = decode(path.read_bytes(), Program)
        except ContractError:
            return
        if self.check_program(program, self.clock()) is None:
            self.program = program
        elif self.layout_problem(program) is None and program.valid_until <= self.clock():
            self.program = program  # expired: it still tells a replay of an older one apart

    # -- commands ----------------------------------------------------------------------------

    async def on_command(self, cmd: Command) -> CommandResult:
        """Execute an (unexpired) command: ``override`` / ``cancel_override``."""
        now = self.clock()
        if isinstance(cmd, OverrideCommand):
            try:
                ov = self._parse_override(cmd, now)
            except (KeyError, TypeError, ValueError) as e:
                return CommandResult(id=cmd.id, ts=now, ok=False, detail=f"bad override: {e}")
            resumed = ov.id in self.overrides
            self.overrides[ov.id] = ov
            self._save_overrides()
            if resumed:  # the controller re-sends active overrides on every birth
                self._changed.set()
                return CommandResult(id=cmd.id, ts=now, ok=True, detail=f"override {ov.id} held")
            self.emit(
                Event(
                    ts=now,
                    kind=EventKind.OVERRIDE_STARTED,
                    source=self.gateway,
                    detail={
                        "id": ov.id,
                        "level": ov.level,
                        "until": ov.until_ms,
                        "luminaires": len(ov.luminaires),
                        "mode": ov.mode,
                    },
                )
            )
            self._changed.set()
            return CommandResult(
                id=cmd.id,
                ts=now,
                ok=True,
                detail=f"override {ov.id} on {len(ov.luminaires)} luminaires",
            )
        if isinstance(cmd, CancelOverrideCommand):
            ov_id = cmd.args.id
            if self.overrides.pop(ov_id, None) is None:
                return CommandResult(id=cmd.id, ts=now, ok=False, detail=f"no override {ov_id!r}")
            self._save_overrides()
            self.emit(
                Event(
                    ts=now,
                    kind=EventKind.OVERRIDE_ENDED,
                    source=self.gateway,
                    detail={"id": ov_id, "reason": "cancelled"},
                )
            )
            self._changed.set()
            return CommandResult(id=cmd.id, ts=now, ok=True, detail=f"override {ov_id} ended")
        return CommandResult(id=cmd.id, ts=now, ok=False, detail=f"unknown command {cmd.name!r}")

    def _parse_override(self, cmd: OverrideCommand, now: int) -> ActiveOverride:
        # The contract has typed and bounded the args (level 0..254, one of luminaires/zone).
        a = cmd.args
        until = min(a.until_ms, now + MAX_OVERRIDE_MS)
        if until <= now:
            raise ValueError("until_ms is in the past")
        if a.luminaires is not None:
            lums = frozenset(a.luminaires) & self.luminaires.keys()
        elif self.program is not None:
            lums = frozenset(p.id for p in self.program.luminaires if p.zone == a.zone)
        else:
            raise KeyError("zone needs a program")
        return ActiveOverride(
            id=a.id or cmd.id, luminaires=lums, level=a.level, until_ms=until, mode=a.mode
        )

    # -- overrides on disk ------------------------------------------------------------

    def _save_overrides(self) -> None:
        doc = [
            {
                "id": ov.id,
                "luminaires": sorted(ov.luminaires),
                "level": ov.level,
                "until_ms": ov.until_ms,
                "mode": ov.mode,
            }
            for ov in self.overrides.values()
        ]
        _write_atomic(self.state_dir / "overrides.json", json.dumps(doc).encode())

    def _load_overrides(self) -> None:
        path = self.state_dir / "overrides.json"
        try:
            doc = json.loads(path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            log.error("%s: %s unreadable (%s); no overrides resumed", self.gateway, path, e)
            return
        now = self.clock()
        for d in doc if isinstance(doc, list) else []:
            try:
                ov = ActiveOverride(
                    id=str(d["id"]),
                    luminaires=frozenset(map(str, d["luminaires"])) & self.luminaires.keys(),
                    level=max(0, min(254, int(d["level"]))),
                    until_ms=min(int(d["until_ms"]), now + MAX_OVERRIDE_MS),
                    mode="set" if d.get("mode") == "set" else "raise",
                )
            except (KeyError, TypeError, ValueError) as e:
                log.error("%s: override record %r dropped: %s", self.gateway, d, e)
                continue
            if ov.until_ms > now:
                self.overrides[ov.id] = ov
        if self.overrides:
            log.info("%s: resumed overrides %s", self.gateway, ", ".join(self.overrides))

    # -- presence and sensors ----------------------------------------------------------

    def on_presence(
        self, sensor_key: str, now_ms: int, *, read_at: float | None = None, people: int = 1
    ) -> int:
        """A sensor saw someone: hold the corridor ahead and behind at boost for the zone's
        hold time; it lights only while the schedule has the zone lit (as in the preview: a
        detection just before dusk still holds after it). Returns the luminaires lit now (0:
        unknown sensor, no program or not lit). ``read_at`` (monotonic) is when the event was
        read, for the reaction time; ``people`` how many it counted (a Modbus counter may count
        several between two polls), for the traffic flow."""
        sensor = self.sensors.get(sensor_key)
        if sensor is not None:
            self.detections.append((sensor_key, now_ms))
            self.count(sensor_key, now_ms, people)
        program = self.program
        if sensor is None or program is None or not program_valid(program, now_ms):
            return 0
        rule = next((r for r in program.presence if r.zone == sensor.zone), None)
        if rule is None:
            return 0
        corridor = presence_corridor(program, sensor.zone, sensor.position_m)
        lit = program_lit(program, now_ms, self._lux_state(now_ms))
        for lum, level in corridor:
            if lum.id in self.luminaires:
                self.boosts[lum.id] = Boost(level, now_ms + rule.hold_ms)
                if lit:
                    self._first.add(lum.id)
        if not lit:
            return 0
        for bus in {self.luminaires[lum.id] for lum, _ in corridor if lum.id in self.luminaires}:
            self.drivers[bus].expect_urgent()  # no background frame takes the bus meanwhile
        self.presence_reactions += 1
        if read_at is not None:
            self._pending_reads.append(read_at)
        self._changed.set()
        return len(corridor)

    def neighbour_gateways(self) -> list[str]:
        """The gateways whose presence events this gateway reads (its program's presence
        neighbours; none without a program)."""
        p = self.program
        return sorted({g for r in p.presence for g in r.neighbours}) if p is not None else []

    def has_neighbours(self, zone: object) -> bool:
        """Whether other gateways light part of ``zone``'s corridors (its presence rule names
        neighbours: they read this gateway's detections there, as it reads theirs)."""
        p = self.program
        return p is not None and any(r.zone == zone and r.neighbours for r in p.presence)

    def on_neighbour_presence(self, gateway: str, event: Event) -> str | None:
        """A neighbouring gateway's event (already decoded by the contract codec): if it is a
        detection in a zone this gateway shares with ``gateway`` (per the program), boost this
        gateway's luminaires of its corridor until the detection's ``ts`` plus the hold time.

        Returns ``None`` when it lit something, else why not (also counted in
        :attr:`neighbour_stats`). Other kinds of events and vacancy reports are no detections
        (``None``, not counted). A boost never lowers anything, and the floor applies after it
        (:func:`gateway.levels.wanted_levels`)."""
        if event.kind is not EventKind.PRESENCE or event.detail.get("occupied", True) is False:
            return None
        now = self.clock()
        reason = self._neighbour_boost(gateway, event, now)
        self.neighbour_stats[reason or "reactions"] += 1
        if reason in ("stale", "future", "not_neighbour", "bad_detail"):
            n = self.neighbour_stats[reason]
            if n in (1, 10, 100) or n % 1000 == 0:
                log.warning("%s: presence of %s/%s ignored: %s (%d so far)",
                            self.gateway, gateway, event.source, reason, n)  # fmt: skip
        return reason

    def _neighbour_boost(self, gateway: str, event: Event, now: int) -> str | None:
        program = self.program
        if program is None or not program_valid(program, now):
            return "no_program"
        if "zone" not in event.detail:
            return "unplaced"  # a sensor the neighbour has not placed on a path: not ours
        zone, pos = event.detail.get("zone"), event.detail.get("position_m")
        if not isinstance(zone, str) or isinstance(pos, bool) or not isinstance(pos, int | float):
            return "bad_detail"
        if not math.isfinite(pos):
            return "bad_detail"
        rule = next((r for r in program.presence if r.zone == zone), None)
        if rule is None or gateway not in rule.neighbours:
            return "not_neighbour"
        if event.ts > now + NEIGHBOUR_SKEW_MS:
            return "future"
        until = event.ts + rule.hold_ms
        if until <= now:
            return "stale"
        mine = [(lum, lv) for lum, lv in presence_corridor(program, zone, float(pos))
                if lum.id in self.luminaires]  # fmt: skip
        if not mine:
            return "out_of_reach"
        lit = program_lit(program, now, self._lux_state(now))
        for lum, level in mine:
            held = self.boosts.get(lum.id)
            # a late or repeated copy never extends a hold: it ends with the detection's own
            if held is None or held.until_ms < until or held.level < level:
                self.boosts[lum.id] = Boost(
                    max(level, held.level if held else 0), max(until, held.until_ms if held else 0)
                )
            if lit:
                self._first.add(lum.id)
        if not lit:
            return "not_lit"
        self._changed.set()
        return None

    def end_presence_holds(self) -> None:
        """End every presence hold now (the corridors fade back to the schedule)."""
        self.boosts.clear()
        self._changed.set()

    def on_presence_event(self, event: Event, *, read_at: float | None = None) -> None:
        """A ``presence`` event from a field bus (DALI Part 303 occupancy or a Modbus presence
        sensor): boost its corridor at once. Records ``boosted`` in the event's detail.

        Every event of a configured sensor — occupied, vacant, a Part 303 repeat (the sensor's
        report timer) — is a sign of life for :meth:`zone_flow`: a DALI sensor that died
        silently sends nothing, and its zero must read as unknown, not as an empty street."""
        if event.source in self.sensors:
            self._sensor_seen[event.source] = self.clock()
        people = event.detail.get("people", 1)
        if isinstance(people, bool) or not isinstance(people, int):
            people = 1  # from outside: a bad count is one detection, never a stop
        if event.detail.get("repeat") is True:
            people = 0  # a Part 303 repeat: the same person still there, not one more
        if event.detail.get("occupied", True) is False:
            if "people" in event.detail:  # counted, but gone by the poll: traffic, no boost
                self.count(event.source, self.clock(), people)
            return
        # the runner's clock, not the event's stamp: one time for every decision
        event.detail["boosted"] = self.on_presence(
            event.source, self.clock(), read_at=read_at, people=people
        )
        sensor = self.sensors.get(event.source)
        if sensor is not None:
            # where it was seen: neighbouring gateways light their part of the corridor
            event.detail["zone"] = sensor.zone
            event.detail["position_m"] = sensor.position_m

    def count(self, sensor_key: str, now_ms: int, people: int = 1) -> None:
        """Count ``people`` passing sensor ``sensor_key`` at ``now_ms`` (the traffic flow)."""
        if sensor_key not in self.sensors:
            return
        self._sensor_seen[sensor_key] = now_ms
        if people > 0:
            self.counts.setdefault(sensor_key, deque(maxlen=100_000)).append(
                (now_ms, min(people, MAX_PEOPLE_PER_EVENT))
            )

    def on_sensor_reading(self, device: str, ts_ms: int) -> None:
        """A Modbus presence sensor answered a poll (occupied or not): its count is live."""
        if device in self.sensors:
            self._sensor_seen[device] = self.clock()

    def zone_flow(self, zone: str, window_ms: int, now_ms: int) -> float | None:
        """People per hour past the zone's busiest live presence sensor over the last
        ``window_ms``; ``None`` (unknown, not zero) without a sensor in the zone, before a whole
        window has been counted, or when no sensor of the zone is known alive in the window.

        Alive means a sign of life in the window ``(now − window, now]``, the one the counts
        are taken from: a Modbus sensor that answered a poll, any event of a DALI Part 303
        sensor (its periodic reports while vacant included). A silent sensor's zero is left
        out; the zone still counts when another live sensor of it does."""
        if now_ms - self.counting_since < window_ms:
            return None
        since = now_ms - window_ms
        counts: list[int] = []
        for key, sensor in self.sensors.items():
            if sensor.zone != zone:
                continue
            if self._sensor_seen.get(key, since) <= since:
                continue  # silent for the window (no poll answered, no event): unknown
            q = self.counts.get(key)
            while q and q[0][0] <= since:
                q.popleft()
            counts.append(sum(n for _, n in q) if q else 0)
        return flow_per_h(max(counts), window_ms) if counts else None

    def _adapt(self, program: Program | None, now_ms: int) -> None:
        steps: dict[str, int] = {}
        for rule in program.adaptive if program is not None else []:
            flow = self.zone_flow(rule.zone, rule.window_ms, now_ms)
            thresholds = [(t.below_per_h, t.step) for t in rule.thresholds]
            was = self.adaptive_steps.get(rule.zone, 0)
            now = next_steps(thresholds, flow, was, rule.hysteresis_percent)
            if now != was:
                shown = "unknown" if flow is None else f"{flow:.0f}/h"
                log.info("%s: zone %s: traffic %s, %d class step(s) down (was %d)",
                         self.gateway, rule.zone, shown, now, was)  # fmt: skip
            if now:
                steps[rule.zone] = now
        self.adaptive_steps = steps

    def on_lux(self, device: str, lux: float, ts_ms: int) -> None:
        """A lux sensor reading: when the program switches by this sensor, update the on/off
        state with the program's hysteresis (:func:`lykta.strategy.lux_switch`)."""
        program = self.program
        if program is None or program.lux is None or program.lux.sensor != device:
            return
        h = LuxHysteresis(program.lux.on_below_lx, program.lux.off_above_lx)
        was = self.lux_lit if self.lux_lit is not None else True
        state = lux_switch(was, lux, h)
        self._lux_at = ts_ms
        if state != self.lux_lit:
            self.lux_lit = state
            self._changed.set()

    def _lux_state(self, now_ms: int) -> bool | None:
        if self._lux_at is None or now_ms - self._lux_at > LUX_STALE_MS:
            return None  # unknown is not dark or light: the lit windows decide
        return self.lux_lit

    # -- the loop ----------------------------------------------------------------------------

    def fail_safe(self, now_ms: int) -> int:
        """The fail-safe level now, by the gateway's own astronomical clock."""
        at = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC)
        return safe_default_level(
            self.latitude,
            self.longitude,
            at,
            level=self.fail_safe_level,
            sun_elevation_deg=self.sun_elevation_deg,
        )

    def wanted(self, now_ms: int) -> dict[str, Wanted]:
        """What every luminaire should do at ``now_ms`` (pure given the runner's state)."""
        program = self.program if self.program and program_valid(self.program, now_ms) else None
        return wanted_levels(
            program,
            now_ms,
            list(self.luminaires),
            fail_safe_level=self.fail_safe(now_ms),
            overrides=list(self.overrides.values()),
            boosts=self.boosts,
            lux_lit=self._lux_state(now_ms),
            previous=self.sources,
            adaptive_steps=self.adaptive_steps,
            commanded=self.commanded,
        )

    async def step(self) -> int:
        """Compute every level now and send what the gear does not have; returns frames sent.

        Stops between two frames when something new arrives (a presence event first of all);
        the caller steps again at once and what was not sent is sent then."""
        self._changed.clear()
        now = self.clock()
        self._expire(now)
        program = self.program if self.program and program_valid(self.program, now) else None
        self.mode = "program" if program is not None else "fail-safe"
        self._adapt(program, now)
        wanted = self.wanted(now)
        first, self._first = self._first, set()
        reads, self._pending_reads = self._pending_reads, []
        by_bus: dict[str, dict[str, GearTarget]] = {}
        for lum, w in wanted.items():
            by_bus.setdefault(self.luminaires[lum], {})[lum] = GearTarget(
                w.level, w.fade_ms, w.rest_fade_ms
            )
        # the buses with a presence reaction first
        order = sorted(by_bus, key=lambda bus: not (first & by_bus[bus].keys()))
        sent = 0
        for bus in order:
            driver = self.drivers[bus]
            targets = by_bus[bus]
            sent += await driver.apply(
                targets, first=first & targets.keys(), interrupted=self._changed.is_set
            )
            if reads and driver.first_frame_at is not None:
                for read_at in reads:
                    self.presence_latencies_ms.append((driver.first_frame_at - read_at) * 1000)
                reads = []
            for lum, t in targets.items():
                level = driver.commanded_level(lum)
                if level is not None:
                    self.commanded[lum] = level
                    if level == t.level:
                        self.sources[lum] = wanted[lum].source
            if self._changed.is_set():
                left = first - {x for x in first if self.commanded.get(x) == wanted[x].level}
                self._first |= left
                if left:
                    # interrupted before the corridor's first frame: the next step times it
                    # (a detection whose corridor was lit already sent nothing: no time)
                    self._pending_reads[:0] = reads
                break
        self.frames_sent += sent
        self.steps += 1
        self.last_step_at = time.monotonic()
        return sent

    def _expire(self, now: int) -> None:
        expired = [k for k, v in self.overrides.items() if v.until_ms <= now]
        for ov_id in expired:
            del self.overrides[ov_id]
            self.emit(
                Event(
                    ts=now,
                    kind=EventKind.OVERRIDE_ENDED,
                    source=self.gateway,
                    detail={"id": ov_id, "reason": "expired"},
                )
            )
        if expired:
            self._save_overrides()
        for lum in [k for k, b in self.boosts.items() if b.until_ms <= now]:
            del self.boosts[lum]
        p = self.program
        if p is not None and p.valid_until <= now and self._expired_reported != p.version:
            self._expired_reported = p.version
            log.warning("%s: program %s expired; running the fail-safe", self.gateway, p.version)
            self.emit(
                Event(
                    ts=now,
                    kind=EventKind.PROGRAM_EXPIRED,
                    source=self.gateway,
                    detail={"version": p.version, "valid_until": p.valid_until},
                )
            )

    def next_due_ms(self, now_ms: int) -> int | None:
        """The next instant something changes by itself (a switch point, a lit window edge,
        the program's end, a boost's or an override's expiry); None if nothing is known."""
        due: list[int] = [b.until_ms for b in self.boosts.values()]
        due += [ov.until_ms for ov in self.overrides.values()]
        p = self.program
        if p is not None and program_valid(p, now_ms):
            due.append(p.valid_until)
            due += [t for t in _change_instants(p) if t > now_ms][:1]
            for rule in p.adaptive:  # a detection leaving the window may step the zone down
                w = rule.window_ms
                for key, sensor in self.sensors.items():
                    if sensor.zone != rule.zone:
                        continue
                    q = self.counts.get(key)
                    if q:
                        due += [t + w + 1 for t, _ in q if t + w >= now_ms][:1]
                    seen = self._sensor_seen.get(key)  # a sensor falling silent: unknown
                    if seen is not None and seen + w >= now_ms:
                        due.append(seen + w + 1)
            if p.adaptive:
                due.append(self.counting_since + max(r.window_ms for r in p.adaptive) + 1)
        later = [t for t in due if t > now_ms]
        return min(later) if later else None

    async def run(self) -> None:
        """Step at every switch point and expiry, at least every ``tick_s``, and at once when
        a presence event, program, command or a level to heal changes things. A bus fault must
        not stop the executor: the next step retries (and the failing bus's gear keep their
        own fail-safe levels meanwhile)."""
        while True:
            try:
                await self.step()
            except (OSError, RuntimeError, TimeoutError, DALIError) as e:
                log.error("%s: applying levels failed: %s", self.gateway, e)
                self.last_step_at = time.monotonic()  # the loop itself is alive
            if self._changed.is_set():
                continue
            wait = self.tick_s
            now = self.clock()
            due = self.next_due_ms(now)
            if due is not None:
                wait = min(wait, max(0.0, (due - now) / 1000 / self.speed))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._changed.wait()


_instants: dict[int, tuple[Program, list[int]]] = {}


def _change_instants(p: Program) -> list[int]:
    """Every instant at which ``p`` changes a level by itself, sorted (cached per program)."""
    got = _instants.get(id(p))
    if got is not None and got[0] is p:
        return got[1]
    ts = {pt.ts for g in p.groups for pt in g.points}
    ts |= {pt.ts for lum in p.luminaires for pt in lum.points}
    ts |= {w.from_ts for w in p.lit} | {w.until_ts for w in p.lit}
    out = sorted(ts)
    _instants.clear()
    _instants[id(p)] = (p, out)
    return out


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` so that a crash leaves the old or the new content, never a torn file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def override_command_args(ov: ActiveOverride) -> dict:
    """The ``cmd`` args the gateway's ``override`` command takes (documentation by example)."""
    return {
        "id": ov.id,
        "luminaires": sorted(ov.luminaires),
        "level": ov.level,
        "until_ms": ov.until_ms,
        "mode": ov.mode,
    }
