"""The DALI-master board's behaviour, as pure code: what the firmware does with each message.

:class:`Board` ties together the board's end of the link, the firmware receiver and a DALI bus
(any object with a synchronous ``process(frame, *, send_twice)``, such as
``fieldsim.dali.SimulatedDaliBus``). It is sans-I/O like :class:`firmware_bridge.link.Link`:
feed bytes with ``receive_data(data, now)``, take bytes with ``data_to_send()``, call
``poll(now)`` at ``next_deadline()``.

With ``dali_timing`` the board takes the DALI bus time each transaction needs: one frame on
the bus at a time, each result released only when the transaction would have ended. The time
comes from the bus itself: a bus that counts its bus time in ``bus_time_s`` (as
``fieldsim.dali.SimulatedDaliBus`` does, from ``gateway.dali.timing``) is charged the increase
per transaction; a bus without that counter takes no time.

Activation reboots the board: the link session ends, the new version runs and the uptime
restarts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from dali.frame import ForwardFrame

from firmware_bridge.link import Link, LinkConfig, LinkLost, LinkState, MessageReceived, Role
from firmware_bridge.messages import (
    BoardStatus,
    BusEvent,
    DaliForward,
    DaliOutcome,
    DaliResult,
    FirmwareActivate,
    FirmwareBegin,
    FirmwareChunk,
    FirmwareVerify,
    Message,
    StatusRequest,
)
from firmware_bridge.transfer import ImageStorage, Receiver
from lykta.dali_bus import Backward, Collision, DaliReply, NoAnswer

#: How long the board waits for the host to acknowledge the activation answer before rebooting.
REBOOT_GRACE_S = 0.5
#: Time from reset to the firmware answering again.
BOOT_TIME_S = 0.2


class FrameProcessor(Protocol):
    """A DALI bus seen from the master: one forward frame in, the bus's answer out."""

    def process(self, frame: ForwardFrame, *, send_twice: bool = False) -> DaliReply:
        """Put ``frame`` on the bus and return what came back."""
        ...


@dataclass(slots=True)
class BoardCounters:
    """DALI-side statistics reported in ``BoardStatus``."""

    dali_frames: int = 0
    dali_collisions: int = 0


