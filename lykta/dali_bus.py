"""The ``DaliBus`` interface every DALI transport implements.

A transport moves one DALI forward frame onto the wire and reports what came back. It knows
nothing about luminaires, groups or programs; the gateway builds on top of it with python-dali
commands (``dali.gear.general.DAPC`` and friends), whose ``.frame``, ``.sendtwice`` and
``.response`` carry everything a transport needs.

Transports: the firmware bridge board (``gateway.dali.board``), python-dali's serial
driver for Lunatone interfaces, and the field simulator's in-process bus (tests, demo).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from dali.command import Command, Response
from dali.frame import BackwardFrame, BackwardFrameError, ForwardFrame


@dataclass(frozen=True, slots=True)
class Backward:
    """An 8-bit backward frame answered by gear (``value`` 0–255)."""

    value: int


@dataclass(frozen=True, slots=True)
class NoAnswer:
    """No backward frame within the DALI reply window (22 Te – 10.5 ms)."""


@dataclass(frozen=True, slots=True)
class Collision:
    """Several gear answered at once, or the backward frame was malformed (framing error)."""


DaliReply = Backward | NoAnswer | Collision

MAX_GEAR_PER_BUS = 64  # short addresses 0..63 (IEC 62386-102)


@runtime_checkable
class DaliBus(Protocol):
    """One DALI bus. Implementations serialise access: one frame on the wire at a time."""

    name: str

    async def send_frame(
        self, frame: ForwardFrame, *, send_twice: bool = False, priority: int = 4
    ) -> DaliReply:
        """Send one forward frame (16 or 24 bit) and return the reply.

        ``send_twice`` sends the frame twice within 100 ms, as configuration commands
        require. ``priority`` is the DALI transmission priority 1 (highest) to 5.
        """
        ...

    def bus_events(self) -> AsyncIterator[ForwardFrame]:
        """Frames other bus masters sent (e.g. 24-bit occupancy sensor events, Part 303)."""
        ...

    async def close(self) -> None:
        """Release the transport."""
        ...


async def send_command(bus: DaliBus, command: Command, *, priority: int = 4) -> Response | None:
    """Send a python-dali ``command`` on ``bus``; return its typed response, if it has one."""
    reply = await bus.send_frame(command.frame, send_twice=command.sendtwice, priority=priority)
    if command.response is None:
        return None
    if isinstance(reply, Backward):
        return command.response(BackwardFrame(reply.value))
    if isinstance(reply, Collision):
        return command.response(BackwardFrameError(255))
    return command.response(None)
