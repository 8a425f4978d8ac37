"""The messages that travel between the gateway (host) and the DALI-master board.

Each message is a frozen dataclass with a one-byte ``TYPE`` (the frame header's type field) and
a fixed binary payload layout (big-endian, documented per class and in
``docs/firmware-bridge.md``). Link-control messages (``LinkReset`` … ``Nak``) are handled by
the link itself; the others are application messages, delivered reliably and in order.

Requests that expect an answer carry a ``tag`` (u16) that the answer echoes, so the host can
match answers to requests. Pure code: no I/O.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self, TypeVar

#: Version strings (firmware versions) are at most this many UTF-8 bytes.
MAX_VERSION_LENGTH = 32
SHA256_SIZE = 32
_E = TypeVar("_E", bound=IntEnum)


class MessageType(IntEnum):
    """The frame header's ``type`` byte."""

    LINK_RESET = 0x01
    LINK_RESET_ACK = 0x02
    ACK = 0x03
    NAK = 0x04
    LINK_DOWN = 0x05
    DALI_FORWARD = 0x10
    DALI_RESULT = 0x11
    BUS_EVENT = 0x12
    STATUS_REQUEST = 0x20
    BOARD_STATUS = 0x21
    FIRMWARE_BEGIN = 0x30
    FIRMWARE_CHUNK = 0x31
    FIRMWARE_VERIFY = 0x32
    FIRMWARE_ACTIVATE = 0x33
    FIRMWARE_STATUS = 0x34


#: Types the link handles itself; everything else is sequenced and acknowledged.
LINK_CONTROL_TYPES = frozenset(
    {
        MessageType.LINK_RESET,
        MessageType.LINK_RESET_ACK,
        MessageType.ACK,
        MessageType.NAK,
        MessageType.LINK_DOWN,
    }
)


class MalformedMessage(ValueError):
    """A frame with a valid CRC whose type or payload makes no sense."""


class DaliOutcome(IntEnum):
    """What happened on the DALI bus after a forward frame."""

    NO_ANSWER = 0
    BACKWARD = 1
    #: several gear answered at once or the backward frame had a framing error
    COLLISION = 2
    #: the bus had no power; the frame was not sent
    NO_BUS_POWER = 3


class TransferState(IntEnum):
    """The board's firmware-transfer state."""

    IDLE = 0
    RECEIVING = 1
    VERIFIED = 2
    ACTIVATING = 3


class TransferError(IntEnum):
    """Why the board refused a firmware-transfer step (``NONE`` when it did not)."""

    NONE = 0
    HASH_MISMATCH = 1
    OFFSET_MISMATCH = 2
    TOO_LARGE = 3
    NO_TRANSFER = 4
    INCOMPLETE = 5
    NOT_VERIFIED = 6


def _pack_str(text: str) -> bytes:
    raw = text.encode()
    if len(raw) > MAX_VERSION_LENGTH:
        raise ValueError(f"version string {text!r} longer than {MAX_VERSION_LENGTH} bytes")
    return bytes([len(raw)]) + raw


def _unpack_str(payload: bytes, offset: int, where: str) -> tuple[str, int]:
    if offset >= len(payload):
        raise MalformedMessage(f"{where}: version string missing")
    n = payload[offset]
    raw = payload[offset + 1 : offset + 1 + n]
    if n > MAX_VERSION_LENGTH or len(raw) != n:
        raise MalformedMessage(f"{where}: version string of {n} bytes does not fit")
    try:
        return raw.decode(), offset + 1 + n
    except UnicodeDecodeError:
        raise MalformedMessage(f"{where}: version string is not UTF-8") from None


class _Fixed:
    """Mixin for messages whose payload is one ``struct`` layout of their fields, in order."""

    __slots__: ClassVar[tuple[str, ...]] = ()  # each message's dataclass fills in its fields
    TYPE: ClassVar[MessageType]
    LAYOUT: ClassVar[struct.Struct]

    def encode_payload(self) -> bytes:
        """The payload bytes of this message."""
        return self.LAYOUT.pack(*(getattr(self, f) for f in self.__slots__))

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        """Parse a payload; raise :class:`MalformedMessage` naming the type and the problem."""
        if len(payload) != cls.LAYOUT.size:
            raise MalformedMessage(
                f"{cls.__name__}: payload of {len(payload)} bytes, expected {cls.LAYOUT.size}"
            )
        msg = cls(*cls.LAYOUT.unpack(payload))
        msg._check()
        return msg

    def _check(self) -> None:
        """Validate field values after decoding (enums are converted here)."""


@dataclass(frozen=True, slots=True)
class LinkReset(_Fixed):
    """Host → board: start a new link session. Payload ``>IBBBH``."""

    TYPE: ClassVar[MessageType] = MessageType.LINK_RESET
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">IBBBH")
    nonce: int
    min_version: int
    max_version: int
    window: int
    max_payload: int


