"""The link state machine: reliable, ordered delivery of messages over an unreliable line.

Sans-I/O in the style of h11: a :class:`Link` is fed received bytes (``receive_data``) and
messages to send (``send``); it hands back typed events (``next_event``) and bytes to write
(``data_to_send``). It never reads a clock: every call that may start or check a timer takes
``now`` (seconds, any monotonic origin), and ``next_deadline()`` says when ``poll(now)`` must
be called next.

Protocol (see ``docs/firmware-bridge.md``):

* Session: the host sends ``LinkReset`` (random nonce, its version range, window, largest
  payload); the board answers ``LinkResetAck`` with the highest common version (0: none) and the
  smaller window and payload. Both sides restart sequence numbers at 0. The host retries the
  reset after ``reset_timeout``, ``max_tries`` times.
* Data: application messages carry a sequence number (mod 256). At most ``window`` are
  unacknowledged. The receiver delivers only the next expected number and acknowledges
  cumulatively (``ACK n``: everything up to n arrived); a frame from the future means one was
  lost and is answered once with ``NAK expected``; a frame from the past is a duplicate, dropped
  and re-acknowledged. The sender retransmits everything unacknowledged (go-back-N) on a NAK or
  when nothing was acknowledged for ``ack_timeout``; after ``max_tries`` the link is lost.
* A board without a session answers sequenced frames with ``LinkDown``; the host then knows
  the board restarted, reports the link lost and may reset it.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from firmware_bridge.framing import (
    MAX_PAYLOAD,
    FrameDecoder,
    Packet,
    encode_packet,
    max_encoded_size,
)
from firmware_bridge.messages import (
    LINK_CONTROL_TYPES,
    LinkDown,
    LinkReset,
    LinkResetAck,
    MalformedMessage,
    Message,
    MessageType,
    decode_message,
)

#: Protocol versions this implementation speaks.
PROTOCOL_VERSIONS = (1, 1)
#: Header version byte of the session frames, whose layout never changes between versions.
SESSION_FRAME_VERSION = 1
SEQ_MODULUS = 256
MAX_WINDOW = SEQ_MODULUS // 2 - 1


class Role(Enum):
    """Which end of the line: the host (gateway) starts sessions, the board answers."""

    HOST = "host"
    BOARD = "board"


class LinkState(Enum):
    """Session state."""

    DOWN = "down"
    RESETTING = "resetting"
    UP = "up"


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Tunables of one end; the session uses the smaller window and payload of the two ends."""

    min_version: int = PROTOCOL_VERSIONS[0]
    max_version: int = PROTOCOL_VERSIONS[1]
    window: int = 8
    max_payload: int = 1028
    ack_timeout: float = 0.3
    reset_timeout: float = 0.5
    max_tries: int = 6
    #: Bytes per second the line carries (baud / 10 for 8N1), if known: timers then allow for
    #: the time a full frame takes on the wire.
    line_rate: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.window <= MAX_WINDOW:
            raise ValueError(f"window {self.window} not in 1..{MAX_WINDOW}")
        if not 16 <= self.max_payload <= MAX_PAYLOAD:
            raise ValueError(f"max_payload {self.max_payload} not in 16..{MAX_PAYLOAD}")
        if not 1 <= self.min_version <= self.max_version <= 255:
            raise ValueError(f"bad version range {self.min_version}..{self.max_version}")

    @property
    def ack_wait(self) -> float:
        """How long to wait for an acknowledgement: the timeout plus one full frame's time."""
        if self.line_rate is None:
            return self.ack_timeout
        return self.ack_timeout + max_encoded_size(self.max_payload) / self.line_rate


@dataclass(frozen=True, slots=True)
class LinkUp:
    """A session started with the negotiated parameters."""

    version: int
    window: int
    max_payload: int


@dataclass(frozen=True, slots=True)
class LinkLost:
    """The session ended. ``unconfirmed`` were sent (or queued) but never acknowledged: they may
    or may not have reached the peer. ``permanent`` means retrying will not help (no common
    protocol version); ``while_connecting`` means no session had started (the reset went
    unanswered)."""

    reason: str
    unconfirmed: tuple[Message, ...] = ()
    permanent: bool = False
    while_connecting: bool = False


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """An application message, delivered exactly once and in order."""

    message: Message


