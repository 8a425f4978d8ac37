"""The board firmware core with the field simulator's DALI bus, on a clock the test moves."""

from __future__ import annotations

import pytest
from dali.address import GearBroadcast, GearShort
from dali.gear.general import DAPC, DTR0, QueryActualLevel, SetFadeTime
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsim.dali import SimulatedDaliBus
from firmware_bridge.board import BOOT_TIME_S, Board
from firmware_bridge.link import Link, LinkLost, LinkState, MessageReceived, Role
from firmware_bridge.messages import (
    BoardStatus,
    BusEvent,
    DaliForward,
    DaliOutcome,
    DaliResult,
    FirmwareBegin,
    FirmwareChunk,
    FirmwareVerify,
    Message,
    StatusRequest,
)
from firmware_bridge.transfer import FirmwareImage, MemoryStorage, Upload
from gateway.dali.timing import COMMAND_S, QUERY_S, SEND_TWICE_S

from .test_messages import MESSAGES


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class Bench:
    """A host link wired to a board; ``exchange`` moves bytes until both are quiet."""

    def __init__(self, *, dali_timing: bool = False, gear: int = 3) -> None:
        self.clock = Clock()
        self.bus = SimulatedDaliBus(gear, now=self.clock)
        self.storage = MemoryStorage()
        self.board = Board(self.bus, self.storage, "1.0.0", now=self.clock.t,
                           dali_timing=dali_timing)
        self.host = Link(Role.HOST)
        self.host.connect(self.clock.t)
        self.exchange()
        assert self.host.state is LinkState.UP
        self.inbox: list[Message] = []
        self.lost: list[LinkLost] = []

    def exchange(self) -> None:
        for _ in range(1000):
            a, b = self.host.data_to_send(), self.board.data_to_send()
            if not a and not b:
                break
            self.board.receive_data(a, self.clock.t)
            self.host.receive_data(b, self.clock.t)
        while (e := self.host.next_event()) is not None:
            if isinstance(e, MessageReceived):
                self.inbox.append(e.message)
            elif isinstance(e, LinkLost):
                self.lost.append(e)

    def advance(self, seconds: float) -> None:
        end = self.clock.t + seconds
        while (d := self.board.next_deadline()) is not None and d <= end:
            self.clock.t = max(self.clock.t, d)
            self.board.poll(self.clock.t)
            self.exchange()
        self.clock.t = end
        self.board.poll(end)
        self.exchange()

    def forward(self, tag: int, command: object, twice: bool = False) -> None:
        frame = command.frame  # type: ignore[attr-defined]
        self.host.send(DaliForward(tag, len(frame), twice, 4, frame.as_integer), self.clock.t)
        self.exchange()


def test_commands_and_queries_reach_the_simulated_gear() -> None:
    b = Bench()
    b.forward(1, DAPC(GearShort(1), 100))
    b.forward(2, QueryActualLevel(GearShort(1)))
    b.forward(3, QueryActualLevel(GearShort(9)))
    b.forward(4, QueryActualLevel(GearBroadcast()))
    assert b.inbox == [
        DaliResult(1, DaliOutcome.NO_ANSWER),
        DaliResult(2, DaliOutcome.BACKWARD, 100),
        DaliResult(3, DaliOutcome.NO_ANSWER),
        DaliResult(4, DaliOutcome.COLLISION),
    ]
    assert b.bus.by_short_address(1).actual_level == 100


def test_send_twice_flag_reaches_the_bus() -> None:
    b = Bench()
    b.forward(1, DTR0(4))
    b.forward(2, SetFadeTime(GearShort(0)), twice=True)
    assert b.bus.by_short_address(0).fade_time == 4


