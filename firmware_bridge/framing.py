"""Frames on the serial line: COBS with a 0x00 delimiter, a 5-byte header and a CRC-16.

One frame on the wire is::

    COBS( version:u8 | type:u8 | seq:u8 | length:u16 | payload | crc:u16 ) 0x00

Integers are big-endian; ``length`` is the payload's size. The CRC is CRC-16/CCITT-FALSE (poly
0x1021, init 0xFFFF, no reflection, xorout 0) over header and payload. COBS removes every 0x00
from the encoded frame, so 0x00 only ever marks the end of a frame and a receiver that lost sync
(noise, a board reset mid-frame) is back in step at the next delimiter.

Why the length, when COBS already delimits: a CRC with xorout 0 cannot see zero bytes cut from
the end of a frame whose CRC ends in 0x00 (one frame in 256), and a single bit error that turns
COBS's last code byte 0x01 into 0x00 does exactly that. The length makes every frame that was
cut short or run together with the next one fail, whatever its CRC. Pure code: no I/O, no clock.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from cobs import cobs
from crc import Calculator, Crc16

DELIMITER = b"\x00"
HEADER = struct.Struct(">BBBH")
CRC_SIZE = 2
#: CRC-16/CCITT-FALSE is the catalogue's CRC-16/IBM-3740 (check value 0x29B1).
CRC16_CCITT_FALSE = Calculator(Crc16.IBM_3740.value, optimized=True)
#: Largest payload a frame may carry (the link negotiates a possibly smaller one).
MAX_PAYLOAD = 1100


def max_encoded_size(payload_size: int) -> int:
    """Bytes on the wire, delimiter included, of a frame with ``payload_size`` payload bytes."""
    raw = HEADER.size + payload_size + CRC_SIZE
    return raw + raw // 254 + 1 + len(DELIMITER)


@dataclass(frozen=True, slots=True)
class Packet:
    """One decoded frame: header fields and the (still undecoded) payload."""

    version: int
    type: int
    seq: int
    payload: bytes


def encode_packet(packet: Packet) -> bytes:
    """Serialise ``packet`` into the bytes to write, trailing delimiter included."""
    if len(packet.payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(packet.payload)} bytes exceeds {MAX_PAYLOAD}")
    size = len(packet.payload)
    body = HEADER.pack(packet.version, packet.type, packet.seq, size) + packet.payload
    crc = CRC16_CCITT_FALSE.checksum(body)
    return cobs.encode(body + crc.to_bytes(2, "big")) + DELIMITER


def decode_frame(encoded: bytes) -> Packet:
    """Decode one frame without its delimiter; raise :class:`FrameError` saying why not."""
    try:
        raw = cobs.decode(encoded)
    except cobs.DecodeError as exc:
        raise FrameError("cobs", f"bad COBS encoding: {exc}") from None
    if len(raw) < HEADER.size + CRC_SIZE:
        raise FrameError("short", f"frame of {len(raw)} bytes is shorter than header and CRC")
    body, crc = raw[:-CRC_SIZE], int.from_bytes(raw[-CRC_SIZE:], "big")
    expected = CRC16_CCITT_FALSE.checksum(body)
    if crc != expected:
        raise FrameError("crc", f"CRC 0x{crc:04x} does not match computed 0x{expected:04x}")
    version, type_, seq, length = HEADER.unpack_from(body)
    payload = bytes(body[HEADER.size :])
    if length != len(payload):
        raise FrameError(
            "length", f"header announces {length} payload bytes, the frame holds {len(payload)}"
        )
    return Packet(version, type_, seq, payload)


class FrameError(ValueError):
    """A frame that cannot be accepted; ``kind``: ``cobs``, ``short``, ``crc``, ``length``,
    ``oversize``."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


@dataclass(slots=True)
class FramingCounters:
    """What the decoder accepted and what it dropped, by reason."""

    frames: int = 0
    bad_cobs: int = 0
    short: int = 0
    bad_crc: int = 0
    bad_length: int = 0
    oversize: int = 0

    @property
    def dropped(self) -> int:
        """Frames dropped for any reason."""
        return self.bad_cobs + self.short + self.bad_crc + self.bad_length + self.oversize


@dataclass(slots=True)
class FrameDecoder:
    """Split a byte stream into packets; drop and count whatever is not a valid frame.

    Feed it bytes as they arrive, in pieces of any size. Empty frames (two delimiters in a row)
    are the idle pattern a sender may use to flush a receiver and are ignored silently.
    """

    max_payload: int = MAX_PAYLOAD
    counters: FramingCounters = field(default_factory=FramingCounters)
    last_error: str | None = None
    _buffer: bytearray = field(default_factory=bytearray)
    _discarding: bool = False

    def feed(self, data: bytes) -> list[Packet]:
        """Consume ``data``; return the packets completed by it, in order."""
        packets: list[Packet] = []
        limit = max_encoded_size(self.max_payload)
        start = 0
        while True:
            end = data.find(DELIMITER, start)
            if end < 0:
                self._buffer += data[start:]
                if len(self._buffer) > limit:
                    # Never buffer without bound: noise without delimiters is dropped now and
                    # the rest of that frame is skipped up to the next delimiter.
                    if not self._discarding:
                        self._drop(FrameError("oversize", f"no delimiter within {limit} bytes"))
                    self._discarding = True
                    self._buffer.clear()
                return packets
            chunk = bytes(self._buffer) + data[start:end] if self._buffer else data[start:end]
            self._buffer.clear()
            start = end + 1
            if self._discarding:
                self._discarding = False
                continue
            if not chunk:
                continue
            if len(chunk) > limit:
                self._drop(FrameError("oversize", f"frame of {len(chunk)} bytes exceeds {limit}"))
                continue
            try:
                packets.append(decode_frame(chunk))
            except FrameError as exc:
                self._drop(exc)
            else:
                self.counters.frames += 1

    def _drop(self, error: FrameError) -> None:
        self.last_error = str(error)
        match error.kind:
            case "cobs":
                self.counters.bad_cobs += 1
            case "short":
                self.counters.short += 1
            case "crc":
                self.counters.bad_crc += 1
            case "length":
                self.counters.bad_length += 1
            case _:
                self.counters.oversize += 1
