"""The link state machine over a simulated faulty line, with a clock the test moves."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.framing import DELIMITER
from firmware_bridge.link import (
    Link,
    LinkConfig,
    LinkError,
    LinkLost,
    LinkState,
    LinkUp,
    MessageReceived,
    Role,
)
from firmware_bridge.messages import FirmwareChunk, Message, StatusRequest

# What the line does to one frame: pass, drop, duplicate, flip a byte, cut it short, or put
# garbage before it.
faults = st.one_of(
    st.just(("pass",)),
    st.just(("drop",)),
    st.just(("dup",)),
    st.tuples(st.just("flip"), st.integers(0, 2000), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 2000)),
    st.tuples(st.just("garbage"), st.binary(min_size=1, max_size=40)),
)


@dataclass
class Line:
    """One direction of a serial line that applies a finite list of faults, then behaves."""

    faults: list[tuple]
    applied: int = 0

    def carry(self, data: bytes) -> bytes:
        out = bytearray()
        for frame in data.split(DELIMITER)[:-1]:
            frame += DELIMITER
            fault = self.faults[self.applied] if self.applied < len(self.faults) else ("pass",)
            self.applied += 1
            match fault:
                case ("drop",):
                    continue
                case ("dup",):
                    out += frame + frame
                case ("flip", where, xor):
                    b = bytearray(frame)
                    b[where % len(b)] ^= xor
                    out += b
                case ("cut", keep):
                    out += frame[: keep % len(frame)] + DELIMITER
                case ("garbage", junk):
                    out += junk + frame
                case _:
                    out += frame
        return bytes(out)


@dataclass
class Pair:
    """A host and a board link joined by two lines; ``run`` moves bytes and time."""

    host: Link
    board: Link
    to_board: Line = field(default_factory=lambda: Line([]))
    to_host: Line = field(default_factory=lambda: Line([]))
    now: float = 0.0
    host_events: list = field(default_factory=list)
    board_events: list = field(default_factory=list)

    def run(self, until: object = lambda: False, max_steps: int = 20_000) -> None:
        for _ in range(max_steps):
            moved = False
            data = self.host.data_to_send()
            if data:
                moved = True
                self.board.receive_data(self.to_board.carry(data), self.now)
            data = self.board.data_to_send()
            if data:
                moved = True
                self.host.receive_data(self.to_host.carry(data), self.now)
            self._collect()
            if until():  # type: ignore[operator]
                return
            if not moved:
                deadlines = [
                    d for d in (self.host.next_deadline(), self.board.next_deadline()) if d
                ]
                if not deadlines:
                    return
                self.now = max(self.now, min(deadlines))
                self.host.poll(self.now)
                self.board.poll(self.now)
                self._collect()

    def _collect(self) -> None:
        while (e := self.host.next_event()) is not None:
            self.host_events.append(e)
        while (e := self.board.next_event()) is not None:
            self.board_events.append(e)


def received(events: list) -> list[Message]:
    return [e.message for e in events if isinstance(e, MessageReceived)]


def connected_pair(**config: object) -> Pair:
    cfg = LinkConfig(**config)  # type: ignore[arg-type]
    pair = Pair(Link(Role.HOST, cfg), Link(Role.BOARD, cfg))
    pair.host.connect(pair.now)
    pair.run(until=lambda: pair.host.state is LinkState.UP)
    assert pair.host.state is LinkState.UP
    return pair


@given(
    st.lists(faults, max_size=30),
    st.lists(faults, max_size=30),
    st.integers(1, 40),
    st.integers(1, 8),
)
@settings(max_examples=200, deadline=None)
def test_exactly_once_in_order_over_a_faulty_line(
    down: list[tuple], up: list[tuple], count: int, window: int
) -> None:
    """Invariant: whatever a finite run of faults does to either direction (loss, duplicates,
    corruption, truncation, garbage), the board receives every message exactly once and in
    order, the session survives, and the host ends with nothing unacknowledged."""
    cfg = LinkConfig(window=window, max_tries=1000)
    pair = Pair(Link(Role.HOST, cfg), Link(Role.BOARD, cfg), Line(down), Line(up))
    pair.host.connect(pair.now)
    sent = [StatusRequest(i) for i in range(count)]
    queue = list(sent)

    def feed() -> bool:
        while queue and pair.host.state is LinkState.UP and pair.host.backlog < window:
            pair.host.send(queue.pop(0), pair.now)
        return not queue and pair.host.idle and pair.host.state is LinkState.UP

    pair.run(until=feed)
    assert received(pair.board_events) == sent
    assert pair.host.idle
    assert not [e for e in pair.host_events + pair.board_events if isinstance(e, LinkLost)]
    assert sum(isinstance(e, LinkUp) for e in pair.board_events) == 1


@given(st.binary(min_size=1, max_size=500))
@settings(max_examples=100, deadline=None)
def test_link_recovers_after_garbage(garbage: bytes) -> None:
    """Invariant: garbage on the line never ends a session; the next message gets through."""
    pair = connected_pair()
    pair.board.receive_data(garbage, pair.now)
    pair.host.receive_data(garbage, pair.now)
    pair.host.send(StatusRequest(7), pair.now)
    pair.board.send(StatusRequest(8), pair.now)
    pair.run(until=lambda: pair.host.idle and pair.board.idle)
    assert received(pair.board_events) == [StatusRequest(7)]
    assert received(pair.host_events) == [StatusRequest(8)]


def test_lost_frame_is_nakked_and_resent_without_waiting_for_the_timer() -> None:
    pair = connected_pair(ack_timeout=10.0)
    pair.to_board = Line([("drop",)])
    for i in range(3):
        pair.host.send(StatusRequest(i), pair.now)
    pair.run(until=lambda: pair.host.idle)
    assert received(pair.board_events) == [StatusRequest(0), StatusRequest(1), StatusRequest(2)]
    assert pair.board.counters.naks_sent == 1
    assert pair.now == 0.0  # recovered by the NAK, not by a timeout


@pytest.mark.parametrize(
    ("host", "board", "expect"),
    [((1, 3), (2, 5), 3), ((1, 1), (1, 2), 1), ((2, 4), (1, 2), 2)],
)
def test_version_negotiation_picks_the_highest_common(
    host: tuple[int, int], board: tuple[int, int], expect: int
) -> None:
    pair = Pair(
        Link(Role.HOST, LinkConfig(min_version=host[0], max_version=host[1], window=4)),
        Link(Role.BOARD, LinkConfig(min_version=board[0], max_version=board[1], max_payload=64)),
    )
    pair.host.connect(0.0)
    pair.run(until=lambda: pair.host.state is LinkState.UP)
    up = [e for e in pair.host_events if isinstance(e, LinkUp)]
    assert up == [LinkUp(expect, 4, 64)]
    assert pair.board.version == expect


def test_no_common_version_is_permanent_and_says_both_ranges() -> None:
    pair = Pair(
        Link(Role.HOST, LinkConfig(min_version=1, max_version=1)),
        Link(Role.BOARD, LinkConfig(min_version=2, max_version=3)),
    )
    pair.host.connect(0.0)
    pair.run()
    (lost,) = [e for e in pair.host_events if isinstance(e, LinkLost)]
    assert lost.permanent
    assert "host speaks 1..1, board 2..3" in lost.reason
    assert pair.host.state is LinkState.DOWN and pair.board.state is LinkState.DOWN


def test_restarted_board_answers_link_down_and_host_gets_unconfirmed_messages() -> None:
    pair = connected_pair()
    pair.board = Link(Role.BOARD)  # power cycle: the board forgot the session
    pair.host.send(StatusRequest(1), pair.now)
    pair.run(until=lambda: pair.host.state is LinkState.DOWN)
    (lost,) = [e for e in pair.host_events if isinstance(e, LinkLost)]
    assert "restarted" in lost.reason
    assert lost.unconfirmed == (StatusRequest(1),)
    assert not lost.permanent


def test_silent_board_exhausts_retries() -> None:
    pair = connected_pair(max_tries=3, ack_timeout=0.1)
    pair.to_board = Line([("drop",)] * 100)
    pair.host.send(StatusRequest(1), pair.now)
    pair.run(until=lambda: pair.host.state is LinkState.DOWN)
    (lost,) = [e for e in pair.host_events if isinstance(e, LinkLost)]
    assert lost.reason == "no acknowledgement for seq 0 after 3 tries"
    assert pair.host.counters.retransmissions == 2
    assert pair.now == pytest.approx(0.3)


def test_unanswered_reset_gives_up_after_max_tries() -> None:
    host = Link(Role.HOST, LinkConfig(max_tries=2, reset_timeout=0.5))
    host.connect(0.0)
    host.data_to_send()
    host.poll(0.5)
    assert host.data_to_send()  # second try
    host.poll(1.0)
    lost = host.next_event()
    assert isinstance(lost, LinkLost) and lost.while_connecting
    assert host.state is LinkState.DOWN


def test_misuse_is_refused_with_a_reason() -> None:
    host = Link(Role.HOST, LinkConfig(max_payload=64))
    with pytest.raises(LinkError, match="link is down"):
        host.send(StatusRequest(1), 0.0)
    with pytest.raises(LinkError, match="only the host"):
        Link(Role.BOARD).connect(0.0)
    pair = connected_pair(max_payload=64)
    with pytest.raises(LinkError, match="exceeds the session's 64"):
        pair.host.send(FirmwareChunk(0, bytes(100)), 0.0)
    with pytest.raises(ValueError, match="window"):
        LinkConfig(window=200)