@dataclass(frozen=True, slots=True)
class LinkResetAck(_Fixed):
    """Board → host: session accepted (``version`` ≥ 1) or no common version (``version`` 0).

    The board's own supported range is included so the host can say what it would need.
    Payload ``>IBBHBB``.
    """

    TYPE: ClassVar[MessageType] = MessageType.LINK_RESET_ACK
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">IBBHBB")
    nonce: int
    version: int
    window: int
    max_payload: int
    min_version: int
    max_version: int


@dataclass(frozen=True, slots=True)
class LinkDown(_Fixed):
    """Board → host: a sequenced frame arrived but no session exists (the board restarted)."""

    TYPE: ClassVar[MessageType] = MessageType.LINK_DOWN
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">")


@dataclass(frozen=True, slots=True)
class DaliForward(_Fixed):
    """Host → board: put one forward frame on the DALI bus. Payload ``>HBBBI``.

    ``bits`` is 16 or 24; ``data`` the frame's bits; ``send_twice`` repeats it within 100 ms
    (configuration commands); ``priority`` is the DALI transmission priority 1–5.
    """

    TYPE: ClassVar[MessageType] = MessageType.DALI_FORWARD
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">HBBBI")
    tag: int
    bits: int
    send_twice: bool
    priority: int
    data: int

    def _check(self) -> None:
        _check_dali_frame("DaliForward", self.bits, self.data)
        if not 1 <= self.priority <= 5:
            raise MalformedMessage(f"DaliForward: priority {self.priority} not in 1..5")
        object.__setattr__(self, "send_twice", _bool(self.send_twice, "DaliForward.send_twice"))


@dataclass(frozen=True, slots=True)
class DaliResult(_Fixed):
    """Board → host: the outcome of the ``DaliForward`` with the same tag. Payload ``>HBB``."""

    TYPE: ClassVar[MessageType] = MessageType.DALI_RESULT
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">HBB")
    tag: int
    outcome: DaliOutcome
    value: int = 0

    def _check(self) -> None:
        object.__setattr__(self, "outcome", _enum(DaliOutcome, self.outcome, "DaliResult"))


@dataclass(frozen=True, slots=True)
class BusEvent(_Fixed):
    """Board → host: a forward frame another bus master sent (e.g. a sensor's event).

    ``uptime_ms`` is the board's clock when the frame ended. Payload ``>BIIB``.
    """

    TYPE: ClassVar[MessageType] = MessageType.BUS_EVENT
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">BIIB")
    bits: int
    data: int
    uptime_ms: int
    framing_error: bool = False

    def _check(self) -> None:
        _check_dali_frame("BusEvent", self.bits, self.data)
        object.__setattr__(
            self, "framing_error", _bool(self.framing_error, "BusEvent.framing_error")
        )


@dataclass(frozen=True, slots=True)
class StatusRequest(_Fixed):
    """Host → board: ask for a ``BoardStatus``. Payload ``>H``."""

    TYPE: ClassVar[MessageType] = MessageType.STATUS_REQUEST
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">H")
    tag: int


@dataclass(frozen=True, slots=True)
class BoardStatus:
    """Board → host: health and identity of the board.

    Payload ``>HBIIIIIII`` (tag, bus_power, uptime_ms, rx_frames, rx_dropped, rx_bad_crc,
    retransmissions, dali_frames, dali_collisions) then the firmware version (u8 length +
    UTF-8).
    """

    TYPE: ClassVar[MessageType] = MessageType.BOARD_STATUS
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">HBIIIIIII")
    tag: int
    bus_power: bool
    uptime_ms: int
    rx_frames: int
    rx_dropped: int
    rx_bad_crc: int
    retransmissions: int
    dali_frames: int
    dali_collisions: int
    firmware_version: str

    def encode_payload(self) -> bytes:
        """The payload bytes of this message."""
        fields = [getattr(self, f) for f in self.__slots__[:-1]]
        return self.LAYOUT.pack(*fields) + _pack_str(self.firmware_version)

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        """Parse a payload; raise :class:`MalformedMessage` naming the problem."""
        size = cls.LAYOUT.size
        if len(payload) < size:
            raise MalformedMessage(f"BoardStatus: payload of {len(payload)} bytes is too short")
        tag, power, uptime, rx, dropped, bad_crc, resent, frames, collisions = (
            cls.LAYOUT.unpack_from(payload)
        )
        version, end = _unpack_str(payload, size, "BoardStatus")
        if end != len(payload):
            raise MalformedMessage("BoardStatus: trailing bytes after the version string")
        bus_power = _bool(power, "BoardStatus.bus_power")
        return cls(
            tag, bus_power, uptime, rx, dropped, bad_crc, resent, frames, collisions, version
        )


