"""The board emulator: the board's firmware (:class:`firmware_bridge.board.Board`) on a serial
port or a fresh pseudo-terminal, with the field simulator's DALI bus behind it.

Used by ``lykta firmware emulate``, the tests and the benchmarks. The field simulator is a test
and demo tool; production code never imports this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dali.frame import ForwardFrame

from firmware_bridge.board import Board, FrameProcessor
from firmware_bridge.driver import LineDriver
from firmware_bridge.file_storage import FileStorage
from firmware_bridge.link import LinkConfig
from firmware_bridge.port import Port, PtyPort, SerialPort
from firmware_bridge.transfer import MemoryStorage


@dataclass(frozen=True, slots=True)
class EmulatorOptions:
    """How to emulate: ``baudrate`` with ``line_timing`` limits the serial line to that speed
    (8N1: ten bits per byte); ``dali_timing`` takes real DALI bus time per transaction."""

    baudrate: int = 115200
    line_timing: bool = False
    dali_timing: bool = False
    state_dir: Path | None = None
    link: LinkConfig = LinkConfig()


class Emulator:
    """One emulated board on one port; ``async with`` runs it in the background."""

    def __init__(self, port: Port, bus: FrameProcessor, options: EmulatorOptions) -> None:
        self.port = port
        self.bus = bus
        self.options = options
        self.storage: FileStorage | MemoryStorage = (
            FileStorage(options.state_dir) if options.state_dir else MemoryStorage()
        )
        version = (
            self.storage.installed_version()
            if isinstance(self.storage, FileStorage)
            else "0.0.0-factory"
        )
        self.board = Board(
            bus,
            self.storage,
            version,
            now=time.monotonic(),  # the event loop's clock: the driver feeds it from here on
            link_config=options.link,
            dali_timing=options.dali_timing,
        )
        self._driver: LineDriver | None = None
        self.port_lost = asyncio.Event()

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start serving the port."""
        rate = self.options.baudrate / 10 if self.options.line_timing else None
        self._driver = LineDriver(
            self.port, self.board, on_port_lost=self._lost, line_rate=rate
        )
        listener = getattr(self.bus, "event_listener", "absent")
        if listener != "absent":
            self.bus.event_listener = self._on_bus_event  # type: ignore[attr-defined]
        self._driver.start()

    def _on_bus_event(self, frame: ForwardFrame) -> None:
        if self._driver is not None:
            self.board.bus_event(frame, self._driver.now())
            self._driver.step()

    def _lost(self, reason: str) -> None:
        self.port_lost.set()

    async def close(self) -> None:
        """Stop serving; the port is closed."""
        if self._driver is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._driver.flush(), 1.0)
            await self._driver.close()
        self.port.close()
        if isinstance(self.storage, FileStorage):
            self.storage.close()


def simulated_bus(gear: int, groups: Mapping[int, list[int]] | None = None) -> FrameProcessor:
    """The field simulator's DALI bus with ``gear`` luminaires on the wall clock."""
    from fieldsim.dali import SimulatedDaliBus  # demo/test tool: imported only when emulating

    return SimulatedDaliBus(gear, now=time.monotonic, groups=groups)


def open_port(port: str | None, baudrate: int) -> tuple[Port, str]:
    """Open ``port`` (a pyserial URL) or, when ``None``, a new pseudo-terminal.

    Returns the port and the path the host should open.
    """
    if port is None:
        pty = PtyPort()
        return pty, pty.slave_path
    return SerialPort(port, baudrate), port


async def run_emulator(
    port: Port,
    bus: FrameProcessor,
    options: EmulatorOptions,
    on_ready: Callable[[], None] = lambda: None,
) -> None:
    """Serve until cancelled or the port is lost; ``on_ready`` is called once serving."""
    async with Emulator(port, bus, options) as emulator:
        on_ready()
        await emulator.port_lost.wait()
