"""Frames: COBS + CRC-16/CCITT-FALSE round trip, corruption is dropped and counted, resync."""

from __future__ import annotations

from cobs import cobs
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from firmware_bridge.framing import (
    CRC16_CCITT_FALSE,
    DELIMITER,
    MAX_PAYLOAD,
    FrameDecoder,
    Packet,
    encode_packet,
)

packets = st.builds(
    Packet,
    version=st.integers(0, 255),
    type=st.integers(0, 255),
    seq=st.integers(0, 255),
    payload=st.binary(max_size=300),
)


def test_crc_is_ccitt_false() -> None:
    # The catalogue check value of CRC-16/CCITT-FALSE over "123456789".
    assert CRC16_CCITT_FALSE.checksum(b"123456789") == 0x29B1


@given(st.lists(packets, max_size=5), st.integers(1, 64))
@settings(max_examples=150, deadline=None)
def test_round_trip_in_pieces(sent: list[Packet], piece: int) -> None:
    """Invariant: any sequence of frames, fed in pieces of any size, decodes to itself."""
    stream = b"".join(encode_packet(p) for p in sent)
    assert stream.count(DELIMITER) == len(sent)  # COBS leaves 0x00 only as the delimiter
    decoder = FrameDecoder()
    got: list[Packet] = []
    for i in range(0, len(stream), piece):
        got += decoder.feed(stream[i : i + piece])
    assert got == sent
    assert decoder.counters.dropped == 0


def cobs_code_positions(frame: bytes) -> set[int]:
    """Where the COBS code bytes (the pointers to the next zero) sit in an encoded frame."""
    positions, i = set(), 0
    while i < len(frame) - 1:
        positions.add(i)
        i += frame[i]
    return positions


@given(packets, st.integers(0, 10_000), st.integers(0, 7))
@settings(max_examples=500, deadline=None)
@example(Packet(123, 72, 99, b"&v"), 7, 0)  # found by this test before frames had a length
def test_single_bit_error_is_caught(packet: Packet, where: int, bit: int) -> None:
    """Invariant: one flipped bit in a frame is never accepted, when it hits a data byte (the
    CRC sees one wrong byte) or makes or breaks a 0x00 (the length sees the cut). A bit that
    turns one COBS code byte into another moves bytes around: that case is left to the CRC's
    2^-16 and the derandomized stream test below."""
    frame = bytearray(encode_packet(packet))
    i = where % (len(frame) - 1)  # not the delimiter
    flipped = frame[i] ^ (1 << bit)
    assume(i not in cobs_code_positions(bytes(frame)) or flipped == 0)
    frame[i] = flipped
    decoder = FrameDecoder()
    assert decoder.feed(bytes(frame) + DELIMITER) == []
    assert decoder.counters.dropped >= 1


@given(packets)
@settings(max_examples=300, deadline=None)
def test_a_frame_cut_at_any_code_byte_is_rejected(packet: Packet) -> None:
    """Invariant: a COBS code byte turned into 0x00 (the frame cut in two) yields nothing."""
    frame = encode_packet(packet)
    for i in cobs_code_positions(frame):
        assert FrameDecoder().feed(frame[:i] + DELIMITER + frame[i + 1 :]) == []


@given(
    st.lists(packets, min_size=1, max_size=4),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6),
)
@settings(max_examples=300, deadline=None, derandomize=True)
@example(
    [Packet(1, 16, 0, b"\x00" * 10)], [(0, 0)]
)  # the first code byte becomes a delimiter
def test_corrupted_stream_never_yields_a_different_frame(
    sent: list[Packet], corruptions: list[tuple[int, int]]
) -> None:
    """Invariant: overwriting bytes of a stream of frames makes the decoder drop frames, never
    accept a frame that was not sent. (CRC-16 leaves a 2^-16 chance per mangled frame in
    principle; the examples are derandomized so this test is deterministic.)"""
    stream = bytearray(b"".join(encode_packet(p) for p in sent))
    for where, value in corruptions:
        stream[where % len(stream)] = value
    decoder = FrameDecoder()
    got = decoder.feed(bytes(stream))
    assert all(p in sent for p in got)


@given(st.binary(max_size=3000), packets)
@settings(max_examples=150, deadline=None)
def test_resynchronises_after_garbage(garbage: bytes, packet: Packet) -> None:
    """Invariant: whatever garbage came before, the frame after the next delimiter decodes."""
    decoder = FrameDecoder()
    got = decoder.feed(garbage)
    got += decoder.feed(DELIMITER + encode_packet(packet))
    assert got[-1] == packet
    assert decoder.counters.frames == len(got)


def test_truncated_and_oversize_frames_are_counted() -> None:
    decoder = FrameDecoder(max_payload=64)
    frame = encode_packet(Packet(1, 2, 3, b"hello world"))
    assert decoder.feed(frame[:5] + DELIMITER) == []
    assert decoder.feed(b"\x01" * 500) == []  # noise with no delimiter is not buffered forever
    assert decoder.feed(b"\x01" * 500 + DELIMITER) == []
    assert decoder.feed(frame) == [Packet(1, 2, 3, b"hello world")]
    c = decoder.counters
    assert (c.frames, c.oversize) == (1, 1)
    assert c.dropped == 2
    assert decoder.last_error is not None


def test_largest_payload_fits() -> None:
    packet = Packet(1, 0x31, 7, bytes(range(256)) * (MAX_PAYLOAD // 256) + b"\x00" * 12)
    assert FrameDecoder().feed(encode_packet(packet)) == [packet]


def test_spec_test_vectors_match_the_code() -> None:
    """The test vectors in docs/firmware-bridge.md are what the code puts on the wire."""
    from pathlib import Path

    from firmware_bridge.messages import DaliForward, DaliOutcome, DaliResult, LinkReset

    spec = (Path(__file__).parents[2] / "docs" / "firmware-bridge.md").read_text()
    messages = [
        LinkReset(0x12345678, 1, 1, 8, 1028),
        DaliForward(7, 16, False, 4, 0xFE80),
        DaliResult(7, DaliOutcome.BACKWARD, 0xFE),
    ]
    packets = [Packet(1, m.TYPE, 0, m.encode_payload()) for m in messages]
    packets.append(Packet(1, 0x03, 0, b""))
    for packet in packets:
        wire = encode_packet(packet)
        raw = cobs.decode(wire[:-1])
        assert f"| `{raw.hex(' ')}` | `{wire.hex(' ')}` |" in spec
