"""The gateway's connection to a DALI-master board: the asyncio shell around the host link.

Example::

    async with BoardConnection.open("/dev/ttyUSB0") as board:   # or "socket://10.0.0.5:7000"
        status = await board.status()
        print(status.firmware_version)

The connection keeps the link up by itself: when the board restarts or stops answering, it
starts a new session (link reset) and keeps trying until closed. Requests in flight when a
session ends fail with :class:`BoardUnavailable`; the caller decides whether to repeat them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Self

from firmware_bridge.driver import LineDriver
from firmware_bridge.link import (
    Link,
    LinkConfig,
    LinkLost,
    LinkState,
    LinkUp,
    MessageReceived,
    Role,
)
from firmware_bridge.messages import BoardStatus, BusEvent, Message, StatusRequest
from firmware_bridge.port import Port, SerialPort

#: Pause before trying again when the board did not answer a whole round of link resets.
RECONNECT_PAUSE_S = 1.0
#: How long callers wait for a session or an answer unless told otherwise.
DEFAULT_TIMEOUT_S = 5.0


class BoardUnavailable(ConnectionError):
    """No session with the board, or it ended before the answer came."""


class BoardConnection:
    """One serial line to one board (see the module docstring)."""

    def __init__(
        self,
        port: Port,
        *,
        config: LinkConfig | None = None,
        reopen: Callable[[], Port] | None = None,
    ) -> None:
        """Use ``port``; when reading or writing it fails (a USB adapter unplugged, a serial
        server restarted) and ``reopen`` is given, open a new port with it every second until
        that works, then start a new session. Without ``reopen`` a lost port is final."""
        self.port = port
        self._reopen = reopen
        self._reopening: asyncio.Task[None] | None = None
        self._port_down = False
        self.link = Link(Role.HOST, config or LinkConfig())
        self.last_loss: str | None = None
        self.sessions = 0
        self._driver: LineDriver | None = None
        self._pending: dict[int, asyncio.Future[Message]] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._events: asyncio.Queue[BusEvent | None] = asyncio.Queue(maxsize=1024)
        self._next_tag = 1
        self._fatal: str | None = None
        self._closed = False
        self._retry: asyncio.TimerHandle | None = None

    @classmethod
    def open(cls, url: str, *, baudrate: int = 115200, config: LinkConfig | None = None) -> Self:
        """A connection over a pyserial URL (device path, ``socket://``, ``rfc2217://``…).

        Unless ``config`` says otherwise, timers allow for frames taking their time at
        ``baudrate`` (8N1).
        """
        if config is None:
            config = LinkConfig(line_rate=baudrate / 10)
        return cls(
            SerialPort(url, baudrate), config=config, reopen=lambda: SerialPort(url, baudrate)
        )

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, timeout_s: float = DEFAULT_TIMEOUT_S, *, wait: bool = True) -> None:
        """Start the line and (with ``wait``) wait for the first session; without ``wait``
        the connection keeps trying in the background."""
        self._driver = LineDriver(
            self.port, self.link, on_step=self._on_step, on_port_lost=self._on_port_lost
        )
        self._driver.start()
        self.link.connect(self._driver.now())
        self._driver.step()
        if not wait:
            return
        try:
            await self.wait_up(timeout_s)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """End the connection; pending requests fail with :class:`BoardUnavailable`."""
        if self._closed:
            return
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
        if self._reopening is not None:
            self._reopening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reopening
        if self._driver is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._driver.flush(), 1.0)
            await self._driver.close()
        self._fail_pending("connection closed")
        self._wake()
        if self._events.full():
            self._events.get_nowait()
        self._events.put_nowait(None)  # ends bus_events() iterations
        with contextlib.suppress(OSError):
            await asyncio.to_thread(self.port.close)

    @property
    def is_up(self) -> bool:
        """True while a session with the board exists."""
        return self.link.state is LinkState.UP

    async def wait_up(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Wait for a session; raise :class:`BoardUnavailable` saying why there is none."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while not self.is_up:
            self._check_usable()
            left = end - loop.time()
            if left <= 0:
                why = f" (last: {self.last_loss})" if self.last_loss else ""
                raise BoardUnavailable(
                    f"no link to the board on {self._where} in {timeout_s} s{why}"
                )
            await self._wait_change(left)

    async def reconnect(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Start a new session now (e.g. after the board was told to reboot) and wait for it."""
        self._check_usable()
        assert self._driver is not None
        self.link.connect(self._driver.now())
        self._driver.step()
        await self.wait_up(timeout_s)

    # -- messages -------------------------------------------------------------------------

    async def request(
        self, build: Callable[[int], Message], *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> Message:
        """Send the message ``build(tag)`` and return the board's answer carrying that tag."""
        await self.wait_up(timeout_s)
        assert self._driver is not None
        tag = self._next_tag
        self._next_tag = self._next_tag % 0xFFFF + 1
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[tag] = future
        try:
            self.link.send(build(tag), self._driver.now())
            self._driver.step()
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise BoardUnavailable(
                f"no answer from the board on {self._where} within {timeout_s} s"
            ) from None
        finally:
            self._pending.pop(tag, None)

    async def send(self, message: Message, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> int:
        """Queue a message that has no answer, waiting for room in the link's window.

        Returns the session number it was sent in (see :meth:`drain`).
        """
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        await self.wait_up(timeout_s)
        while self.link.backlog >= self.link.window:
            left = end - loop.time()
            if left <= 0:
                raise BoardUnavailable(f"board on {self._where} acknowledges nothing")
            await self._wait_change(left)
            if not self.is_up:
                raise BoardUnavailable(f"link lost: {self.last_loss}")
        assert self._driver is not None
        self.link.send(message, self._driver.now())
        self._driver.step()
        return self.sessions

    async def drain(self, session: int, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Wait until everything sent is acknowledged; fail if session ``session`` ended."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while True:
            if self.sessions != session or not self.is_up:
                raise BoardUnavailable(f"link lost before delivery: {self.last_loss}")
            if self.link.idle:
                return
            left = end - loop.time()
            if left <= 0:
                raise BoardUnavailable(f"board on {self._where} acknowledges nothing")
            await self._wait_change(left)

    async def status(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> BoardStatus:
        """The board's health: bus power, error counters, firmware version, uptime."""
        answer = await self.request(StatusRequest, timeout_s=timeout_s)
        if not isinstance(answer, BoardStatus):
            raise BoardUnavailable(f"board answered a status request with {answer!r}")
        return answer

    async def bus_events(self) -> AsyncIterator[BusEvent]:
        """Frames the board heard from other bus masters, as they come."""
        while not self._closed:
            event = await self._events.get()
            if event is None:
                return
            yield event

    # -- internals ------------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return str(getattr(self.port, "url", None) or getattr(self.port, "slave_path", "the port"))

    def _check_usable(self) -> None:
        if self._closed:
            raise BoardUnavailable("connection closed")
        if self._fatal is not None:
            raise BoardUnavailable(self._fatal)

    async def _wait_change(self, timeout_s: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            pass
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(future)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def _on_step(self, now: float) -> None:
        changed = False
        while (event := self.link.next_event()) is not None:
            changed = True
            if isinstance(event, MessageReceived):
                self._on_message(event.message)
            elif isinstance(event, LinkUp):
                self.sessions += 1
            elif isinstance(event, LinkLost):
                self._on_lost(event, now)
        # Acknowledgements free window space without producing events: wake senders anyway.
        if changed or self._waiters:
            self._wake()

    def _on_message(self, message: Message) -> None:
        if isinstance(message, BusEvent):
            if self._events.full():
                self._events.get_nowait()  # keep the newest: drop the oldest
            self._events.put_nowait(message)
            return
        tag = getattr(message, "tag", None)
        future = self._pending.get(tag) if tag is not None else None
        if future is not None and not future.done():
            future.set_result(message)

    def _on_lost(self, event: LinkLost, now: float) -> None:
        self.last_loss = event.reason
        self._fail_pending(event.reason)
        if self._closed or self._port_down or self.link.state is not LinkState.DOWN:
            return  # closing, no port to talk on, or a new session is already being set up
        if event.permanent:
            self._fatal = event.reason
        elif event.while_connecting:
            loop = asyncio.get_running_loop()
            self._retry = loop.call_later(RECONNECT_PAUSE_S, self._retry_connect)
        else:
            self.link.connect(now)  # the board restarted or went silent: new session now

    def _retry_connect(self) -> None:
        self._retry = None
        if self._closed or self._port_down or self._driver is None:
            return
        if self.link.state is not LinkState.DOWN:
            return
        self.link.connect(self._driver.now())
        self._driver.step()

    def _on_port_lost(self, reason: str) -> None:
        if self._port_down or self._closed:
            return
        self._port_down = True
        message = f"serial port {self._where} lost: {reason}"
        self.last_loss = message
        if self._driver is not None:
            self.link.disconnect(message)
            self._on_step(self._driver.now())
        self._fail_pending(message)
        if self._reopen is None:
            self._fatal = message
        else:
            self._reopening = asyncio.get_running_loop().create_task(self._reopen_port())
        self._wake()

    async def _reopen_port(self) -> None:
        assert self._reopen is not None
        if self._driver is not None:
            await self._driver.close()
        with contextlib.suppress(OSError):
            await asyncio.to_thread(self.port.close)
        while not self._closed:
            await asyncio.sleep(RECONNECT_PAUSE_S)
            try:
                port = self._reopen()
            except OSError as exc:
                self.last_loss = str(exc)
                continue
            self.port = port
            self._port_down = False
            self._driver = LineDriver(
                port, self.link, on_step=self._on_step, on_port_lost=self._on_port_lost
            )
            self._driver.start()
            self.link.connect(self._driver.now())
            self._driver.step()
            return

    def _fail_pending(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BoardUnavailable(f"link to the board lost: {reason}"))
