"""Runs the control program on the street: accepts signed programs, executes them on the DALI
buses, reacts to presence, applies override commands, and falls back to the fail-safe.

The decisions are pure (:mod:`gateway.levels`, :mod:`lykta.strategy.execution`); this module
is the shell that feeds them the clock, the verified program and the bus events, and sends
only the level changes to the DALI drivers (which turn them into group frames).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.dali.driver import DaliLuminaireDriver
from gateway.levels import ActiveOverride, Boost, desired_levels
from lykta.clock import now_ms
from lykta.contract import Command, CommandResult, ContractError, Event, EventKind, decode
from lykta.contract.messages import CancelOverrideCommand, OverrideCommand
from lykta.contract.program import Program
from lykta.signing import PublicKeys, program_hash, trusted_keys, verify_program
from lykta.strategy import presence_corridor, program_valid, safe_default_level

log = logging.getLogger("lykta.gateway.program")

MAX_OVERRIDE_MS = 12 * 3600 * 1000  # an override never outlives half a day without renewal


@dataclass(frozen=True, slots=True)
class PresenceSensor:
    """Where an occupancy sensor (DALI Part 303 control device) stands on a zone's path."""

    bus: str
    short_address: int
    zone: str
    position_m: float


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
        self.sensors = {(s.bus, s.short_address): s for s in presence_sensors or []}
        self.emit = emit
        self.clock = clock
        self.tick_s = tick_s
        self.program: Program | None = None
        self.overrides: dict[str, ActiveOverride] = {}
        self.boosts: dict[str, Boost] = {}
        self.commanded: dict[str, int] = {}
        self.frames_sent = 0
        self.mode = "fail-safe"
        self._changed = asyncio.Event()
        self._load_saved_program()

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
        if self.program is not None and program.created_ts < self.program.created_ts:
            # a replayed old program (signed, but superseded) must not turn back the schedule
            return (f"older than the program in force (created {program.created_ts} < "
                    f"{self.program.created_ts})")  # fmt: skip
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
                    detail={"reason": reason, "version": program.version if program else None},
                )
            )
            return
        assert program is not None
        self.program = program
        (self.state_dir / "program.json").write_bytes(raw)
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

    # -- commands ----------------------------------------------------------------------------

    async def on_command(self, cmd: Command) -> CommandResult:
        """Execute an (unexpired) command: ``override`` / ``cancel_override``."""
        now = self.clock()
        if isinstance(cmd, OverrideCommand):
            try:
                ov = self._parse_override(cmd, now)
            except (KeyError, TypeError, ValueError) as e:
                return CommandResult(id=cmd.id, ts=now, ok=False, detail=f"bad override: {e}")
            self.overrides[ov.id] = ov
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

    # -- presence ----------------------------------------------------------------------------

    def on_presence(self, bus: str, short_address: int, now_ms: int) -> int:
        """A sensor saw someone: light the corridor ahead and behind. Returns luminaires boosted."""
        sensor = self.sensors.get((bus, short_address))
        if sensor is None or self.program is None or not program_valid(self.program, now_ms):
            return 0
        rule = next((r for r in self.program.presence if r.zone == sensor.zone), None)
        if rule is None:
            return 0
        corridor = presence_corridor(self.program, sensor.zone, sensor.position_m)
        for lum, level in corridor:
            self.boosts[lum.id] = Boost(level, now_ms + rule.hold_ms)
        self._changed.set()
        return len(corridor)

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

    async def step(self) -> int:
        """Compute every level now and send the changes; returns frames sent."""
        now = self.clock()
        self._expire(now)
        program = self.program if self.program and program_valid(self.program, now) else None
        self.mode = "program" if program is not None else "fail-safe"
        levels = desired_levels(
            program,
            now,
            list(self.luminaires),
            fail_safe_level=self.fail_safe(now),
            overrides=list(self.overrides.values()),
            boosts=self.boosts,
        )
        changes: dict[str, dict[str, int]] = {}
        for lum, level in levels.items():
            if self.commanded.get(lum) != level:
                changes.setdefault(self.luminaires[lum], {})[lum] = level
        sent = 0
        for bus, lv in changes.items():
            sent += await self.drivers[bus].set_levels(lv)
            self.commanded.update(lv)
        self.frames_sent += sent
        return sent

    def _expire(self, now: int) -> None:
        for ov_id in [k for k, v in self.overrides.items() if v.until_ms <= now]:
            del self.overrides[ov_id]
            self.emit(
                Event(
                    ts=now,
                    kind=EventKind.OVERRIDE_ENDED,
                    source=self.gateway,
                    detail={"id": ov_id, "reason": "expired"},
                )
            )
        for lum in [k for k, b in self.boosts.items() if b.until_ms <= now]:
            del self.boosts[lum]

    def on_presence_event(self, event: Event) -> None:
        """A ``presence`` event from a DALI bus (Part 303 occupancy): boost its corridor."""
        addr = event.detail.get("short_address")
        bus = event.detail.get("bus") or event.source.split("/", 1)[0]
        if isinstance(addr, int) and event.detail.get("occupied", True):
            event.detail["boosted"] = self.on_presence(bus, addr, event.ts)

    async def run(self) -> None:
        """Step every ``tick_s``, and at once when a program, command or presence changes
        things."""
        while True:
            try:
                await self.step()
            except Exception:  # a bus fault must not stop the executor; next tick retries
                log.exception("%s: applying levels failed", self.gateway)
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.tick_s):
                    await self._changed.wait()


def override_command_args(ov: ActiveOverride) -> dict:
    """The ``cmd`` args the gateway's ``override`` command takes (documentation by example)."""
    return {
        "id": ov.id,
        "luminaires": sorted(ov.luminaires),
        "level": ov.level,
        "until_ms": ov.until_ms,
        "mode": ov.mode,
    }
