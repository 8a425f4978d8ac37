"""The DALI luminaire driver: levels by group, states and D4i energy, within a bus-time budget.

The asyncio shell around the pure planner (:mod:`gateway.dali.planner`) and budget
(:mod:`gateway.dali.budget`), on any :class:`lykta.dali_bus.DaliBus` transport::

    driver = DaliLuminaireDriver(bus, [Luminaire("L01", 0, frozenset({1})), ...])
    await driver.set_levels({"L01": 200, "L02": 200})   # one group frame if they share group 1
    await driver.set_group_level(1, 254)                 # one frame
    await driver.apply({"L01": GearTarget(120, fade_ms=45_000, rest_fade_ms=1_000)})
    readings, events = await driver.read_states()        # LuminaireReading per luminaire
    asyncio.create_task(driver.run_energy_reads())       # D4i banks 202/205 in the background
    async for event in driver.presence_events(): ...     # Part 303 occupancy -> presence Event

Level commands are *urgent*: they go out before any waiting background frame. State queries and
D4i memory bank reads are *background*: sent one frame at a time and only while their bus time
stays within ``budget_share`` (default 50 %) of a sliding window, so a presence reaction waits
at most one frame (≤ 55.3 ms), never behind a bank read.

Fades are the gear's own: :meth:`DaliLuminaireDriver.apply` sets FADE TIME (or EXTENDED FADE
TIME) where it differs and sends one DAPC; the gear ramps by itself. Each state read also heals:
a gear found at another level than it was sent, or reporting a power cycle, is sent its level
again on the next ``apply``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

from dali.address import GearShort
from dali.command import Command, Response
from dali.device import general as device_general
from dali.device.helpers import DeviceInstanceTypeMapper
from dali.device.occupancy import OccupancyEvent
from dali.exceptions import ResponseError
from dali.gear import general as gear_general
from dali.gear.general import (
    DTR0,
    QueryActualLevel,
    QueryPowerOnLevel,
    QueryStatus,
    QuerySystemFailureLevel,
    SetPowerOnLevel,
    SetSystemFailureLevel,
)
from dali.memory import diagnostics, energy
from dali.memory.location import FlagValue, MemoryLocationNotImplemented

from gateway.dali.budget import BusTimeBudget
from gateway.dali.planner import (
    BusLayout,
    FadeSetting,
    LevelFrame,
    fade_setting,
    fade_setting_commands,
    plan_addresses,
    plan_levels,
)
from gateway.dali.timing import frame_bus_time
from lykta.contract import Event, EventKind, LuminaireReading
from lykta.dali_bus import DaliBus, send_command

log = logging.getLogger(__name__)

URGENT_PRIORITY = 2
BACKGROUND_PRIORITY = 5
URGENT_EXPECTED_S = 0.1
"""How long a presence reaction announced by :meth:`DaliLuminaireDriver.expect_urgent` keeps
new background frames off the bus at most (its frames normally follow within milliseconds)."""

NO_D4I_AFTER = 2
"""Rounds in which a gear answers QUERY STATUS but not its bank 202 before it is taken for
gear without D4i (and its bank no longer read)."""

# IEC 62386-102 status byte (QUERY STATUS)
STATUS_LAMP_FAILURE = 0x02
STATUS_LIMIT_ERROR = 0x08
STATUS_FADE_RUNNING = 0x10
STATUS_POWER_CYCLE_SEEN = 0x80
"""Set by the gear at power-on, cleared by the first arc power command or RESET."""


@dataclass(frozen=True, slots=True)
class Luminaire:
    """A luminaire on the bus: its id in readings/events, DALI short address and groups."""

    id: str
    short_address: int
    groups: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class GearTarget:
    """What one luminaire should do: go to ``level`` over ``fade_ms`` (None: at whatever fade
    time the gear has), then keep ``rest_fade_ms`` as its fade time (None: leave it)."""

    level: int
    fade_ms: int | None = None
    rest_fade_ms: int | None = None


@dataclass
class _Telemetry:
    # None until the gear's D4i bank 202 is read (and forever for gear without D4i): a reading
    # then carries no power/energy at all rather than a placeholder 0 (unknown is not zero).
    energy_wh: float | None = None
    power_w: float | None = None
    power_level: int | None = None  # the level power_w was measured at
    temperature_c: float | None = None
    d4i: bool = True
    banks_silent: int = 0  # rounds in which the gear answered but its bank 202 did not
    lamp_failure: bool = False
    reachable: bool = True


@dataclass
class DriverStats:
    """Frames and bus time per class since start."""

    urgent_frames: int = 0
    background_frames: int = 0
    level_frames_planned: int = 0
    max_urgent_wait_s: float = 0.0
    bank_reads: int = 0
    bank_read_failures: int = 0
    dtr0_restores: int = 0
    """Times a background sequence set DTR0 again because a fade setting overwrote it."""
    heals: int = 0
    """Luminaires found at another level than sent, or power-cycled: sent their level again."""
    fail_safe_levels_written: int = 0


@dataclass
class DaliLuminaireDriver:
    """Drives the luminaires of one DALI bus; see the module docstring."""

    bus: DaliBus
    luminaires: Sequence[Luminaire]
    budget_share: float = 0.5
    budget_window_s: float = 10.0
    wall_clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    stats: DriverStats = field(default_factory=DriverStats)
    on_heal: Callable[[], None] | None = None
    """Called when a state read finds a luminaire that needs its level again."""

    def __post_init__(self) -> None:
        addresses = [lum.short_address for lum in self.luminaires]
        if len(set(addresses)) != len(addresses):
            raise ValueError(f"DALI bus {self.bus.name}: two luminaires share a short address")
        groups: dict[int, set[int]] = {}
        for lum in self.luminaires:
            for g in lum.groups:
                groups.setdefault(g, set()).add(lum.short_address)
        self.layout = BusLayout.of(set(addresses), groups)
        self.budget = BusTimeBudget(self.budget_share, self.budget_window_s)
        self._by_id = {lum.id: lum for lum in self.luminaires}
        self._levels: dict[int, int | None] = {a: None for a in addresses}
        self._fade: dict[int, FadeSetting | None] = {a: None for a in addresses}
        # Background DTR users (memory bank reads, fail-safe levels) take turns; a fade
        # setting never waits for them: it bumps the epoch, and a background sequence whose
        # next frame would use DTR0 set before the bump first sets it again (_run_sequence).
        self._dtr_lock = asyncio.Lock()
        self._dtr_epoch = 0
        # DTR0 is one register for the whole bus: two fade settings sent at once (two applies)
        # must not interleave, or one gear's SET FADE TIME takes the other's DTR0
        self._fade_lock = asyncio.Lock()
        self.wire_at = 0.0
        self.first_frame_at: float | None = None
        """When the first frame for ``apply(first=...)`` went on the wire (monotonic)."""
        self._telemetry = {lum.id: _Telemetry() for lum in self.luminaires}
        self._lock = asyncio.Lock()
        self._urgent_pending = 0
        self._no_urgent = asyncio.Event()
        self._no_urgent.set()
        self._expected_until = 0.0
        self._no_expected = asyncio.Event()
        self._no_expected.set()
        self.instance_types = DeviceInstanceTypeMapper()

    # -- sending -----------------------------------------------------------------------

    async def send(
        self, command: Command, *, background: bool = False, dtr_epoch: int | None = None
    ) -> Response | None:
        """Send one python-dali command as urgent or background work (see module docstring).

        ``dtr_epoch`` (background only): the frame uses DTR0 as set at that epoch; if a fade
        setting has bumped the epoch since, the frame is not sent and :class:`DtrOverwritten`
        is raised instead (checked with the bus held, just before the frame goes)."""
        cost = frame_bus_time(
            len(command.frame), is_query=command.response is not None, send_twice=command.sendtwice
        )
        if background:
            while True:
                await self._no_urgent.wait()
                hold = self._expected_until - self.monotonic()
                if hold > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(hold):
                            await self._no_expected.wait()
                    self._expected_until = 0.0
                    continue
                wait = self.budget.background_wait(self.monotonic(), cost)
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                async with self._lock:
                    if self._urgent_pending:
                        continue  # an urgent frame arrived meanwhile: it goes first
                    if dtr_epoch is not None and dtr_epoch != self._dtr_epoch:
                        raise DtrOverwritten
                    self.wire_at = self.monotonic()
                    response = await send_command(self.bus, command, priority=BACKGROUND_PRIORITY)
                    self.budget.spend(self.monotonic(), cost, background=True)
                    self.stats.background_frames += 1
                    return response
        self._urgent_pending += 1
        self._no_urgent.clear()
        t0 = self.monotonic()
        try:
            async with self._lock:
                self.wire_at = self.monotonic()
                self.stats.max_urgent_wait_s = max(self.stats.max_urgent_wait_s, self.wire_at - t0)
                response = await send_command(self.bus, command, priority=URGENT_PRIORITY)
                self.budget.spend(self.monotonic(), cost, background=False)
                self.stats.urgent_frames += 1
                return response
        finally:
            self._urgent_pending -= 1
            if not self._urgent_pending:
                self._no_urgent.set()

    def expect_urgent(self, within_s: float = URGENT_EXPECTED_S) -> None:
        """A presence reaction is coming (its event was just read): from now on no new
        background frame starts until the next :meth:`apply` has sent its frames, or for
        ``within_s`` at most. Without this, a state query could take the bus in the few
        milliseconds the executor needs to compute the corridor, and the corridor would wait
        for that query's whole wire time (40.7 ms)."""
        self._expected_until = self.monotonic() + within_s
        self._no_expected.clear()

    def _expected_done(self) -> None:
        self._expected_until = 0.0
        self._no_expected.set()

    async def run_sequence(
        self, sequence: Generator[Any, Any, Any], *, background: bool = True
    ) -> Any:
        """Run a python-dali sequence (e.g. a memory value read) frame by frame, one such
        sequence at a time. A fade setting may overwrite DTR0 meanwhile (it never waits for
        a background read): then DTR0 is set again to where the sequence had it before the
        next frame that uses it, so a value is never read from, nor written to, the wrong
        place, and an interrupted read resumes rather than starting over."""
        async with self._dtr_lock:  # DTR0/DTR1 point into the memory bank meanwhile
            return await self._run_sequence(sequence, background=background)

    async def read_value(self, value_class: Any, address: GearShort) -> Any:
        """Read a python-dali memory value (e.g. ``energy.ActiveEnergy``) as background work;
        raises what python-dali raises for the gear's own answer (not implemented, framing
        error)."""
        return await self.run_sequence(value_class.read(address))

    async def _run_sequence(self, sequence: Generator[Any, Any, Any], *, background: bool) -> Any:
        response = None
        dtr0: int | None = None  # what this sequence last put into DTR0, as the gear counts
        dtr0_type: type[Command] = DTR0
        epoch = self._dtr_epoch  # ... as of this epoch
        while True:
            try:
                item = sequence.send(response)
            except StopIteration as done:
                return done.value
            if not isinstance(item, Command):
                response = None
                continue
            if isinstance(item, _DTR0_COMMANDS):
                epoch, dtr0, dtr0_type = self._dtr_epoch, item.param, type(item)
                response = await self.send(item, background=background)
                continue
            guarded = background and dtr0 is not None and item.uses_dtr0
            while True:
                try:
                    response = await self.send(
                        item, background=background, dtr_epoch=epoch if guarded else None
                    )
                    break
                except DtrOverwritten:
                    assert dtr0 is not None
                    epoch = self._dtr_epoch
                    self.stats.dtr0_restores += 1
                    await self.send(dtr0_type(dtr0), background=background)
            if dtr0 is not None and isinstance(item, _DTR0_INCREMENTING):
                dtr0 = min(dtr0 + 1, 255)  # the gear steps DTR0 after each location

    # -- levels ------------------------------------------------------------------------

    def _short(self, luminaire_id: str) -> int:
        try:
            return self._by_id[luminaire_id].short_address
        except KeyError:
            raise KeyError(f"DALI bus {self.bus.name}: no luminaire {luminaire_id!r}") from None

    async def apply(
        self,
        targets: Mapping[str, GearTarget],
        *,
        first: Set[str] = frozenset(),
        interrupted: Callable[[], bool] | None = None,
    ) -> int:
        """Take luminaires (id -> :class:`GearTarget`) to their levels, the gear fading by
        itself; returns frames sent.

        Per target: the gear's fade time is set (only where it differs) and one DAPC per
        (group, level) — or per gear where a group's members disagree — starts the fade; then
        the gear's *rest* fade time is restored, so the next presence boost is one DAPC.
        Luminaires in ``first`` go before all others. ``interrupted`` is asked between units
        (a fade setting or one DAPC); when it says True, the rest is left for the next call
        (what was sent is remembered, what was not is sent then).
        """
        try:
            return await self._apply(targets, first, interrupted)
        finally:
            if not self._no_expected.is_set() and not (interrupted and interrupted()):
                self._expected_done()  # the reaction's frames are out (or nothing differed)

    async def _apply(
        self,
        targets: Mapping[str, GearTarget],
        first: Set[str],
        interrupted: Callable[[], bool] | None,
    ) -> int:
        by_addr = {self._short(lum_id): t for lum_id, t in targets.items()}
        first_addrs = {self._short(x) for x in first if x in targets}
        changed = {a for a, t in by_addr.items() if self._levels.get(a) != t.level}
        sent = 0
        self.first_frame_at = None
        for batch in (changed & first_addrs, changed - first_addrs):
            if not batch:
                continue
            fades = {
                a: fade_setting(fade) for a in batch if (fade := by_addr[a].fade_ms) is not None
            }
            units: list[tuple[FadeSetting | None, LevelFrame | None, int | None, int | None]] = [
                (setting, None, g, short)
                for setting, g, short in plan_addresses(self.layout, self._fade, fades)
            ]
            levels = {a: by_addr[a].level for a in batch}
            # a group frame may only reach gear of this batch; the others keep their turn
            frames = plan_levels(self._layout_of(batch), self._levels, levels)
            self.stats.level_frames_planned += len(frames)
            units += [(None, f, None, None) for f in frames]
            for setting, frame, g, short in units:
                if interrupted is not None and interrupted():
                    return sent
                if setting is not None:
                    sent += await self._set_fade(setting, g, short)
                else:
                    assert frame is not None
                    await self.send(frame.command())
                    sent += 1
                    self._levels.update(
                        dict.fromkeys(self._reached(frame) & levels.keys(), frame.level)
                    )
                if self.first_frame_at is None and batch & first_addrs:
                    self.first_frame_at = self.wire_at
        rest = {
            a: fade_setting(fade)
            for a, t in by_addr.items()
            if (fade := t.rest_fade_ms) is not None
        }
        for setting, g, short in plan_addresses(self.layout, self._fade, rest):
            if interrupted is not None and interrupted():
                return sent
            sent += await self._set_fade(setting, g, short)  # readies the gear for the next person
        return sent

    def _layout_of(self, addresses: Set[int]) -> BusLayout:
        return BusLayout(
            self.layout.short_addresses,
            {g: m for g, m in self.layout.groups.items() if m <= addresses},
        )

    def _reached(self, f: LevelFrame) -> frozenset[int]:
        if f.group is not None:
            return self.layout.groups[f.group]
        if f.short_address is not None:
            return frozenset({f.short_address})
        return self.layout.short_addresses

    async def _set_fade(self, setting: FadeSetting, group: int | None, short: int | None) -> int:
        """Send one fade setting unit (DTR0 + SET FADE TIME ...) as urgent work: it never
        waits for a background DTR0 user; that one sets its DTR0 again (see
        :meth:`run_sequence`)."""
        commands = fade_setting_commands(setting, group=group, short_address=short)
        self._dtr_epoch += 1  # before any of these frames can reach the wire
        # one unit: no background frame (a DTR0 of its own) may slip in between these frames
        self._urgent_pending += 1
        self._no_urgent.clear()
        try:
            async with self._fade_lock:
                for command in commands:
                    await self.send(command)
        finally:
            self._urgent_pending -= 1
            if not self._urgent_pending:
                self._no_urgent.set()
        if group is not None:
            reached: frozenset[int] = self.layout.groups[group]
        elif short is not None:
            reached = frozenset({short})
        else:
            reached = self.layout.short_addresses
        self._fade.update(dict.fromkeys(reached, setting))
        return len(commands)

    async def set_levels(self, levels: Mapping[str, int]) -> int:
        """Take luminaires (id -> arc level 0–254) to their levels with the fewest frames
        (group and broadcast DAPC where members share a level), at the gear's present fade
        time. Returns frames sent."""
        return await self.apply({lum_id: GearTarget(level) for lum_id, level in levels.items()})

    async def set_group_level(self, group: int, level: int) -> int:
        """Take every member of DALI ``group`` to ``level`` (one frame unless all are there)."""
        members = self.layout.groups.get(group)
        if not members:
            raise KeyError(f"DALI bus {self.bus.name}: group {group} has no luminaires")
        ids = [lum.id for lum in self.luminaires if lum.short_address in members]
        return await self.apply({x: GearTarget(level) for x in ids})

    def commanded_level(self, luminaire_id: str) -> int | None:
        """The level last sent to a luminaire (None: unknown, it will be sent again)."""
        return self._levels.get(self._short(luminaire_id))

    async def program_fail_safe_levels(self, level: int) -> int:
        """Make every gear's POWER ON LEVEL and SYSTEM FAILURE LEVEL ``level`` (background
        work; only where the gear holds another value). Then a luminaire whose gateway is dead,
        whose bus is cut or whose cabinet contactor just switched on still lights the street
        (DALI's own fail-safe). Returns the number of values written."""
        written = 0
        for lum in self.luminaires:
            address = GearShort(lum.short_address)
            for query, setter in (
                (QueryPowerOnLevel, SetPowerOnLevel),
                (QuerySystemFailureLevel, SetSystemFailureLevel),
            ):
                reachable = self._telemetry[lum.id].reachable
                written += await self.run_sequence(
                    _store_level(address, query, setter, level, reachable)
                )
        self.stats.fail_safe_levels_written += written
        return written

    # -- states and D4i ----------------------------------------------------------------

    async def read_states(self) -> tuple[list[LuminaireReading], list[Event]]:
        """Query level and status of every luminaire (background work); return readings and
        the lamp-failure / communication events since the last call."""
        readings: list[LuminaireReading] = []
        events: list[Event] = []
        for lum in self.luminaires:
            tel = self._telemetry[lum.id]
            address = GearShort(lum.short_address)
            status = await self.send(QueryStatus(address), background=True)
            level = await self.send(QueryActualLevel(address), background=True)
            ts = int(self.wall_clock() * 1000)
            raw = status.raw_value if status is not None else None
            answered = raw is not None and not raw.error
            if answered != tel.reachable:
                tel.reachable = answered
                events.append(
                    Event(
                        ts=ts,
                        kind=EventKind.DALI_COMM_OK if answered else EventKind.DALI_COMM_LOSS,
                        source=lum.id,
                        detail={"bus": self.bus.name, "short_address": lum.short_address},
                    )
                )
            if not answered or raw is None:
                continue
            status_byte = raw.as_integer
            failed = bool(status_byte & 0x02)
            if failed != tel.lamp_failure:
                tel.lamp_failure = failed
                events.append(
                    Event(
                        ts=ts,
                        kind=EventKind.LAMP_FAILURE if failed else EventKind.LAMP_OK,
                        source=lum.id,
                        detail={
                            "bus": self.bus.name,
                            "short_address": lum.short_address,
                            "status": status_byte,
                        },
                    )
                )
            raw_level = (
                level.raw_value.as_integer
                if level is not None and level.raw_value is not None and not level.raw_value.error
                else 0
            )
            level_now = raw_level if raw_level <= 254 else 0
            # power read at another level says nothing about the power now (a dimming step
            # since the last bank read): leave it out rather than pair it with the new level
            power = tel.power_w if tel.power_level == level_now else None
            self._reconcile(lum, status_byte, raw_level)
            readings.append(
                LuminaireReading(
                    id=lum.id,
                    ts=ts,
                    level=level_now,
                    power_w=None if power is None else max(0.0, power),
                    energy_wh=None if tel.energy_wh is None else max(0.0, tel.energy_wh),
                    status=status_byte,
                    temperature_c=tel.temperature_c,
                )
            )
        return readings, events

    def _reconcile(self, lum: Luminaire, status: int, actual: int) -> None:
        """Levels that heal: forget the level sent to a gear that is not at it (and not
        fading, not limited, lamp working) or that saw a power cycle since; the next
        :meth:`apply` sends it again. A cabinet contactor switching on, gear replaced, or
        someone else's command on the bus are all repaired within one read of the states."""
        a = lum.short_address
        sent = self._levels.get(a)
        if sent is None:
            return
        power_cycled = bool(status & STATUS_POWER_CYCLE_SEEN)
        settled = not status & (STATUS_FADE_RUNNING | STATUS_LIMIT_ERROR | STATUS_LAMP_FAILURE)
        if power_cycled or (settled and actual <= 254 and actual != sent):
            log.info(
                "%s %s: at %d, sent %d%s: sending it again",
                self.bus.name,
                lum.id,
                actual,
                sent,
                " (power cycle seen)" if power_cycled else "",
            )
            self._levels[a] = None
            self.stats.heals += 1
            if self.on_heal is not None:
                self.on_heal()

    async def read_energy(self, luminaire_id: str) -> bool:
        """Read D4i bank 202 (active energy, power) and the gear temperature (bank 205) of one
        luminaire as background work; False if it has no D4i banks or the read failed."""
        tel = self._telemetry[luminaire_id]
        if not tel.d4i:
            return False
        address = GearShort(self._short(luminaire_id))
        self.stats.bank_reads += 1
        try:
            wh = await self.read_value(energy.ActiveEnergy, address)
            before = await self._actual_level(address)
            w = await self.read_value(energy.ActivePower, address)
            after = await self._actual_level(address)
            temp = await self.read_value(diagnostics.ControlGearTemperature, address)
        except MemoryLocationNotImplemented:
            # No answer from the bank: a gear without D4i, or a gear not answering at all
            # right now (mains off, a lost frame). Only a gear that answers while its bank
            # stays silent, twice, is taken for plain DALI; otherwise the next round reads it.
            status = await self.send(QueryStatus(address), background=True)
            answered = status is not None and status.raw_value is not None
            tel.banks_silent = tel.banks_silent + 1 if answered else 0
            if tel.banks_silent >= NO_D4I_AFTER:
                log.info("%s %s: no D4i energy bank; not read again", self.bus.name, luminaire_id)
                tel.d4i = False
            return False
        except ResponseError as exc:
            self.stats.bank_read_failures += 1
            log.warning("%s %s: D4i bank read failed: %s", self.bus.name, luminaire_id, exc)
            return False
        tel.banks_silent = 0
        if not isinstance(wh, FlagValue):
            tel.energy_wh = float(wh)
        if not isinstance(w, FlagValue):
            tel.power_w = float(w)
            # the level this power belongs to: the actual level just before and just after
            # the read (two queries, ~82 ms of bus time next to ~0.8 s for the banks). A fade
            # that moved the level meanwhile leaves the power at no known level: it is then
            # not reported until the next read (an energy anomaly judged on a power measured
            # halfway through a fade would be a false alarm)
            tel.power_level = before if before == after else None
        if not isinstance(temp, FlagValue):
            tel.temperature_c = float(temp)
        return True

    async def _actual_level(self, address: GearShort) -> int | None:
        """QUERY ACTUAL LEVEL as background work; None without a valid answer."""
        return _answer(await self.send(QueryActualLevel(address), background=True))

    DIAGNOSTICS = {
        "gear_operating_time_s": diagnostics.ControlGearOperatingTime,
        "gear_starts": diagnostics.ControlGearStartCounter,
        "gear_temperature_c": diagnostics.ControlGearTemperature,
        "lamp_on_time_s": diagnostics.LightSourceOnTime,
        "lamp_starts": diagnostics.LightSourceStartCounter,
        "lamp_failures": diagnostics.LightSourceOverallFailureConditionCounter,
        "lamp_temperature_c": diagnostics.LightSourceTemperature,
    }
    """D4i diagnostics (DiiA Part 253, banks 205 and 206) read by :meth:`read_diagnostics`."""

    async def read_diagnostics(self, luminaire_id: str) -> dict[str, float]:
        """Read the D4i diagnostics (operating time, starts, failures, temperatures; banks
        205/206) of one luminaire as background work. Values the gear does not implement or
        cannot give right now (MASK/TMASK) are left out."""
        address = GearShort(self._short(luminaire_id))
        values: dict[str, float] = {}
        for name, value_class in self.DIAGNOSTICS.items():
            try:
                value = await self.read_value(value_class, address)
            except (MemoryLocationNotImplemented, ResponseError) as exc:
                log.info("%s %s: %s not read: %s", self.bus.name, luminaire_id, name, exc)
                continue
            if not isinstance(value, FlagValue):
                values[name] = float(value)
        return values

    async def run_energy_reads(self, interval_s: float = 60.0) -> None:
        """Read every luminaire's D4i banks in turn, forever, one round per ``interval_s``
        at most (each frame within the bus-time budget)."""
        while True:
            started = self.monotonic()
            for lum in self.luminaires:
                await self.read_energy(lum.id)
            await asyncio.sleep(max(0.0, interval_s - (self.monotonic() - started)))

    # -- events ------------------------------------------------------------------------

    async def presence_events(self) -> AsyncIterator[Event]:
        """Occupancy sensor events (IEC 62386-303) from the bus as ``presence`` events, for
        transports that deliver bus events."""
        async for frame in self.bus.bus_events():
            cmd = Command.from_frame(frame, dev_inst_map=self.instance_types)
            if not isinstance(cmd, OccupancyEvent):
                continue
            sensor = cmd.short_address.address if cmd.short_address is not None else None
            yield Event(
                ts=int(self.wall_clock() * 1000),
                kind=EventKind.PRESENCE,
                source=f"{self.bus.name}/sensor-{sensor}",
                detail={
                    "occupied": cmd.occupied,
                    "movement": cmd.movement,
                    "repeat": cmd.repeat,
                    "short_address": sensor,
                },
            )