@dataclass(slots=True)
class Board:
    """The board firmware (see the module docstring). ``now`` passed in is its clock."""

    bus: FrameProcessor
    storage: ImageStorage
    firmware_version: str
    now: float
    link_config: LinkConfig = field(default_factory=LinkConfig)
    dali_timing: bool = False
    bus_power: bool = True
    counters: BoardCounters = field(default_factory=BoardCounters)
    link: Link = field(init=False)
    receiver: Receiver = field(init=False)
    boot_time: float = field(init=False)
    reboots: int = 0
    _dali_queue: deque[DaliForward] = field(default_factory=deque)
    _dali_busy_until: float = 0.0
    _held: deque[tuple[float, Message]] = field(default_factory=deque)
    _reboot_at: float | None = None
    _booting_until: float = 0.0

    def __post_init__(self) -> None:
        self._boot(self.now, booting=False)

    def _boot(self, now: float, *, booting: bool) -> None:
        self.link = Link(Role.BOARD, self.link_config)
        self.receiver = Receiver(self.storage)
        self.boot_time = now
        self._dali_queue.clear()
        self._held.clear()
        self._dali_busy_until = now
        self._reboot_at = None
        self._booting_until = now + BOOT_TIME_S if booting else now

    # -- sans-I/O interface ---------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the serial line (ignored while the board boots)."""
        if now < self._booting_until:
            return
        self.link.receive_data(data, now)
        self._handle_events(now)
        self._run(now)

    def data_to_send(self) -> bytes:
        """Bytes to write to the serial line."""
        return self.link.data_to_send()

    def poll(self, now: float) -> None:
        """Run timers: link retransmission, DALI transactions, reboot."""
        self.link.poll(now)
        self._handle_events(now)
        self._run(now)

    def next_deadline(self) -> float | None:
        """When ``poll`` must next be called, if at all."""
        times = [t for t in (self.link.next_deadline(), self._reboot_at) if t is not None]
        if self._held:
            times.append(self._held[0][0])
        if self._dali_queue:
            times.append(self._dali_busy_until)
        return min(times) if times else None

    def bus_event(self, frame: ForwardFrame, now: float) -> None:
        """Another bus master sent ``frame`` (e.g. an occupancy sensor): report it upstream."""
        if self.link.state is LinkState.UP:
            uptime = int((now - self.boot_time) * 1000) & 0xFFFFFFFF
            self.link.send(BusEvent(len(frame), frame.as_integer, uptime, frame.error), now)

    def status(self, tag: int, now: float) -> BoardStatus:
        """The board's health report."""
        framing = self.link.framing.counters
        u32 = 0xFFFFFFFF  # counters wrap like the firmware's 32-bit ones
        return BoardStatus(
            tag=tag,
            bus_power=self.bus_power,
            uptime_ms=int((now - self.boot_time) * 1000) & u32,
            rx_frames=framing.frames & u32,
            rx_dropped=(framing.dropped + self.link.counters.malformed) & u32,
            rx_bad_crc=framing.bad_crc & u32,
            retransmissions=self.link.counters.retransmissions & u32,
            dali_frames=self.counters.dali_frames & u32,
            dali_collisions=self.counters.dali_collisions & u32,
            firmware_version=self.firmware_version,
        )

    # -- internals ------------------------------------------------------------------------

    def _handle_events(self, now: float) -> None:
        while (event := self.link.next_event()) is not None:
            if isinstance(event, LinkLost):
                # The host has given up on this session's requests: frames not yet on the bus
                # are not sent, and answers would reach nobody.
                self._dali_queue.clear()
                self._held.clear()
            elif isinstance(event, MessageReceived):
                self._on_message(event.message, now)

    def _on_message(self, msg: Message, now: float) -> None:
        match msg:
            case DaliForward():
                self._dali_queue.append(msg)
            case StatusRequest():
                self._reply(self.status(msg.tag, now), now)
            case FirmwareBegin():
                self._reply(self.receiver.begin(msg), now)
            case FirmwareChunk():
                self.receiver.chunk(msg)
            case FirmwareVerify():
                self._reply(self.receiver.verify(msg), now)
            case FirmwareActivate():
                self._reply(self.receiver.activate(msg), now)
                if self.receiver.activated is not None:
                    self._reboot_at = now + REBOOT_GRACE_S
            case _:
                pass  # board-to-host messages sent to the board: nothing to do

    def _reply(self, msg: Message, now: float) -> None:
        if self.link.state is LinkState.UP:
            self.link.send(msg, now)

    def _run(self, now: float) -> None:
        while self._dali_queue and self._dali_busy_until <= now:
            fwd = self._dali_queue.popleft()
            start = max(self._dali_busy_until, now) if self.dali_timing else now
            result, duration = self._transact(fwd)
            if self.dali_timing:
                self._dali_busy_until = start + duration
                self._held.append((self._dali_busy_until, result))
            else:
                self._reply(result, now)
        while self._held and self._held[0][0] <= now:
            self._reply(self._held.popleft()[1], now)
        if self._reboot_at is not None and (self.link.idle or now >= self._reboot_at):
            self._reboot(now)

    def _transact(self, fwd: DaliForward) -> tuple[DaliResult, float]:
        if not self.bus_power:
            return DaliResult(fwd.tag, DaliOutcome.NO_BUS_POWER), 0.0
        frame = ForwardFrame(fwd.bits, fwd.data)
        used_before = getattr(self.bus, "bus_time_s", 0.0)
        reply = self.bus.process(frame, send_twice=fwd.send_twice)
        duration = getattr(self.bus, "bus_time_s", 0.0) - used_before
        self.counters.dali_frames += 2 if fwd.send_twice else 1
        match reply:
            case Backward(value=value):
                return DaliResult(fwd.tag, DaliOutcome.BACKWARD, value), duration
            case Collision():
                self.counters.dali_collisions += 1
                return DaliResult(fwd.tag, DaliOutcome.COLLISION), duration
            case NoAnswer():
                return DaliResult(fwd.tag, DaliOutcome.NO_ANSWER), duration
        raise TypeError(f"DALI bus returned {reply!r}, not Backward/NoAnswer/Collision")

    def _reboot(self, now: float) -> None:
        assert self.receiver.activated is not None
        self.firmware_version = self.receiver.activated
        self.storage.install()
        self.reboots += 1
        self._boot(now, booting=True)
