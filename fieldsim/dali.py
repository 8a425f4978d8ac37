"""A simulated DALI bus of control gear that answers real forward frames.

:class:`SimulatedDaliBus` is pure and synchronous: feed it a forward frame with
:meth:`SimulatedDaliBus.process` and it returns what the bus would answer (a backward frame,
no answer, or a collision). Time comes only from the injected clock ``now``, so tests can step
through fades and hours of energy integration instantly. The firmware-bridge board emulator
puts this behind a serial line; :class:`SimulatedDaliTransport` wraps it as an asyncio
:class:`lykta.dali_bus.DaliBus` for the gateway, the demo and the tests, optionally taking the
real wire time of every frame.

Each :class:`SimulatedGear` builds on python-dali's fake gear (``dali.tests.fakes.Gear``: short
and random addresses, groups, scenes, addressing sequences, memory banks) and adds what a street
luminaire needs: arc level with fade (IEC 62386-102 fade time), the logarithmic dimming curve for
power, the status byte, an injectable lamp failure, and D4i memory banks 202 (active energy and
power; energy integrates power over the injected time), 205 and 206 (diagnostics).

Example::

    bus = SimulatedDaliBus(8, groups={0: [0, 1, 2, 3]}, now=clock)
    bus.process(DAPC(GearGroup(0), 200).frame)       # group 0 fades to level 200
    bus.process(QueryActualLevel(GearShort(1)).frame)  # -> Backward(value=...)
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from dali.command import Command
from dali.device.occupancy import OccupancyEvent
from dali.frame import ForwardFrame, Frame
from dali.gear.general import (
    DAPC,
    EnableDeviceType,
    GoToScene,
    Off,
    QueryActualLevel,
    QueryControlGearFailure,
    QueryExtendedFadeTime,
    QueryFadeTimeFadeRate,
    QueryLampFailure,
    QueryLampPowerOn,
    QueryPowerOnLevel,
    QueryStatus,
    QuerySystemFailureLevel,
    RecallMaxLevel,
    RecallMinLevel,
    SetExtendedFadeTime,
    SetFadeTime,
    SetPowerOnLevel,
    SetSystemFailureLevel,
)
from dali.memory import diagnostics, energy
from dali.memory.location import MemoryValue
from dali.tests import fakes

from fieldsim.dali_devices import ControlDeviceSpec, SimulatedControlDevice, fill_luminaire_info
from gateway.dali.timing import SEND_TWICE_WINDOW_S, frame_bus_time
from lykta.dali_bus import MAX_GEAR_PER_BUS, Backward, Collision, DaliReply, NoAnswer
from lykta.strategy.dali_curve import FADE_TIMES_S, arc_level_to_percent

__all__ = [
    "GearSpec",
    "SimulatedDaliBus",
    "SimulatedDaliTransport",
    "SimulatedGear",
]

_YES = 0xFF
_MASK = 0xFF
STANDBY_POWER_W = 0.5
"""What an LED driver draws with the lamp off (DALI interface and standby supply)."""


@dataclass(frozen=True, slots=True)
class GearSpec:
    """One simulated control gear: its addresses, groups and rated power."""

    short_address: int | None
    groups: frozenset[int] = frozenset()
    rated_power_w: float = 40.0
    random_address: int | None = None
    fade_time: int = 0
    power_on_level: int = 254
    system_failure_level: int = 254
    d4i: bool = True
    """D4i memory banks 202 (energy), 205 and 206 (diagnostics); False: plain DALI gear."""


def _put(contents: list[int | None], value_class: type[MemoryValue], raw: int) -> None:
    """Write ``raw`` big-endian into the bank locations ``value_class`` occupies."""
    locations = value_class.locations
    if not isinstance(locations, tuple):
        locations = (locations,)
    n = len(locations)
    raw = max(0, min(raw, 256**n - 1))
    for loc, byte in zip(locations, raw.to_bytes(n, "big"), strict=True):
        contents[loc.address] = byte


class _LiveBank(fakes.FakeMemoryBank):
    """A memory bank whose contents are refreshed from the gear when a value starts being read
    (the first location of a value), so one multi-byte value is a consistent snapshot."""

    refresh_at: frozenset[int] = frozenset()

    def __init__(self, gear: SimulatedGear) -> None:
        super().__init__()
        self.gear = gear

    def fill(self) -> None:
        """Copy the gear's current figures into the bank contents."""

    def read(self, address: int) -> int | None:
        if address in self.refresh_at or address == 0x02:
            self.gear.advance()
            self.fill()
        return super().read(address)