def _answer(response: Response | None) -> int | None:
    """A query's answer as a number; None for no answer or a framing error."""
    raw = response.raw_value if response is not None else None
    return raw.as_integer if raw is not None and not raw.error else None


class DtrOverwritten(Exception):
    """A background frame would have used a DTR0 that a fade setting overwrote."""


_DTR0_COMMANDS = (gear_general.DTR0, device_general.DTR0)
_DTR0_INCREMENTING = (
    gear_general.ReadMemoryLocation,
    gear_general.WriteMemoryLocation,
    gear_general.WriteMemoryLocationNoReply,
    device_general.ReadMemoryLocation,
    device_general.WriteMemoryLocation,
    device_general.WriteMemoryLocationNoReply,
)
"""Commands after which the gear (or device) steps DTR0 to the next memory location."""


def _store_level(
    address: GearShort, query: type[Command], setter: type[Command], level: int, reachable: bool
) -> Generator[Command, Response | None, int]:
    """A python-dali style sequence: make the gear's level setting (POWER ON LEVEL, SYSTEM
    FAILURE LEVEL) ``level`` if it holds another; returns 1 if it was written."""
    value = _answer((yield query(address)))
    if value == level or (value is None and not reachable):
        return 0  # there already, or not answering: the next round tries again
    yield DTR0(level)
    yield setter(address)
    return 1
