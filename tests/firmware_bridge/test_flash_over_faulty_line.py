"""The whole image transfer (host link + Upload against the board core) over a faulty line,
with the board power-cycled in between: pure, on a clock the test moves."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from fieldsim.dali import SimulatedDaliBus
from firmware_bridge.board import Board
from firmware_bridge.link import Link, LinkConfig, LinkLost, LinkState, MessageReceived, Role
from firmware_bridge.messages import BoardStatus, FirmwareStatus, StatusRequest
from firmware_bridge.transfer import FirmwareImage, MemoryStorage, Upload

from .test_link import Line, faults

REQUEST_TIMEOUT_S = 3.0


class Host:
    """A scripted host doing what ``firmware_bridge.flash`` does: begin, chunks, verify,
    activate, then ask until the board has rebooted and runs the image; whenever the session
    is lost it starts over with ``begin``, which resumes from the board's offset."""

    def __init__(self, image: FirmwareImage) -> None:
        self.link = Link(Role.HOST, LinkConfig(window=4, max_payload=200, max_tries=8))
        self.upload = Upload(image, 196)
        self.step = "begin"
        self.tag = 0
        self.chunks: list = []
        self.resumed_at: list[int] = []
        self.activated_at = 0.0
        self.asked_at = -1.0
        self.sent_at = 0.0

    def _request(self, build: object, now: float) -> None:
        self.tag += 1
        self.sent_at = now
        self.link.send(build(self.tag), now)  # type: ignore[operator]

    def act(self, now: float) -> None:
        while (e := self.link.next_event()) is not None:
            if isinstance(e, LinkLost) and self.step != "check":
                self.step = "begin"
            elif isinstance(e, MessageReceived):
                self._answer(e.message, now)
        if self.step.startswith("wait-") and now - self.sent_at > REQUEST_TIMEOUT_S:
            # No answer: the board may have rebooted after activating (its answer lost), or
            # the answer is just lost; the version after a reboot tells, else start over.
            if self.step == "wait-activate":
                self.activated_at = self.sent_at
                self.step = "check"
            else:
                self.step = "begin"
        if self.link.state is LinkState.DOWN and self.step != "done":
            self.link.connect(now)
        if self.link.state is not LinkState.UP:
            return
        if self.step == "begin":
            self._request(self.upload.begin, now)
            self.step = "wait-begin"
        while self.step == "chunks" and self.chunks and self.link.backlog < self.link.window:
            self.link.send(self.chunks.pop(0), now)
        if self.step == "chunks" and not self.chunks and self.link.idle:
            self._request(self.upload.verify, now)
            self.step = "wait-verify"
        if self.step == "check" and self.link.idle and now - self.asked_at >= 0.1:
            if now - self.activated_at > REQUEST_TIMEOUT_S:  # never rebooted: start over
                self.step = "begin"
                return
            self.asked_at = now
            self._request(StatusRequest, now)

    def _answer(self, message: object, now: float) -> None:
        if isinstance(message, BoardStatus) and self.step == "check":
            if message.uptime_ms / 1000 < now - self.activated_at:  # rebooted since
                ok = message.firmware_version == self.upload.image.version
                self.step = "done" if ok else "begin"
            return
        if not isinstance(message, FirmwareStatus):
            return
        if self.step == "wait-begin":
            start = self.upload.on_begin(message)
            self.resumed_at.append(start)
            self.chunks = list(self.upload.chunks(start))
            self.step = "chunks"
        elif self.step == "wait-verify":
            resume = self.upload.on_verify(message)
            if resume is None:
                self._request(self.upload.activate, now)
                self.step = "wait-activate"
            else:
                self.chunks = list(self.upload.chunks(resume))
                self.step = "chunks"
        elif self.step == "wait-activate":
            self.upload.on_activate(message)
            self.activated_at = now
            self.step = "check"


@given(
    st.binary(min_size=1, max_size=3000),
    st.lists(faults, max_size=25),
    st.lists(faults, max_size=25),
    st.lists(st.integers(5, 120), max_size=3).map(sorted),
)
@settings(max_examples=100, deadline=None)
@example(bytes(range(256)) * 11, [("drop",)], [("dup",)], [10, 30])  # cut after activation
def test_image_arrives_intact_through_faults_and_power_cycles(
    data: bytes, down: list[tuple], up: list[tuple], power_cycles_after: list[int]
) -> None:
    """Invariant: through a finite run of line faults and board power cycles (flash kept),
    the board ends up running exactly the image, and every resume starts at an offset the
    board really had."""
    now = 0.0
    image = FirmwareImage(data, "5.0.0")
    storage = MemoryStorage()
    bus = SimulatedDaliBus(1, now=lambda: now)
    board = Board(bus, storage, "4.0.0", now=now)
    host = Host(image)
    to_board, to_host = Line(down), Line(up)
    cycles, frames = list(power_cycles_after), 0
    for _ in range(50_000):
        host.act(now)
        if host.step == "done":
            break
        a, b = host.link.data_to_send(), board.data_to_send()
        if cycles and frames >= cycles[0]:
            cycles.pop(0)
            # Power cycle: RAM is lost, the flash (staged and installed image) is kept.
            running = storage.installed[0] if storage.installed else "4.0.0"
            board = Board(bus, storage, running, now=now)
        frames += a.count(b"\x00")
        if a:
            board.receive_data(to_board.carry(a), now)
        if b:
            host.link.receive_data(to_host.carry(b), now)
        if not a and not b:
            deadlines = [d for d in (host.link.next_deadline(), board.next_deadline()) if d]
            now = min(deadlines) if deadlines else now + 0.1
            host.link.poll(now)
            board.poll(now)
    assert host.step == "done"
    assert board.firmware_version == "5.0.0"
    assert storage.installed == ("5.0.0", data)
    assert all(0 <= offset <= len(data) for offset in host.resumed_at)
