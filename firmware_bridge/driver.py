"""Runs a sans-I/O endpoint (a host :class:`~firmware_bridge.link.Link` or a
:class:`~firmware_bridge.board.Board`) on a :class:`~firmware_bridge.port.Port` in asyncio.

The driver is the only place with a clock (``loop.time()``) and file descriptors. With
``line_rate`` (bytes per second, e.g. ``115200 / 10`` for 115200 baud 8N1) it also emulates the
serial line's speed: received bytes are handed to the endpoint only when they would have
finished arriving, and written bytes leave no faster than the line carries them.

When emulating, the endpoint sees the emulated timeline: a frame arrives at the moment its last
byte would have, a timer fires at the moment it was set for, even if the event loop ran the
callback a little later (a loaded machine, the selector's millisecond rounding). Otherwise
every emulated step (line in, DALI bus time, line out) would add the loop's lateness, which a
real board with its own clock does not have.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from firmware_bridge.framing import DELIMITER
from firmware_bridge.port import Port

log = logging.getLogger(__name__)

#: Writes up to this size go straight to the port from the event loop: a UART driver's buffer
#: (4 KiB on Linux) takes them without blocking, and the thread hop would add latency to every
#: DALI command. Larger writes (image chunks) go through a worker thread.
INLINE_WRITE_MAX = 256


class Endpoint(Protocol):
    """The sans-I/O surface shared by ``Link`` and ``Board``."""

    def receive_data(self, data: bytes, now: float) -> None: ...

    def data_to_send(self) -> bytes: ...

    def poll(self, now: float) -> None: ...

    def next_deadline(self) -> float | None: ...


class LineDriver:
    """Feeds ``endpoint`` from ``port`` and writes its output; runs its timers.

    ``on_step`` is called after every input or timer, before output is flushed, so the owner
    can pull events from the endpoint and send answers in the same step. ``on_port_lost`` is
    called once if reading the port fails (the other side of a pseudo-terminal went away).
    """

    def __init__(
        self,
        port: Port,
        endpoint: Endpoint,
        *,
        on_step: Callable[[float], None] = lambda now: None,
        on_port_lost: Callable[[str], None] = lambda reason: None,
        line_rate: float | None = None,
    ) -> None:
        self.port = port
        self.endpoint = endpoint
        self.on_step = on_step
        self.on_port_lost = on_port_lost
        self.line_rate = line_rate
        self.bytes_in = 0
        self.bytes_out = 0
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._rx_free_at = 0.0
        self._tx_free_at = 0.0
        self._outbox: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue()
        self._virtual = 0.0
        self._writer: asyncio.Task[None] | None = None
        self._reading = False
        self._writing = False
        self._closed = False

    def now(self) -> float:
        """The driver's clock (the event loop's monotonic time, seconds)."""
        return self._loop.time()

    def start(self) -> None:
        """Start reading, writing and timing."""
        self._loop.add_reader(self.port.fileno(), self._on_readable)
        self._reading = True
        self._writer = asyncio.create_task(self._write_loop(), name="firmware-bridge-writer")
        self.step()

    def step(self, at: float | None = None) -> None:
        """Let the owner react, flush output and re-arm the timer (call after any change)."""
        if self._closed:
            return
        now = self._time(at)
        self.on_step(now)
        data = self.endpoint.data_to_send()
        if data:
            self._outbox.put_nowait((data, now))
        self._arm_timer()

    def _time(self, at: float | None) -> float:
        """The time the endpoint sees: real time, or when emulating, the emulated moment
        ``at`` of the event (never earlier than one already used)."""
        if self.line_rate is None:
            return self.now()
        self._virtual = max(self._virtual, self.now() if at is None else at)
        return self._virtual

    async def close(self) -> None:
        """Stop all activity (the port itself is closed by its owner)."""
        self._closed = True
        self._stop_reading()
        if self._timer is not None:
            self._timer.cancel()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def flush(self) -> None:
        """Wait until everything handed to the writer has been written."""
        while not self._outbox.empty() or self._writing:
            await asyncio.sleep(0.001)

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.port.fileno())

    def _on_readable(self) -> None:
        try:
            data = self.port.read_available()
        except OSError as exc:
            self._stop_reading()
            log.warning("serial port lost: %s", exc)
            self.on_port_lost(str(exc))
            return
        if not data:
            return
        self.bytes_in += len(data)
        now = self.now()
        if self.line_rate is None:
            self.endpoint.receive_data(data, now)
            self.step()
            return
        # Each frame is handed over when its last byte would have arrived, after what came
        # before it: what one read returns may be many frames written at once.
        start = 0
        while start < len(data):
            end = data.find(DELIMITER, start)
            end = len(data) if end < 0 else end + 1
            piece = data[start:end]
            start = end
            done = max(self._rx_free_at, now) + len(piece) / self.line_rate
            self._rx_free_at = done
            self._loop.call_at(done, self._deliver, piece, done)

    def _deliver(self, data: bytes, at: float) -> None:
        if self._closed:
            return
        now = self._time(at)
        self.endpoint.receive_data(data, now)
        self.step(now)

    def _arm_timer(self) -> None:
        deadline = self.endpoint.next_deadline()
        if self._timer is not None:
            if deadline is not None and self._timer.when() == deadline:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer, deadline)

    def _on_timer(self, deadline: float) -> None:
        self._timer = None
        if self._closed:
            return
        now = self._time(deadline)
        self.endpoint.poll(now)
        self.step(now)

    async def _write_loop(self) -> None:
        while True:
            data, at = await self._outbox.get()
            self._writing = True
            try:
                while not self._outbox.empty():
                    data += self._outbox.get_nowait()[0]
                if self.line_rate is not None:
                    start = max(self._tx_free_at, at)
                    self._tx_free_at = start + len(data) / self.line_rate
                    await asyncio.sleep(self._tx_free_at - self.now())
                try:
                    if len(data) <= INLINE_WRITE_MAX:
                        self.port.write(data)  # fits any OS buffer: no thread hop needed
                    else:
                        await asyncio.to_thread(self.port.write, data)
                except OSError as exc:
                    log.warning("serial write failed: %s", exc)
                    self.on_port_lost(str(exc))
                    return
                self.bytes_out += len(data)
            finally:
                self._writing = False
