"""Firmware bridge: image transfer throughput and the link's latency per DALI command.

1. Throughput: a 32 KiB image flashed to the emulator over a pseudo-terminal with the line
   emulated at 115200 baud 8N1. Baseline: the same emulated line carrying raw bytes with no
   protocol, measured in the same run. Goal: ≥ 0.9 of the line rate.
2. Latency: DALI commands and queries through the board (emulator with real DALI bus time,
   line at 115200 baud) against the same simulated bus driven directly with the same bus time
   (``fieldsim.dali.SimulatedDaliTransport(wire_time=True)``). Goal: < 5 ms added per command.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time

from dali.address import GearShort
from dali.gear.general import DAPC, QueryActualLevel

from fieldsim.dali import SimulatedDaliBus, SimulatedDaliTransport
from firmware_bridge.connection import BoardConnection
from firmware_bridge.driver import LineDriver
from firmware_bridge.emulator import Emulator, EmulatorOptions
from firmware_bridge.flash import flash
from firmware_bridge.framing import Packet, encode_packet
from firmware_bridge.messages import DaliForward, DaliOutcome, DaliResult, Message, MessageType
from firmware_bridge.port import PtyPort, SerialPort
from firmware_bridge.transfer import FirmwareImage
from gateway.dali.board import BoardDaliBus
from lykta.dali_bus import DaliBus, send_command

BAUD = 115200
LINE_RATE = BAUD / 10  # bytes per second, 8N1
IMAGE_SIZE = 32 * 1024
RUNS = 3
COMMANDS = 40


class _Sink:
    """An endpoint that only counts what arrives (the raw-line baseline)."""

    def __init__(self) -> None:
        self.received = 0
        self.done = asyncio.Event()
        self.expect = 0

    def receive_data(self, data: bytes, now: float) -> None:
        self.received += len(data)
        if self.received >= self.expect:
            self.done.set()

    def data_to_send(self) -> bytes:
        return b""

    def poll(self, now: float) -> None:
        pass

    def next_deadline(self) -> float | None:
        return None


async def raw_line_rate(size: int) -> float:
    """Bytes per second the emulated line delivers with no protocol on it."""
    pty = PtyPort()
    host = SerialPort(pty.slave_path, BAUD)
    sink = _Sink()
    sink.expect = size
    driver = LineDriver(pty, sink, line_rate=LINE_RATE)
    driver.start()
    payload = os.urandom(size).replace(b"\x00", b"\x01") + b"\x00"  # one long "frame"
    t0 = time.perf_counter()
    await asyncio.to_thread(host.write, payload[:-1])
    await sink.done.wait()
    elapsed = time.perf_counter() - t0
    await driver.close()
    host.close()
    pty.close()
    return size / elapsed


async def transfer_rate(size: int) -> float:
    """Image bytes per second from begin to verified, through the emulator."""
    bus = SimulatedDaliBus(1, now=time.monotonic)
    options = EmulatorOptions(baudrate=BAUD, line_timing=True)
    async with Emulator(PtyPort(), bus, options) as emulator:
        path = emulator.port.slave_path  # type: ignore[attr-defined]
        async with BoardConnection.open(path, baudrate=BAUD) as board:
            result = await flash(board, FirmwareImage(os.urandom(size), "bench"))
    assert result.resumes == 0, "a clean transfer should not need to resume"
    return size / result.transfer_s


async def command_times(bus: DaliBus) -> tuple[list[float], list[float]]:
    """Round-trip seconds of DAPC commands and QueryActualLevel queries on ``bus``."""
    commands, queries = [], []
    for i in range(COMMANDS):
        t0 = time.perf_counter()
        await send_command(bus, DAPC(GearShort(0), 100 + i))
        t1 = time.perf_counter()
        await send_command(bus, QueryActualLevel(GearShort(0)))
        t2 = time.perf_counter()
        commands.append(t1 - t0)
        queries.append(t2 - t1)
    return commands, queries


async def latency() -> dict[str, tuple[float, float]]:
    """Median (command, query) round trips: the simulated bus driven directly, and through
    the board with and without the 115200-baud line emulated."""
    med = statistics.median
    direct = SimulatedDaliTransport(SimulatedDaliBus(1, now=time.monotonic), wire_time=True)
    d_cmd, d_query = await command_times(direct)
    await direct.close()
    results = {"direct": (med(d_cmd), med(d_query))}
    for name, line_timing in (("board", True), ("board, no line time", False)):
        bus = SimulatedDaliBus(1, now=time.monotonic)
        options = EmulatorOptions(baudrate=BAUD, line_timing=line_timing, dali_timing=True)
        async with Emulator(PtyPort(), bus, options) as emulator:
            path = emulator.port.slave_path  # type: ignore[attr-defined]
            async with BoardDaliBus.open(path, baudrate=BAUD) as board_bus:
                b_cmd, b_query = await command_times(board_bus)
        results[name] = (med(b_cmd), med(b_query))
    return results


def wire_bytes(message: Message) -> int:
    """Bytes one message occupies on the serial line, delimiter included."""
    return len(encode_packet(Packet(1, message.TYPE, 0, message.encode_payload())))


async def run() -> None:
    """Measure and print."""
    raw = [await raw_line_rate(IMAGE_SIZE) for _ in range(RUNS)]
    rates = [await transfer_rate(IMAGE_SIZE) for _ in range(RUNS)]
    raw_med, rate_med = statistics.median(raw), statistics.median(rates)
    print(f"line rate nominal (115200 8N1)      {LINE_RATE:8.0f} B/s")
    print(f"raw emulated line (baseline)        {raw_med:8.0f} B/s  (median of {RUNS})")
    print(f"image transfer, begin to verified   {rate_med:8.0f} B/s  (median of {RUNS})")
    print(f"throughput / measured line rate     {rate_med / raw_med:8.3f}   (goal >= 0.9)")
    print(f"throughput / nominal line rate      {rate_med / LINE_RATE:8.3f}")
    lat = await latency()
    (dc, dq), (bc, bq), (nc, nq) = lat["direct"], lat["board"], lat["board, no line time"]
    print(f"DAPC   direct {dc * 1e3:6.2f} ms  via board {bc * 1e3:6.2f} ms  "
          f"added {(bc - dc) * 1e3:5.2f} ms  ratio {bc / dc:5.3f}  (goal: added < 5 ms)")
    print(f"query  direct {dq * 1e3:6.2f} ms  via board {bq * 1e3:6.2f} ms  "
          f"added {(bq - dq) * 1e3:5.2f} ms  ratio {bq / dq:5.3f}  (median of {COMMANDS})")
    line = sum(
        wire_bytes(m)
        for m in (DaliForward(1, 16, False, 4, 0xFE80), DaliResult(1, DaliOutcome.BACKWARD, 1))
    )
    ack = len(encode_packet(Packet(1, MessageType.ACK, 0, b"")))
    print(f"of which serial line time: forward + result {line} bytes = "
          f"{line / LINE_RATE * 1e3:.2f} ms (+ {ack / LINE_RATE * 1e3:.2f} ms when the host's "
          f"ACK of the last result goes first)")
    print(f"without line timing (software only): DAPC added {(nc - dc) * 1e3:5.2f} ms, "
          f"query added {(nq - dq) * 1e3:5.2f} ms")


def main() -> None:
    """Entry point for ``python -m bench firmware_bridge``."""
    asyncio.run(run())


if __name__ == "__main__":
    main()