def test_dali_timing_serialises_frames_and_holds_results_for_the_bus_time() -> None:
    b = Bench(dali_timing=True)
    t0 = b.clock.t
    b.forward(1, DAPC(GearShort(0), 50))
    b.forward(2, QueryActualLevel(GearShort(0)))
    b.forward(3, DTR0(4))
    b.forward(4, SetFadeTime(GearShort(0)), twice=True)
    assert b.inbox == []  # nothing is answered before the bus could have done it
    b.advance(COMMAND_S - 0.001)
    assert b.inbox == []
    b.advance(0.002)
    assert [m.tag for m in b.inbox] == [1]  # type: ignore[attr-defined]
    b.advance(QUERY_S + COMMAND_S + SEND_TWICE_S)
    assert b.inbox[1] == DaliResult(2, DaliOutcome.BACKWARD, 50)
    assert len(b.inbox) == 4
    assert b.board.next_deadline() is None or b.board.next_deadline() > t0


def test_bus_events_go_to_the_host() -> None:
    b = Bench()
    b.bus.event_listener = lambda frame: b.board.bus_event(frame, b.clock.t)
    b.clock.t += 2.5
    frame = b.bus.occupancy_event(3)
    b.exchange()
    assert b.inbox == [BusEvent(24, frame.as_integer, 2500, False)]


def test_status_reports_version_uptime_and_counters() -> None:
    b = Bench()
    b.board.receive_data(b"\x55\x66garbage\x00", b.clock.t)
    b.forward(1, QueryActualLevel(GearBroadcast()))
    b.clock.t += 1.0
    b.host.send(StatusRequest(9), b.clock.t)
    b.exchange()
    status = b.inbox[-1]
    assert isinstance(status, BoardStatus)
    assert (status.tag, status.firmware_version, status.uptime_ms) == (9, "1.0.0", 1000)
    assert status.bus_power and status.rx_dropped == 1
    assert (status.dali_frames, status.dali_collisions) == (1, 1)


def test_activation_reboots_into_the_new_version() -> None:
    b = Bench()
    upload = Upload(FirmwareImage(b"new firmware" * 100, "1.1.0"), 500)
    b.host.send(upload.begin(1), b.clock.t)
    b.exchange()
    for chunk in upload.chunks(upload.on_begin(b.inbox.pop())):  # type: ignore[arg-type]
        b.host.send(chunk, b.clock.t)
        b.exchange()
    b.host.send(upload.verify(2), b.clock.t)
    b.exchange()
    assert upload.on_verify(b.inbox.pop()) is None  # type: ignore[arg-type]
    b.host.send(upload.activate(3), b.clock.t)
    b.exchange()
    upload.on_activate(b.inbox.pop())  # type: ignore[arg-type]
    b.advance(0.01)
    assert b.board.reboots == 1 and b.board.firmware_version == "1.1.0"
    assert b.storage.installed == ("1.1.0", b"new firmware" * 100)
    # The old session is gone: the host learns it at its next frame, then starts a new one.
    b.advance(BOOT_TIME_S)
    b.host.send(StatusRequest(4), b.clock.t)
    b.exchange()
    assert b.lost and "restarted" in b.lost[0].reason
    b.host.connect(b.clock.t)
    b.exchange()
    b.host.send(StatusRequest(5), b.clock.t)
    b.exchange()
    status = b.inbox[-1]
    assert isinstance(status, BoardStatus) and status.firmware_version == "1.1.0"
    assert status.uptime_ms == pytest.approx(BOOT_TIME_S * 1000 + 10, abs=1)


@given(
    st.lists(
        st.one_of(
            MESSAGES[DaliForward],
            MESSAGES[StatusRequest],
            MESSAGES[FirmwareBegin],
            MESSAGES[FirmwareChunk],
            MESSAGES[FirmwareVerify],
            MESSAGES[DaliResult],  # a board-to-host message sent the wrong way
        ),
        max_size=25,
    )
)
@settings(max_examples=100, deadline=None)
def test_every_request_gets_exactly_one_answer_with_its_tag(requests: list[Message]) -> None:
    """Invariant: whatever the host sends, in any order (nonsense chunks, verify before
    begin, messages meant for the host), the board never fails and answers every request
    exactly once, with its tag, in order."""
    b = Bench(gear=2)
    for message in requests:
        b.host.send(message, b.clock.t)
        b.exchange()
    expected = [m.tag for m in requests if not isinstance(m, FirmwareChunk | DaliResult)]
    assert [m.tag for m in b.inbox] == expected  # type: ignore[attr-defined]