@dataclass(frozen=True, slots=True)
class FirmwareBegin:
    """Host → board: start (or resume) receiving an image. Payload ``>HI`` + 32-byte SHA-256
    + version string.

    If the board already holds part of the image with the same SHA-256, size and version, it
    keeps it and answers with the offset to resume from; otherwise it starts over at 0.
    """

    TYPE: ClassVar[MessageType] = MessageType.FIRMWARE_BEGIN
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">HI32s")
    tag: int
    size: int
    sha256: bytes
    version: str

    def encode_payload(self) -> bytes:
        """The payload bytes of this message."""
        if len(self.sha256) != SHA256_SIZE:
            raise ValueError(f"sha256 must be {SHA256_SIZE} bytes, got {len(self.sha256)}")
        return self.LAYOUT.pack(self.tag, self.size, self.sha256) + _pack_str(self.version)

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        """Parse a payload; raise :class:`MalformedMessage` naming the problem."""
        if len(payload) < cls.LAYOUT.size:
            raise MalformedMessage(f"FirmwareBegin: payload of {len(payload)} bytes too short")
        tag, size, sha = cls.LAYOUT.unpack_from(payload)
        version, end = _unpack_str(payload, cls.LAYOUT.size, "FirmwareBegin")
        if end != len(payload):
            raise MalformedMessage("FirmwareBegin: trailing bytes after the version string")
        return cls(tag, size, sha, version)


@dataclass(frozen=True, slots=True)
class FirmwareChunk:
    """Host → board: image bytes at ``offset``. Payload ``>I`` + data (no answer)."""

    TYPE: ClassVar[MessageType] = MessageType.FIRMWARE_CHUNK
    HEADER: ClassVar[struct.Struct] = struct.Struct(">I")
    offset: int
    data: bytes

    def encode_payload(self) -> bytes:
        """The payload bytes of this message."""
        return self.HEADER.pack(self.offset) + self.data

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        """Parse a payload; raise :class:`MalformedMessage` naming the problem."""
        if len(payload) < cls.HEADER.size:
            raise MalformedMessage(f"FirmwareChunk: payload of {len(payload)} bytes too short")
        (offset,) = cls.HEADER.unpack_from(payload)
        return cls(offset, bytes(payload[cls.HEADER.size :]))


@dataclass(frozen=True, slots=True)
class FirmwareVerify(_Fixed):
    """Host → board: check the received image's SHA-256. Payload ``>H``."""

    TYPE: ClassVar[MessageType] = MessageType.FIRMWARE_VERIFY
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">H")
    tag: int


@dataclass(frozen=True, slots=True)
class FirmwareActivate(_Fixed):
    """Host → board: boot the verified image. Payload ``>H``. The board answers, then reboots."""

    TYPE: ClassVar[MessageType] = MessageType.FIRMWARE_ACTIVATE
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">H")
    tag: int


@dataclass(frozen=True, slots=True)
class FirmwareStatus(_Fixed):
    """Board → host: the transfer state after a begin/verify/activate. Payload ``>HBIIB``.

    ``offset`` is the number of image bytes received and stored (the resume point).
    """

    TYPE: ClassVar[MessageType] = MessageType.FIRMWARE_STATUS
    LAYOUT: ClassVar[struct.Struct] = struct.Struct(">HBIIB")
    tag: int
    state: TransferState
    offset: int
    size: int
    error: TransferError = TransferError.NONE

    def _check(self) -> None:
        object.__setattr__(self, "state", _enum(TransferState, self.state, "FirmwareStatus"))
        object.__setattr__(self, "error", _enum(TransferError, self.error, "FirmwareStatus"))


def _enum(kind: type[_E], value: int, where: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        raise MalformedMessage(f"{where}: {value} is not a valid {kind.__name__}") from None


def _bool(value: int, where: str) -> bool:
    if value not in (0, 1):
        raise MalformedMessage(f"{where} must be 0 or 1, not {value}")
    return bool(value)


def _check_dali_frame(where: str, bits: int, data: int) -> None:
    if bits not in (16, 24):
        raise MalformedMessage(f"{where}: {bits}-bit forward frame (only 16 or 24 are defined)")
    if data >= 1 << bits:
        raise MalformedMessage(f"{where}: data 0x{data:x} does not fit in {bits} bits")


Message = (
    LinkReset
    | LinkResetAck
    | LinkDown
    | DaliForward
    | DaliResult
    | BusEvent
    | StatusRequest
    | BoardStatus
    | FirmwareBegin
    | FirmwareChunk
    | FirmwareVerify
    | FirmwareActivate
    | FirmwareStatus
)

MESSAGE_CLASSES: dict[int, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        LinkReset,
        LinkResetAck,
        LinkDown,
        DaliForward,
        DaliResult,
        BusEvent,
        StatusRequest,
        BoardStatus,
        FirmwareBegin,
        FirmwareChunk,
        FirmwareVerify,
        FirmwareActivate,
        FirmwareStatus,
    )
}


def decode_message(type_: int, payload: bytes) -> Message:
    """Build the message for a frame's ``type_`` and ``payload``.

    Raises :class:`MalformedMessage` for an unknown type or a payload that does not parse.
    """
    cls = MESSAGE_CLASSES.get(type_)
    if cls is None:
        raise MalformedMessage(f"unknown message type 0x{type_:02x}")
    return cls.decode_payload(payload)
