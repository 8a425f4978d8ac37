"""A simulated Lunatone DALI RS232 LUBA interface on a pseudo-terminal.

The gateway opens ``emulator.port`` with python-dali's ``luba232:`` driver (through
:class:`gateway.dali.lunatone.PythonDaliBus`) exactly as it would open the real interface on
``/dev/ttyUSB0``. Behind the LUBA protocol sits a :class:`fieldsim.dali.SimulatedDaliBus`.

Implemented from the LUBA protocol as python-dali speaks it (frames ``'Y' cmd len data xor``):
QUERY DEVICE INFO, READ/WRITE SETTINGS, READ STATUS, ADD DALI FRAME TO TX BUFFER (with send-twice),
and EVENT messages for transmitted frames (type 0), received backward frames (type 2, 8 bits),
framing errors on collisions (type 2, info 63) and frames from other bus masters such as
occupancy sensor events (type 2, 24 bits).
"""

from __future__ import annotations

import asyncio
import os
import tty
from functools import reduce
from operator import xor

from dali.frame import ForwardFrame

from fieldsim.dali import SimulatedDaliBus
from lykta.dali_bus import Backward, Collision

_START = 0x59
_QUERY_DEVICE_INFO = 0x20
_READ_WRITE_SETTINGS = 0x2A
_READ_STATUS = 0x2C
_EVENT = 0x31
_ADD_DALI_FRAME = 0x32
ARTICLE_NUMBER = 24166096  # a LUBA RS232 article python-dali is tested with


def _message(cmd: int, payload: list[int]) -> bytes:
    body = [cmd, len(payload), *payload]
    return bytes([_START, *body, reduce(xor, body)])


class LubaEmulator:
    """A LUBA RS232 interface in front of a simulated DALI bus (see module docstring)."""

    def __init__(self, bus: SimulatedDaliBus) -> None:
        self.bus = bus
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._buffer = bytearray()
        self._tx_id = 0
        self._tick = 0
        self._settings = [0, 0, 0]
        self._loop: asyncio.AbstractEventLoop | None = None
        self.frames_sent = 0

    def start(self) -> None:
        """Start answering (in the running event loop); bus events go out as LUBA events."""
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._master, self._on_readable)
        self.bus.event_listener = self._bus_event

    def close(self) -> None:
        """Stop and close the pseudo-terminal."""
        if self._loop is not None:
            self._loop.remove_reader(self._master)
            self._loop = None
        self.bus.event_listener = None
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def _write(self, data: bytes) -> None:
        os.write(self._master, data)

    def _event(self, status: int, data: list[int]) -> bytes:
        self._tick = (self._tick + 1) & 0xFFFF
        return _message(_EVENT, [self._tick >> 8, self._tick & 0xFF, 0, status, *data])

    def _bus_event(self, frame: ForwardFrame) -> None:
        self._write(self._event((2 << 6) | len(frame), list(frame.as_byte_sequence)))

    def _on_readable(self) -> None:
        try:
            self._buffer += os.read(self._master, 4096)
        except OSError:
            return
        while True:
            start = self._buffer.find(_START)
            if start < 0:
                self._buffer.clear()
                return
            del self._buffer[:start]
            if len(self._buffer) < 3 or len(self._buffer) < 4 + self._buffer[2]:
                return
            n = self._buffer[2]
            message = bytes(self._buffer[: 4 + n])
            del self._buffer[: 4 + n]
            if reduce(xor, message[1:-1]) != message[-1]:
                continue  # the real interface drops a message with a bad checksum
            self._handle(message[1], list(message[3:-1]))

    def _handle(self, cmd: int, payload: list[int]) -> None:
        if cmd == _QUERY_DEVICE_INFO:
            gtin = list((4052899000001).to_bytes(6, "big"))
            ident = list((1).to_bytes(8, "big"))
            self._write(_message(cmd + 1, [*gtin, *ident, 1, 1,
                                           *ARTICLE_NUMBER.to_bytes(4, "big")]))
        elif cmd == _READ_WRITE_SETTINGS:
            if len(payload) == 3:
                self._settings = payload
            self._write(_message(cmd + 1, self._settings))
        elif cmd == _READ_STATUS:
            self._write(_message(cmd + 1, [0, 0, 0, 0, 0, 0]))  # bus powered
        elif cmd == _ADD_DALI_FRAME:
            self._add_frame(payload)

    def _add_frame(self, payload: list[int]) -> None:
        _line, bits, mode, *data = payload
        nbytes = bits // 8
        frame = ForwardFrame(bits, data[:nbytes])
        send_twice = bool(mode & 0x80)
        self._tx_id = (self._tx_id + 1) & 0xFF
        self._write(_message(_ADD_DALI_FRAME + 1, [self._tx_id, 0]))
        reply = self.bus.process(frame, send_twice=send_twice)
        self.frames_sent += 2 if send_twice else 1
        for _ in range(2 if send_twice else 1):
            self._write(self._event(0, [self._tx_id, *frame.as_byte_sequence]))
        if isinstance(reply, Backward):
            self._write(self._event((2 << 6) | 8, [reply.value]))
        elif isinstance(reply, Collision):
            self._write(self._event((2 << 6) | 63, []))
