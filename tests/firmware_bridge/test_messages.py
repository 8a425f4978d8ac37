"""Every message type survives encode → frame → decode unchanged; bad payloads are rejected."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.framing import FrameDecoder, Packet, encode_packet
from firmware_bridge.messages import (
    MESSAGE_CLASSES,
    BoardStatus,
    BusEvent,
    DaliForward,
    DaliOutcome,
    DaliResult,
    FirmwareActivate,
    FirmwareBegin,
    FirmwareChunk,
    FirmwareStatus,
    FirmwareVerify,
    LinkDown,
    LinkReset,
    LinkResetAck,
    MalformedMessage,
    StatusRequest,
    TransferError,
    TransferState,
    decode_message,
)

u8, u16, u32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
versions = st.text(max_size=8)  # ≤ 8 code points of ≤ 4 UTF-8 bytes: always ≤ 32 bytes
sha256s = st.binary(min_size=32, max_size=32)
states, errors = st.sampled_from(TransferState), st.sampled_from(TransferError)


@st.composite
def dali_frames(draw: st.DrawFn) -> tuple[int, int]:
    bits = draw(st.sampled_from([16, 24]))
    return bits, draw(st.integers(0, (1 << bits) - 1))


def _forward(tag: int, frame: tuple[int, int], twice: bool, prio: int) -> DaliForward:
    return DaliForward(tag, frame[0], twice, prio, frame[1])


def _event(frame: tuple[int, int], uptime: int, err: bool) -> BusEvent:
    return BusEvent(frame[0], frame[1], uptime, err)


MESSAGES = {
    LinkReset: st.builds(LinkReset, u32, u8, u8, u8, u16),
    LinkResetAck: st.builds(LinkResetAck, u32, u8, u8, u16, u8, u8),
    LinkDown: st.just(LinkDown()),
    DaliForward: st.builds(_forward, u16, dali_frames(), st.booleans(), st.integers(1, 5)),
    DaliResult: st.builds(DaliResult, u16, st.sampled_from(DaliOutcome), u8),
    BusEvent: st.builds(_event, dali_frames(), u32, st.booleans()),
    StatusRequest: st.builds(StatusRequest, u16),
    BoardStatus: st.builds(
        BoardStatus, u16, st.booleans(), u32, u32, u32, u32, u32, u32, u32, versions
    ),
    FirmwareBegin: st.builds(FirmwareBegin, u16, u32, sha256s, versions),
    FirmwareChunk: st.builds(FirmwareChunk, u32, st.binary(max_size=1024)),
    FirmwareVerify: st.builds(FirmwareVerify, u16),
    FirmwareActivate: st.builds(FirmwareActivate, u16),
    FirmwareStatus: st.builds(FirmwareStatus, u16, states, u32, u32, errors),
}


def test_every_message_type_has_a_strategy() -> None:
    assert set(MESSAGES) == set(MESSAGE_CLASSES.values())


@given(st.one_of(*MESSAGES.values()), u8)
@settings(max_examples=400, deadline=None)
def test_round_trip_through_a_frame(message: object, seq: int) -> None:
    """Invariant: decode(frame(encode(m))) == m for every message of every type."""
    frame = encode_packet(Packet(1, message.TYPE, seq, message.encode_payload()))  # type: ignore[attr-defined]
    (packet,) = FrameDecoder().feed(frame)
    assert packet.seq == seq
    assert decode_message(packet.type, packet.payload) == message


@given(st.sampled_from(sorted(MESSAGE_CLASSES)), st.binary(max_size=40))
@settings(max_examples=300, deadline=None)
def test_any_payload_decodes_or_is_rejected_cleanly(type_: int, payload: bytes) -> None:
    """Invariant: arbitrary payloads never crash the decoder with anything but
    MalformedMessage, and what decodes re-encodes to the same bytes."""
    try:
        message = decode_message(type_, payload)
    except MalformedMessage:
        return
    assert message.encode_payload() == payload


@pytest.mark.parametrize(
    ("type_", "payload", "why"),
    [
        (0x7F, b"", "unknown message type 0x7f"),
        (0x10, b"\x00\x01\x14\x00\x04\x00\x00\x00\x00", "20-bit forward frame"),
        (0x10, b"\x00\x01\x10\x00\x09\x00\x00\x00\x00", "priority 9"),
        (0x10, b"\x00\x01\x10\x00\x04\x00\x01\x00\x00", "does not fit in 16 bits"),
        (0x11, b"\x00\x01\x09\x00", "not a valid DaliOutcome"),
        (0x10, b"\x00\x01\x10\x02\x04\x00\x00\x00\x00", "send_twice must be 0 or 1"),
        (0x21, b"\x00", "too short"),
        (0x30, bytes(38) + b"\x05ab", "does not fit"),
    ],
)
def test_malformed_payloads_say_why(type_: int, payload: bytes, why: str) -> None:
    with pytest.raises(MalformedMessage, match=why):
        decode_message(type_, payload)