class _EnergyBank202(_LiveBank):
    """D4i / DiiA Part 252 bank 202: active energy (0.1 Wh) and active power (0.1 W)."""

    bank = energy.BANK_202
    refresh_at = frozenset({0x04, 0x0B})

    def fill(self) -> None:
        self.contents[0x04] = 0xFF  # scale 10^-1
        for addr, byte in zip(range(0x05, 0x0B), round(self.gear.energy_wh * 10).to_bytes(6, "big"),
                              strict=True):
            self.contents[addr] = byte
        self.contents[0x0B] = 0xFF
        for addr, byte in zip(range(0x0C, 0x10), round(self.gear.power_w * 10).to_bytes(4, "big"),
                              strict=True):
            self.contents[addr] = byte


class _GearDiagnosticsBank205(_LiveBank):
    """DiiA Part 253 bank 205: control gear operating time, starts, temperature."""

    bank = diagnostics.BANK_205
    refresh_at = frozenset({0x04, 0x08, 0x1B})

    def fill(self) -> None:
        g = self.gear
        _put(self.contents, diagnostics.ControlGearOperatingTime, int(g.operating_time_s))
        _put(self.contents, diagnostics.ControlGearStartCounter, g.gear_starts)
        _put(self.contents, diagnostics.ControlGearTemperature,
             round(g.temperature_c) + diagnostics.ControlGearTemperature.offset)


class _LightSourceDiagnosticsBank206(_LiveBank):
    """DiiA Part 253 bank 206: light source on time, starts, failures, temperature."""

    bank = diagnostics.BANK_206
    refresh_at = frozenset({0x07, 0x0E, 0x17, 0x20})

    def fill(self) -> None:
        g = self.gear
        _put(self.contents, diagnostics.LightSourceStartCounter, g.lamp_starts)
        _put(self.contents, diagnostics.LightSourceOnTime, int(g.lamp_on_time_s))
        _put(self.contents, diagnostics.LightSourceOverallFailureCondition, int(g.lamp_failure))
        _put(self.contents, diagnostics.LightSourceOverallFailureConditionCounter,
             g.lamp_failures)
        _put(self.contents, diagnostics.LightSourceTemperature,
             round(g.temperature_c) + diagnostics.LightSourceTemperature.offset)


