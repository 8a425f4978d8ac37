"""``lykta.dali_bus.DaliBus`` over a DALI-master board on a serial line.

Example::

    async with BoardDaliBus.open("/dev/ttyUSB0", name="cabinet-3") as bus:
        level = await send_command(bus, QueryActualLevel(GearShort(1)))

The board executes frames one at a time in the order received, so several coroutines may
send concurrently: the link pipelines the requests and each gets its own answer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Self

from dali.frame import ForwardFrame

from firmware_bridge.connection import DEFAULT_TIMEOUT_S, BoardConnection, BoardUnavailable
from firmware_bridge.link import LinkConfig
from firmware_bridge.messages import DaliForward, DaliOutcome, DaliResult
from lykta.dali_bus import Backward, Collision, DaliReply, NoAnswer

log = logging.getLogger(__name__)


class BusPowerFailure(RuntimeError):
    """The board reports no DALI bus power: the frame was not sent."""


class BoardDaliBus:
    """One DALI bus behind a board (implements ``lykta.dali_bus.DaliBus``).

    ``timeout_s`` bounds the wait for each answer, queueing on the board included.
    """

    def __init__(
        self,
        board: BoardConnection,
        *,
        name: str = "board",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        owns_board: bool = True,
    ) -> None:
        self.name = name
        self.board = board
        self.timeout_s = timeout_s
        self._owns_board = owns_board

    @classmethod
    def open(
        cls,
        url: str,
        *,
        name: str = "board",
        baudrate: int = 115200,
        config: LinkConfig | None = None,
    ) -> Self:
        """A bus on the board at pyserial ``url`` (connects on ``async with``)."""
        return cls(BoardConnection.open(url, baudrate=baudrate, config=config), name=name)

    async def __aenter__(self) -> Self:
        """Start the connection. A board that does not answer yet is not an error here: a
        gateway must start without it; frames fail with ``BoardUnavailable`` until it does."""
        await self.board.start(wait=False)
        try:
            await self.board.wait_up(self.timeout_s)
        except BoardUnavailable as exc:
            log.warning("DALI bus %r: %s; will keep trying", self.name, exc)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def send_frame(
        self, frame: ForwardFrame, *, send_twice: bool = False, priority: int = 4
    ) -> DaliReply:
        """Send one forward frame (16 or 24 bit) through the board and return the reply.

        Raises :class:`BoardUnavailable` if the link fails before the answer (the frame may or
        may not have been sent) and :class:`BusPowerFailure` if the bus has no power.
        """
        bits = len(frame)
        if bits not in (16, 24):
            raise ValueError(f"DALI bus {self.name!r}: {bits}-bit frames are not supported")
        if not 1 <= priority <= 5:
            raise ValueError(f"DALI bus {self.name!r}: priority {priority} outside 1..5")
        data = frame.as_integer
        answer = await self.board.request(
            lambda tag: DaliForward(tag, bits, send_twice, priority, data),
            timeout_s=self.timeout_s,
        )
        if not isinstance(answer, DaliResult):
            raise BoardUnavailable(f"DALI bus {self.name!r}: board answered with {answer!r}")
        match answer.outcome:
            case DaliOutcome.BACKWARD:
                return Backward(answer.value)
            case DaliOutcome.NO_ANSWER:
                return NoAnswer()
            case DaliOutcome.COLLISION:
                return Collision()
            case _:
                raise BusPowerFailure(f"DALI bus {self.name!r}: no bus power, frame not sent")

    async def bus_events(self) -> AsyncIterator[ForwardFrame]:
        """Frames other bus masters sent (e.g. occupancy sensors' 24-bit events)."""
        async for event in self.board.bus_events():
            yield ForwardFrame(event.bits, event.data)

    async def close(self) -> None:
        """Close the board connection (if this bus opened it)."""
        if self._owns_board:
            await self.board.close()