LinkEvent = LinkUp | LinkLost | MessageReceived


class LinkError(RuntimeError):
    """The local side used the link wrongly (sent while down, payload too large)."""


@dataclass(slots=True)
class LinkCounters:
    """Link-level statistics (framing drops live in ``Link.framing``)."""

    frames_sent: int = 0
    retransmissions: int = 0
    delivered: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    malformed: int = 0
    ignored: int = 0
    naks_sent: int = 0


@dataclass(slots=True)
class _Outgoing:
    seq: int
    frame: bytes
    message: Message


@dataclass(slots=True)
class Link:
    """One end of the serial link (see the module docstring for the protocol)."""

    role: Role
    config: LinkConfig = field(default_factory=LinkConfig)
    rng: random.Random = field(default_factory=random.Random)
    state: LinkState = LinkState.DOWN
    version: int = 0
    window: int = 0
    max_payload: int = 0
    counters: LinkCounters = field(default_factory=LinkCounters)
    framing: FrameDecoder = field(default_factory=FrameDecoder)
    _nonce: int | None = None
    _events: deque[LinkEvent] = field(default_factory=deque)
    _out: bytearray = field(default_factory=bytearray)
    _queue: deque[tuple[Message, bytes]] = field(default_factory=deque)
    _unacked: deque[_Outgoing] = field(default_factory=deque)
    _tx_next: int = 0
    _rx_expected: int = 0
    _ack_due: bool = False
    _nak_sent: bool = False
    _deadline: float | None = None
    _tries: int = 0

    # -- public API -----------------------------------------------------------------------

    def connect(self, now: float) -> None:
        """(Host) start a new session; any current one is dropped and reported lost."""
        if self.role is not Role.HOST:
            raise LinkError("only the host starts a link session")
        if self.state is LinkState.UP:
            self._lose("host restarted the session")
        self._nonce = self.rng.getrandbits(32)
        self.state = LinkState.RESETTING
        self._tries = 1
        self._send_reset(now)

    def disconnect(self, reason: str) -> None:
        """End the session locally (the line itself is gone); reports it lost if it was up."""
        if self.state is LinkState.UP:
            self._lose(reason)
        self.state = LinkState.DOWN
        self._deadline = None
        self._out.clear()  # nothing queued for the old line belongs on a new one

    def send(self, message: Message, now: float) -> None:
        """Queue an application message for reliable, in-order delivery."""
        if self.state is not LinkState.UP:
            raise LinkError(f"cannot send {type(message).__name__}: link is {self.state.value}")
        if message.TYPE in LINK_CONTROL_TYPES:
            raise LinkError(f"{type(message).__name__} is a link-control message")
        payload = message.encode_payload()
        size = len(payload)
        if size > self.max_payload:
            raise LinkError(
                f"{type(message).__name__} payload of {size} bytes exceeds the session's "
                f"{self.max_payload}"
            )
        self._queue.append((message, payload))
        self._pump(now)

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes read from the line (any amount, frames may be split anywhere)."""
        for packet in self.framing.feed(data):
            self._on_packet(packet, now)
        self._flush_ack()
        self._pump(now)

    def next_event(self) -> LinkEvent | None:
        """The next event, or ``None`` when there is none."""
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        """Bytes to write to the line now (empty when there is nothing)."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def next_deadline(self) -> float | None:
        """When ``poll`` must next be called, or ``None`` if no timer runs."""
        return self._deadline

    def poll(self, now: float) -> None:
        """Run expired timers: retransmit, retry the reset, or give the session up."""
        if self._deadline is None or now < self._deadline:
            return
        if self.state is LinkState.RESETTING:
            if self._tries >= self.config.max_tries:
                self._deadline = None
                self.state = LinkState.DOWN
                self._events.append(
                    LinkLost(
                        f"board did not answer the link reset after {self._tries} tries",
                        while_connecting=True,
                    )
                )
                return
            self._tries += 1
            self._send_reset(now)
            return
        if not self._unacked:
            self._deadline = None
            return
        if self._tries >= self.config.max_tries:
            seq = self._unacked[0].seq
            self._lose(f"no acknowledgement for seq {seq} after {self._tries} tries")
            return
        self._tries += 1
        self._retransmit(now)

    @property
    def backlog(self) -> int:
        """Messages queued or sent but not yet acknowledged (for flow control)."""
        return len(self._queue) + len(self._unacked)

    @property
    def idle(self) -> bool:
        """True when everything sent has been acknowledged."""
        return not self._queue and not self._unacked

    # -- internals ------------------------------------------------------------------------

    def _emit_frame(self, type_: int, seq: int, payload: bytes, version: int) -> bytes:
        frame = encode_packet(Packet(version, type_, seq, payload))
        self._out += frame
        self.counters.frames_sent += 1
        return frame

    def _send_reset(self, now: float) -> None:
        assert self._nonce is not None
        cfg = self.config
        msg = LinkReset(self._nonce, cfg.min_version, cfg.max_version, cfg.window, cfg.max_payload)
        self._emit_frame(msg.TYPE, 0, msg.encode_payload(), SESSION_FRAME_VERSION)
        self._deadline = now + cfg.reset_timeout

    def _start_session(self, version: int, window: int, max_payload: int) -> None:
        self.state = LinkState.UP
        self.version, self.window, self.max_payload = version, window, max_payload
        self._tx_next = self._rx_expected = 0
        self._ack_due = self._nak_sent = False
        self._deadline = None
        self._tries = 0
        self._events.append(LinkUp(version, window, max_payload))

    def _lose(self, reason: str, *, permanent: bool = False) -> None:
        unconfirmed = tuple(o.message for o in self._unacked) + tuple(m for m, _ in self._queue)
        self._unacked.clear()
        self._queue.clear()
        self._deadline = None
        self.state = LinkState.DOWN
        self._events.append(LinkLost(reason, unconfirmed, permanent))

    def _on_packet(self, packet: Packet, now: float) -> None:
        type_ = packet.type
        if type_ in (MessageType.ACK, MessageType.NAK):
            if self.state is LinkState.UP and packet.version == self.version and not packet.payload:
                if type_ == MessageType.ACK:
                    self._on_ack(packet.seq, now)
                else:
                    self._on_nak(packet.seq, now)
            else:
                self.counters.ignored += 1
            return
        try:
            message = decode_message(type_, packet.payload)
        except MalformedMessage:
            self.counters.malformed += 1
            return
        if isinstance(message, LinkReset):
            self._on_reset(message)
        elif isinstance(message, LinkResetAck):
            self._on_reset_ack(message)
        elif isinstance(message, LinkDown):
            if self.role is Role.HOST and self.state is LinkState.UP:
                self._lose("the board has no session (it restarted)")
            else:
                self.counters.ignored += 1
        else:
            self._on_data(packet, message)

    def _on_reset(self, msg: LinkReset) -> None:
        if self.role is not Role.BOARD:
            self.counters.ignored += 1
            return
        cfg = self.config
        if self.state is LinkState.UP and msg.nonce == self._nonce:
            # A retried reset we already accepted: answer again, keep the session.
            self._send_reset_ack(msg.nonce, self.version)
            return
        low, high = max(cfg.min_version, msg.min_version), min(cfg.max_version, msg.max_version)
        if low > high:
            self._send_reset_ack(msg.nonce, 0)
            return
        if self.state is LinkState.UP:
            self._lose("the host started a new session")
        self._nonce = msg.nonce
        self._start_session(
            high, min(cfg.window, max(1, min(msg.window, MAX_WINDOW))),
            min(cfg.max_payload, max(16, msg.max_payload)),
        )
        self._send_reset_ack(msg.nonce, high)

    def _send_reset_ack(self, nonce: int, version: int) -> None:
        cfg = self.config
        window = self.window if version else cfg.window
        payload = self.max_payload if version else cfg.max_payload
        ack = LinkResetAck(nonce, version, window, payload, cfg.min_version, cfg.max_version)
        self._emit_frame(ack.TYPE, 0, ack.encode_payload(), SESSION_FRAME_VERSION)

    def _on_reset_ack(self, msg: LinkResetAck) -> None:
        if (
            self.role is not Role.HOST
            or self.state is not LinkState.RESETTING
            or msg.nonce != self._nonce
        ):
            self.counters.ignored += 1
            return
        cfg = self.config
        if msg.version == 0 or not cfg.min_version <= msg.version <= cfg.max_version:
            self.state = LinkState.DOWN
            self._deadline = None
            self._events.append(
                LinkLost(
                    f"no common protocol version: host speaks {cfg.min_version}..{cfg.max_version}"
                    f", board {msg.min_version}..{msg.max_version}",
                    permanent=True,
                    while_connecting=True,
                )
            )
            return
        window = min(cfg.window, max(1, min(msg.window, MAX_WINDOW)))
        self._start_session(msg.version, window, min(cfg.max_payload, msg.max_payload))

    def _on_data(self, packet: Packet, message: Message) -> None:
        if self.state is not LinkState.UP:
            if self.role is Role.BOARD:
                down = LinkDown()
                self._emit_frame(down.TYPE, 0, down.encode_payload(), SESSION_FRAME_VERSION)
            self.counters.ignored += 1
            return
        if packet.version != self.version:
            self.counters.malformed += 1
            return
        ahead = (packet.seq - self._rx_expected) % SEQ_MODULUS
        if ahead == 0:
            self._rx_expected = (self._rx_expected + 1) % SEQ_MODULUS
            self._ack_due = True
            self._nak_sent = False
            self.counters.delivered += 1
            self._events.append(MessageReceived(message))
        elif ahead < SEQ_MODULUS // 2:
            # A frame before this one was lost: ask for it once; the timer covers the rest.
            self.counters.out_of_order += 1
            if not self._nak_sent:
                self._nak_sent = True
                self.counters.naks_sent += 1
                self._emit_frame(MessageType.NAK, self._rx_expected, b"", self.version)
        else:
            self.counters.duplicates += 1
            self._ack_due = True

    def _flush_ack(self) -> None:
        if self._ack_due and self.state is LinkState.UP:
            last = (self._rx_expected - 1) % SEQ_MODULUS
            self._emit_frame(MessageType.ACK, last, b"", self.version)
        self._ack_due = False

    def _acknowledge_through(self, seq: int, now: float) -> bool:
        if not self._unacked:
            return False
        count = (seq - self._unacked[0].seq) % SEQ_MODULUS + 1
        if count > len(self._unacked):
            return False
        for _ in range(count):
            self._unacked.popleft()
        self._tries = 1  # the new oldest frame has been sent (at least) once
        self._deadline = now + self.config.ack_wait if self._unacked else None
        return True

    def _on_ack(self, seq: int, now: float) -> None:
        if not self._acknowledge_through(seq, now):
            self.counters.ignored += 1

    def _on_nak(self, seq: int, now: float) -> None:
        if not self._unacked:
            self.counters.ignored += 1
            return
        offset = (seq - self._unacked[0].seq) % SEQ_MODULUS
        if offset >= len(self._unacked):
            self.counters.ignored += 1
            return
        if offset:
            self._acknowledge_through((seq - 1) % SEQ_MODULUS, now)
        self._retransmit(now)

    def _retransmit(self, now: float) -> None:
        for out in self._unacked:
            self._out += out.frame
            self.counters.frames_sent += 1
            self.counters.retransmissions += 1
        self._deadline = now + self.config.ack_wait

    def _pump(self, now: float) -> None:
        while self._queue and self.state is LinkState.UP and len(self._unacked) < self.window:
            message, payload = self._queue.popleft()
            seq = self._tx_next
            self._tx_next = (seq + 1) % SEQ_MODULUS
            frame = self._emit_frame(message.TYPE, seq, payload, self.version)
            self._unacked.append(_Outgoing(seq, frame, message))
            if self._deadline is None:
                self._deadline = now + self.config.ack_wait
                self._tries = 1