class SimulatedGear(fakes.Gear):
    """One LED control gear (DT6-like) with fade, power, energy and diagnostics.

    ``level`` (inherited) is the *target* arc level; :attr:`actual_level` follows it with the
    configured fade for DAPC and GO TO SCENE, and jumps for OFF / RECALL MAX / RECALL MIN as
    IEC 62386-102 requires. Energy integrates power between clock readings.
    """

    def __init__(self, spec: GearSpec, now: Callable[[], float], rng: random.Random) -> None:
        super().__init__(shortaddr=spec.short_address, groups=set(spec.groups),
                         memory_banks=(fakes.FakeBank0, fakes.FakeBank1))
        self.now = now
        self._rng = rng
        self.rated_power_w = spec.rated_power_w
        self.fade_time = spec.fade_time
        if spec.random_address is not None:
            self.randomaddr = Frame(24, spec.random_address)
        self.power_on_level = spec.power_on_level
        self.system_failure_level = spec.system_failure_level
        self.extended_fade_time = 0
        self.power_cycle_seen = True  # set at power-on until an arc power command or RESET
        self.powered = True  # mains (the cabinet contactor)
        self.level = self.power_on_level  # a street luminaire comes up at its power-on level
        self.lamp_failure = False
        self.energy_wh = 0.0
        self.operating_time_s = 0.0
        self.lamp_on_time_s = 0.0
        self.gear_starts = 1
        self.lamp_starts = 1
        self.lamp_failures = 0
        self.temperature_c = 25.0
        self._t = now()
        self._fade_from = float(self.level)
        self._fade_to = float(self.level)
        self._fade_t0 = self._t
        self._fade_s = 0.0
        if spec.d4i:
            for bank_class in (_EnergyBank202, _GearDiagnosticsBank205,
                               _LightSourceDiagnosticsBank206):
                self.memory_banks[bank_class.bank.address] = bank_class(self)
            self.memory_banks[0].contents[0x02] = 206  # last accessible memory bank

    # -- state over time ------------------------------------------------------------------

    def _level_at(self, t: float) -> float:
        if self._fade_s <= 0 or t >= self._fade_t0 + self._fade_s:
            return self._fade_to
        frac = max(0.0, (t - self._fade_t0) / self._fade_s)
        return self._fade_from + (self._fade_to - self._fade_from) * frac

    def _power_at_level(self, level: float) -> float:
        if self.lamp_failure or level < 0.5:
            return STANDBY_POWER_W
        lvl = max(1.0, min(254.0, level))
        # during a fade the level is fractional: interpolate the curve geometrically
        n = min(int(lvl), 253)
        p0, p1 = arc_level_to_percent(n), arc_level_to_percent(n + 1)
        percent = p0 * (p1 / p0) ** (lvl - n)
        return STANDBY_POWER_W + self.rated_power_w * percent / 100

    def advance(self) -> None:
        """Integrate energy and operating time up to ``now()`` and settle a finished fade."""
        t1 = self.now()
        t0 = self._t
        if t1 <= t0:
            return
        fade_end = self._fade_t0 + self._fade_s
        if self._fade_s > 0 and t0 < fade_end:
            # fading: power is exponential in level; trapezoids on <= 50 ms steps
            steps = max(1, min(400, math.ceil((min(t1, fade_end) - t0) / 0.05)))
            edges = [t0 + (min(t1, fade_end) - t0) * i / steps for i in range(steps + 1)]
            if t1 > fade_end:
                edges.append(t1)
        else:
            edges = [t0, t1]
        wh = 0.0
        on_s = 0.0
        for a, b in zip(edges, edges[1:], strict=False):
            la, lb = self._level_at(a), self._level_at(b)
            wh += (self._power_at_level(la) + self._power_at_level(lb)) / 2 * (b - a) / 3600
            if not self.lamp_failure and (la + lb) / 2 >= 0.5:
                on_s += b - a
        self.energy_wh += wh
        self.lamp_on_time_s += on_s
        self.operating_time_s += t1 - t0
        target_temp = 25.0 + 30.0 * self.power_w / max(self.rated_power_w, 1.0)
        self.temperature_c += (target_temp - self.temperature_c) * (1 - math.exp(-(t1 - t0) / 600))
        self._t = t1

    @property
    def actual_level(self) -> int:
        """The arc level the lamp is at now (during a fade, between start and target)."""
        return round(self._level_at(self.now()))

    @property
    def fade_running(self) -> bool:
        """True while a fade is in progress."""
        return self._fade_s > 0 and self.now() < self._fade_t0 + self._fade_s

    @property
    def power_w(self) -> float:
        """Active power drawn now (W)."""
        return self._power_at_level(self._level_at(self.now()))

    @property
    def light_percent(self) -> float:
        """Light output now in percent (logarithmic curve; 0 with a failed lamp)."""
        if self.lamp_failure:
            return 0.0
        return arc_level_to_percent(self.actual_level)

    def status_byte(self) -> int:
        """IEC 62386-102 status: bit 1 lamp failure, 2 lamp on, 4 fade running,
        6 short address missing, 7 power cycle seen."""
        status = 0
        if self.lamp_failure:
            status |= 0x02
        if not self.lamp_failure and self.actual_level > 0:
            status |= 0x04
        if self.fade_running:
            status |= 0x10
        if self.shortaddr is None:
            status |= 0x40
        if self.power_cycle_seen:
            status |= 0x80
        return status

    def set_lamp_failure(self, failed: bool) -> None:
        """Inject (or clear) a lamp failure: no light, standby power, status bit 1."""
        self.advance()
        if failed and not self.lamp_failure:
            self.lamp_failures += 1
        if not failed and self.lamp_failure:
            self.lamp_starts += 1
        self.lamp_failure = failed

    def _start_level_change(self, target: int, fade: bool) -> None:
        t = self.now()
        start = self._level_at(t)
        if start < 0.5 < target:
            self.lamp_starts += 1
        self._fade_from = start
        self._fade_to = float(target)
        self._fade_t0 = t
        self._fade_s = self.fade_seconds() if fade else 0.0

    def fade_seconds(self) -> float:
        """The fade a DAPC runs now: FADE TIME, or with code 0 the EXTENDED FADE TIME."""
        if self.fade_time:
            return FADE_TIMES_S[self.fade_time]
        mult = (self.extended_fade_time >> 4) & 0x7
        base_s = {1: 0.1, 2: 1.0, 3: 10.0, 4: 60.0}.get(mult, 0.0)
        return ((self.extended_fade_time & 0xF) + 1) * base_s

    def _jump(self, level: int) -> None:
        self.advance()
        self.level = level
        self._start_level_change(level, fade=False)

    def set_mains(self, on: bool) -> None:
        """Switch the gear's mains supply (a cabinet contactor). Off: dark, silent on the bus.
        On again: POWER ON LEVEL at once, status bit "power cycle seen" set."""
        if on and not self.powered:
            self.powered = True
            self.power_cycle_seen = True
            self._jump(self.power_on_level)
        elif not on and self.powered:
            self._jump(0)
            self.powered = False

    def bus_power_lost(self) -> None:
        """The DALI bus lost power (cut cable, dead supply): go to SYSTEM FAILURE LEVEL
        (IEC 62386-102; 255 = MASK keeps the level)."""
        if self.powered and self.system_failure_level != 255:
            self._jump(self.system_failure_level)

    def _next_random_address(self) -> int:
        return self._rng.randrange(0, 0x1000000)

    # -- the command interpreter ----------------------------------------------------------

    def send(self, cmd: Command) -> int | None:
        """Process one command; return the backward frame value or None (no answer)."""
        self.advance()
        if not self.powered:
            return None
        if len(cmd.frame) == 16 and self.valid_address(cmd):
            if isinstance(cmd, (DAPC, Off, RecallMaxLevel, RecallMinLevel, GoToScene)):
                self.power_cycle_seen = False  # an arc power command clears it
            if isinstance(cmd, QueryPowerOnLevel):
                return self.power_on_level
            if isinstance(cmd, QuerySystemFailureLevel):
                return self.system_failure_level
            if isinstance(cmd, SetPowerOnLevel):
                self.power_on_level = self.dtr0
                return None
            if isinstance(cmd, SetSystemFailureLevel):
                self.system_failure_level = self.dtr0
                return None
            if isinstance(cmd, SetExtendedFadeTime):
                self.extended_fade_time = self.dtr0 if self.dtr0 <= 0x4F else 0
                return None
            if isinstance(cmd, QueryExtendedFadeTime):
                return self.extended_fade_time
            if isinstance(cmd, QueryActualLevel):
                self.prev_cmd = cmd
                return _MASK if self.lamp_failure else self.actual_level
            if isinstance(cmd, QueryStatus):
                return self.status_byte()
            if isinstance(cmd, QueryLampFailure):
                return _YES if self.lamp_failure else None
            if isinstance(cmd, QueryLampPowerOn):
                return _YES if self.status_byte() & 0x04 else None
            if isinstance(cmd, QueryControlGearFailure):
                return None
            if isinstance(cmd, QueryFadeTimeFadeRate):
                return (self.fade_time << 4) | 7
            if isinstance(cmd, SetFadeTime):
                self.fade_time = min(self.dtr0, 15)
                return None
            if isinstance(cmd, DAPC) and cmd.power == 255:
                # DAPC(MASK) stops a running fade where it is
                self.level = self.actual_level
                self._start_level_change(self.level, fade=False)
                return None
        before = self.level
        reply = super().send(cmd)
        if self.level != before or isinstance(cmd, (DAPC, GoToScene)):
            if self.level != round(self._fade_to):
                self._start_level_change(self.level, fade=isinstance(cmd, (DAPC, GoToScene)))
        if isinstance(reply, bool):
            reply = _YES if reply else None
        return reply


