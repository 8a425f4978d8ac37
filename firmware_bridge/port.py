"""Byte ports the asyncio shells read and write: pyserial URLs and pseudo-terminals.

A port is non-blocking for reads (the event loop watches ``fileno()``) and blocking for writes
(the shells write from a worker thread, so a slow real UART never stalls the event loop).
"""

from __future__ import annotations

import os
import select
import tty
from typing import Protocol

import serial


class Port(Protocol):
    """What the shells need from a serial line."""

    def fileno(self) -> int:
        """File descriptor the event loop watches for readability."""
        ...

    def read_available(self) -> bytes:
        """Whatever has arrived, without blocking (empty if nothing)."""
        ...

    def write(self, data: bytes) -> None:
        """Write all of ``data`` (may block until the line takes it)."""
        ...

    def close(self) -> None:
        """Release the port."""
        ...


class SerialPort:
    """A pyserial port opened with ``serial_for_url``: a device path, ``socket://host:port``,
    ``rfc2217://`` and the other pyserial URL handlers."""

    def __init__(self, url: str, baudrate: int = 115200) -> None:
        try:
            self.serial = serial.serial_for_url(url, baudrate=baudrate, timeout=0)
        except (serial.SerialException, ValueError) as exc:
            raise OSError(f"cannot open serial port {url!r}: {exc}") from exc
        self.url = url

    def fileno(self) -> int:
        """See :class:`Port`."""
        return self.serial.fileno()

    def read_available(self) -> bytes:
        """See :class:`Port`."""
        try:
            return self.serial.read(65536)
        except serial.SerialException as exc:
            raise OSError(f"reading {self.url}: {exc}") from exc

    def write(self, data: bytes) -> None:
        """See :class:`Port`."""
        try:
            self.serial.write(data)  # write_timeout None: blocks until all is written
        except serial.SerialException as exc:
            raise OSError(f"writing {self.url}: {exc}") from exc

    def close(self) -> None:
        """See :class:`Port` (may block briefly: pyserial pauses after closing a socket)."""
        # pyserial's socket:// handler skips closing a socket whose shutdown fails (the peer
        # already went away) and leaks it: close it here too.
        sock = getattr(self.serial, "_socket", None)
        self.serial.close()
        if sock is not None:
            sock.close()


class PtyPort:
    """The master side of a pseudo-terminal pair; ``slave_path`` is what the other end opens.

    The slave is kept open here too, so the master does not see a hang-up while the other end
    closes and reopens it (a host restarting, an emulator being restarted).
    """

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing: a byte pipe like a UART
        os.set_blocking(self.master, False)
        self.slave_path = os.ttyname(self._slave)

    def fileno(self) -> int:
        """See :class:`Port`."""
        return self.master

    def read_available(self) -> bytes:
        """See :class:`Port`."""
        try:
            return os.read(self.master, 65536)
        except BlockingIOError:
            return b""

    def write(self, data: bytes) -> None:
        """See :class:`Port`."""
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.master, view)
            except BlockingIOError:
                select.select([], [self.master], [], 1.0)
                continue
            view = view[n:]

    def close(self) -> None:
        """See :class:`Port` (closing twice is harmless)."""
        if self.master >= 0:
            os.close(self.master)
            os.close(self._slave)
            self.master = self._slave = -1