class SimulatedDaliBus:
    """A DALI bus with simulated control gear; pure and synchronous, time from ``now``.

    ``gear`` is a number of gear (short addresses 0..n-1) or a sequence of :class:`GearSpec`;
    ``groups`` maps a DALI group (0–15) to short addresses and is added to the specs' groups.
    """

    def __init__(
        self,
        gear: int | Sequence[GearSpec],
        *,
        now: Callable[[], float],
        groups: Mapping[int, Iterable[int]] | None = None,
        seed: int = 1,
        devices: Sequence[ControlDeviceSpec] = (),
    ) -> None:
        specs = [GearSpec(i) for i in range(gear)] if isinstance(gear, int) else list(gear)
        if len(specs) > MAX_GEAR_PER_BUS:
            raise ValueError(
                f"a DALI bus carries at most {MAX_GEAR_PER_BUS} control gear, not {len(specs)}"
            )
        member_of: dict[int, set[int]] = {}
        for group, addresses in (groups or {}).items():
            if not 0 <= group <= 15:
                raise ValueError(f"DALI group {group} outside 0..15")
            for a in addresses:
                member_of.setdefault(a, set()).add(group)
        rng = random.Random(seed)
        self.now = now
        self.gear: list[SimulatedGear] = []
        for spec in specs:
            extra = member_of.get(spec.short_address, set()) if spec.short_address is not None \
                else set()
            if spec.random_address is None:
                spec = dataclasses.replace(spec, random_address=rng.randrange(0, 0x1000000))
            spec = dataclasses.replace(spec, groups=frozenset(spec.groups | extra))
            self.gear.append(SimulatedGear(spec, now, random.Random(rng.random())))
            fill_luminaire_info(self.gear[-1], serial=10_000 * seed + len(self.gear),
                                rated_power_w=spec.rated_power_w)
        # DALI-2 control devices (sensors): 24-bit frames, their own address space
        self.devices = [SimulatedControlDevice(d, random.Random(rng.random())) for d in devices]
        self.frames = 0
        self.bus_time_s = 0.0
        self._devicetype = 0
        self._pending_twice: tuple[int, int, float] | None = None
        self._events: list[ForwardFrame] = []
        self.event_listener: Callable[[ForwardFrame], None] | None = None
        self.frame_listener: Callable[[ForwardFrame], None] | None = None
        """Called with every forward frame the moment it reaches the gear (tests, benchmarks:
        an observer independent of the gateway's own bookkeeping)."""

    def by_short_address(self, short_address: int) -> SimulatedGear:
        """The gear with this short address (KeyError naming it if there is none)."""
        for g in self.gear:
            if g.shortaddr == short_address:
                return g
        raise KeyError(f"no simulated gear with short address {short_address}")

    @property
    def power_w(self) -> float:
        """Total active power of all gear now (W): what the cabinet meter sees."""
        return sum(g.power_w for g in self.gear)

    def advance(self) -> None:
        """Bring every gear's energy integration up to ``now()``."""
        for g in self.gear:
            g.advance()

    def process(self, frame: ForwardFrame, *, send_twice: bool = False) -> DaliReply:
        """Put one forward frame on the bus; return the answer.

        A configuration command (``sendtwice`` in python-dali) only takes effect if
        ``send_twice`` is set or the identical frame came within 100 ms before, as real gear
        requires. No answer from any gear is :class:`NoAnswer`, several answers
        :class:`Collision`.
        """
        self.frames += 2 if send_twice else 1
        if self.frame_listener is not None:
            self.frame_listener(frame)
        cmd = Command.from_frame(frame, devicetype=self._devicetype)
        self.bus_time_s += frame_bus_time(len(frame), is_query=cmd.response is not None,
                                          send_twice=send_twice)
        self._devicetype = cmd.param if isinstance(cmd, EnableDeviceType) else 0
        if cmd.sendtwice and not send_twice:
            t = self.now()
            key = (len(frame), frame.as_integer)
            if self._pending_twice is None or self._pending_twice[:2] != key \
                    or t - self._pending_twice[2] > SEND_TWICE_WINDOW_S:
                self._pending_twice = (*key, t)
                return NoAnswer()
        self._pending_twice = None
        units: Sequence[SimulatedGear | SimulatedControlDevice] = \
            self.gear if len(frame) == 16 else self.devices
        replies = [r for r in (u.send(cmd) for u in units) if r is not None]
        if not replies:
            return NoAnswer()
        if len(replies) > 1:
            return Collision()
        return Backward(int(replies[0]) & 0xFF)

    def occupancy_event(self, short_address: int, instance: int | None = None, *,
                        occupied: bool = True, movement: bool = True,
                        repeat: bool = False) -> ForwardFrame:
        """A Part 303 occupancy sensor (control device ``short_address``) reports; the 24-bit
        event frame goes to the listener (the transport's ``bus_events``) and is returned.
        Without ``instance`` it uses the "device" event scheme (short address and instance
        type in the frame), which a receiver decodes without knowing the instances.
        ``repeat``: the periodic report of an unchanged state (the sensor's report timer)."""
        event = OccupancyEvent(short_address=short_address, instance_number=instance,
                               data=OccupancyEvent.EventData(movement=movement,
                                                             occupied=occupied,
                                                             repeat=repeat,
                                                             sensor_type="presence"))
        self.frames += 1
        self.bus_time_s += frame_bus_time(24, is_query=False)
        if self.event_listener is not None:
            self.event_listener(event.frame)
        else:
            self._events.append(event.frame)
        return event.frame

    def contactor(self, on: bool) -> None:
        """Switch the mains of every gear (the cabinet contactor; see
        :meth:`SimulatedGear.set_mains`)."""
        for g in self.gear:
            g.set_mains(on)

    def take_events(self) -> list[ForwardFrame]:
        """Events sent while nobody listened (oldest first); clears them."""
        events, self._events = self._events, []
        return events


@dataclass
class SimulatedDaliTransport:
    """The simulated bus as an asyncio :class:`lykta.dali_bus.DaliBus`.

    With ``wire_time`` every frame takes its real DALI bus time (27.7 ms per command,
    40.7 ms per query, 55.3 ms per send-twice), so timing-sensitive code sees the real limits.
    """

    bus: SimulatedDaliBus
    name: str = "sim"
    wire_time: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    _queue: asyncio.Queue[ForwardFrame] = field(default_factory=asyncio.Queue, init=False)
    _closed: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        for f in self.bus.take_events():
            self._queue.put_nowait(f)
        self.bus.event_listener = self._queue.put_nowait

    async def send_frame(
        self, frame: ForwardFrame, *, send_twice: bool = False, priority: int = 4
    ) -> DaliReply:
        """Send one forward frame and return the reply (see :class:`DaliBus`)."""
        if self._closed:
            raise RuntimeError(f"DALI bus {self.name!r} is closed")
        if not 1 <= priority <= 5:
            raise ValueError(f"DALI priority {priority} outside 1..5")
        async with self._lock:
            reply = self.bus.process(frame, send_twice=send_twice)
            if self.wire_time:
                cmd_is_query = not isinstance(reply, NoAnswer) or _is_query(frame)
                await asyncio.sleep(frame_bus_time(len(frame), is_query=cmd_is_query,
                                                   send_twice=send_twice))
            return reply

    async def bus_events(self) -> AsyncIterator[ForwardFrame]:
        """Event frames other masters sent (occupancy sensors), as they come."""
        while not self._closed:
            yield await self._queue.get()

    async def close(self) -> None:
        """Stop delivering events; further frames are refused."""
        self._closed = True
        self.bus.event_listener = None


def _is_query(frame: ForwardFrame) -> bool:
    return Command.from_frame(frame).response is not None

