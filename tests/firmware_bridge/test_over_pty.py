"""The gateway side and the board emulator over real pseudo-terminals."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from dali.address import GearBroadcast, GearShort
from dali.gear.general import DAPC, DTR0, QueryActualLevel, QueryFadeTimeFadeRate, SetFadeTime

from fieldsim.dali import SimulatedDaliBus
from firmware_bridge.connection import BoardConnection, BoardUnavailable
from firmware_bridge.emulator import Emulator, EmulatorOptions
from firmware_bridge.file_storage import FileStorage
from firmware_bridge.flash import flash
from firmware_bridge.link import LinkConfig
from firmware_bridge.port import PtyPort, SerialPort
from firmware_bridge.transfer import FirmwareImage, TransferFailed
from gateway.dali.board import BoardDaliBus, BusPowerFailure
from gateway.dali.timing import QUERY_S
from lykta.dali_bus import Backward, Collision, DaliBus, NoAnswer, send_command

# `lykta firmware …` through its own sub-app: these tests then depend on nothing but the
# firmware CLI (the other sub-apps change under other engineers' hands).
FIRMWARE_CLI = [sys.executable, "-c", "from lykta.cli.firmware import app; app()"]


@pytest.fixture
async def emulated() -> AsyncIterator[tuple[Emulator, SimulatedDaliBus]]:
    """An emulated board (in this process) on a fresh pseudo-terminal."""
    bus = SimulatedDaliBus(4, now=time.monotonic)
    async with Emulator(PtyPort(), bus, EmulatorOptions(dali_timing=True)) as emulator:
        yield emulator, bus


async def test_dali_commands_and_queries_through_the_emulator(
    emulated: tuple[Emulator, SimulatedDaliBus],
) -> None:
    emulator, sim = emulated
    async with BoardDaliBus.open(emulator.port.slave_path, name="cabinet") as bus:  # type: ignore[attr-defined]
        assert isinstance(bus, DaliBus)
        await send_command(bus, DAPC(GearShort(2), 120))
        t0 = time.monotonic()
        level = await send_command(bus, QueryActualLevel(GearShort(2)))
        assert time.monotonic() - t0 >= QUERY_S  # the board took real DALI bus time
        assert level is not None and level.value == 120
        assert await bus.send_frame(QueryActualLevel(GearShort(40)).frame) == NoAnswer()
        assert await bus.send_frame(QueryActualLevel(GearBroadcast()).frame) == Collision()
        # A configuration command needs send-twice; the flag travels over the line.
        await send_command(bus, DTR0(3))
        await send_command(bus, SetFadeTime(GearShort(1)))
        fade = await send_command(bus, QueryFadeTimeFadeRate(GearShort(1)))
        assert fade is not None and fade.raw_value.as_integer >> 4 == 3
        # Concurrent senders each get their own answer.
        answers = await asyncio.gather(
            *(send_command(bus, QueryActualLevel(GearShort(a))) for a in range(4))
        )
        assert [a.value for a in answers] == [254, 254, 120, 254]  # type: ignore[union-attr]
        status = await bus.board.status()
        assert status.dali_frames == sim.frames


async def test_bus_events_reach_the_gateway(emulated: tuple[Emulator, SimulatedDaliBus]) -> None:
    emulator, sim = emulated
    async with BoardDaliBus.open(emulator.port.slave_path) as bus:  # type: ignore[attr-defined]
        events = bus.bus_events()
        frame = sim.occupancy_event(5)
        got = await asyncio.wait_for(anext(events), 5)
        assert (len(got), got.as_integer) == (24, frame.as_integer)


async def test_socket_url_through_a_serial_server(
    emulated: tuple[Emulator, SimulatedDaliBus],
) -> None:
    """``socket://`` works like a port: socat plays the serial-to-TCP server in front of the
    emulated board's pseudo-terminal."""
    emulator, _ = emulated
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        tcp_port = s.getsockname()[1]
    server = await asyncio.create_subprocess_exec(
        "socat", f"TCP-LISTEN:{tcp_port},bind=127.0.0.1,reuseaddr",
        f"FILE:{emulator.port.slave_path},raw,echo=0",  # type: ignore[attr-defined]
    )
    try:
        for _ in range(200):  # until socat listens (opening the URL connects at once)
            try:
                board = BoardConnection.open(f"socket://127.0.0.1:{tcp_port}")
                break
            except OSError:
                await asyncio.sleep(0.02)
        else:
            pytest.fail("socat did not start listening")
        async with BoardDaliBus(board) as bus:
            await send_command(bus, DAPC(GearShort(0), 77))
            level = await send_command(bus, QueryActualLevel(GearShort(0)))
            assert level is not None and level.value == 77
    finally:
        if server.returncode is None:
            server.terminate()
        await server.wait()


async def test_connection_survives_a_serial_server_restart(
    emulated: tuple[Emulator, SimulatedDaliBus],
) -> None:
    """The TCP serial server in front of the board goes away and comes back on the same
    address: the connection reopens the port and starts a new session by itself."""
    emulator, _ = emulated
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        tcp_port = s.getsockname()[1]
    argv = ["socat", f"TCP-LISTEN:{tcp_port},bind=127.0.0.1,reuseaddr",
            f"FILE:{emulator.port.slave_path},raw,echo=0"]  # type: ignore[attr-defined]
    server = await asyncio.create_subprocess_exec(*argv)
    try:
        for _ in range(200):
            try:
                board = BoardConnection.open(f"socket://127.0.0.1:{tcp_port}")
                break
            except OSError:
                await asyncio.sleep(0.02)
        else:
            pytest.fail("socat did not start listening")
        async with BoardDaliBus(board) as bus:
            await send_command(bus, DAPC(GearShort(0), 50))
            sessions = board.sessions
            server.terminate()
            await server.wait()
            await asyncio.sleep(0.2)  # the connection notices the closed socket
            assert not board.is_up and "lost" in (board.last_loss or "")
            server = await asyncio.create_subprocess_exec(*argv)
            level = await send_command(bus, QueryActualLevel(GearShort(0)))  # waits for it
            assert level is not None and level.value == 50
            assert board.sessions == sessions + 1
    finally:
        if server.returncode is None:
            server.terminate()
        await server.wait()


async def test_no_bus_power_is_an_error_not_an_answer(
    emulated: tuple[Emulator, SimulatedDaliBus],
) -> None:
    emulator, _ = emulated
    emulator.board.bus_power = False
    async with BoardDaliBus.open(emulator.port.slave_path, name="c7") as bus:  # type: ignore[attr-defined]
        with pytest.raises(BusPowerFailure, match="'c7': no bus power"):
            await bus.send_frame(DAPC(GearShort(0), 10).frame)
        assert not (await bus.board.status()).bus_power


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


async def _start_emulator(
    port: str, state: Path, baud: int, log: Path
) -> asyncio.subprocess.Process:
    with log.open("ab") as stderr:
        proc = await asyncio.create_subprocess_exec(
            *FIRMWARE_CLI, "emulate", "--port", port, "--state-dir", str(state),
            "--baud", str(baud), "--line-timing",
            stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert b"emulating DALI-master board on" in line, (line, _read(log))
    return proc


async def test_transfer_cut_half_way_by_killing_the_emulator_resumes(tmp_path: Path) -> None:
    """The emulator process is killed mid-transfer and restarted on the same line; the flash
    resumes from the board's stored offset and ends with the right image running."""
    baud = 57600
    image = FirmwareImage(os.urandom(24_000), "4.2.0")
    pty = PtyPort()  # the gateway holds the master; the emulator opens the slave by path
    state = tmp_path / "board"
    log = tmp_path / "emulator.log"
    emulator = await _start_emulator(pty.slave_path, state, baud, log)
    progress: list[int] = []
    half = asyncio.Event()

    def on_progress(done: int, total: int) -> None:
        progress.append(done)
        if done >= total * 0.4:
            half.set()

    config = LinkConfig(line_rate=baud / 10, ack_timeout=0.2, max_tries=3)
    try:
        async with BoardConnection(pty, config=config) as board:
            transfer = asyncio.create_task(flash(board, image, progress=on_progress))
            await asyncio.wait_for(half.wait(), 30)
            emulator.send_signal(signal.SIGKILL)
            await emulator.wait()
            staged = (state / "staged.bin").stat().st_size
            assert 0 < staged < image.size, (staged, progress[-3:], _read(log))
            emulator = await _start_emulator(pty.slave_path, state, baud, log)
            result = await asyncio.wait_for(transfer, 60)
    finally:
        if emulator.returncode is None:
            emulator.terminate()
            await emulator.wait()
    assert result.running_version == "4.2.0"
    assert result.resumes >= 1
    assert max(result.resumed_from) > 0  # resumed, did not start over
    flash_chip = FileStorage(state)
    installed = flash_chip.installed_image()
    flash_chip.close()
    assert installed is not None and hashlib.sha256(installed).digest() == image.sha256


class _ImageWithWrongHash(FirmwareImage):
    @property
    def sha256(self) -> bytes:
        return hashlib.sha256(b"another image").digest()


async def test_failed_verification_never_activates(
    emulated: tuple[Emulator, SimulatedDaliBus],
) -> None:
    emulator, _ = emulated
    async with BoardConnection.open(emulator.port.slave_path) as board:  # type: ignore[attr-defined]
        with pytest.raises(TransferFailed, match="HASH_MISMATCH"):
            await flash(board, _ImageWithWrongHash(os.urandom(3000), "6.6.6"))
        status = await board.status()
    assert status.firmware_version == "0.0.0-factory"
    assert emulator.board.reboots == 0
    assert emulator.storage.staged() is None  # the bad image is gone


async def test_cli_flash_and_info(emulated: tuple[Emulator, SimulatedDaliBus],
                                  tmp_path: Path) -> None:
    emulator, _ = emulated
    port = emulator.port.slave_path  # type: ignore[attr-defined]
    image = tmp_path / "7.0.1.bin"  # no --version: the file name gives it
    image.write_bytes(os.urandom(5000))
    proc = await asyncio.create_subprocess_exec(
        *FIRMWARE_CLI, "flash", "--port", port, str(image),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out
    assert b"running version: 7.0.1" in out
    proc = await asyncio.create_subprocess_exec(
        *FIRMWARE_CLI, "info", "--port", port,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out
    assert b"firmware version  7.0.1" in out and b"DALI bus power    present" in out


async def test_cli_reports_a_missing_port_clearly(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        *FIRMWARE_CLI, "info", "--port", str(tmp_path / "no-such-tty"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert b"cannot open serial port" in out and b"no-such-tty" in out


async def test_bus_starts_without_the_board_and_works_once_it_answers() -> None:
    """A gateway starts even if its board is not there yet; frames work once it is."""
    line = PtyPort()  # the gateway's end; the board will open the other end later
    async with BoardDaliBus(BoardConnection(line), timeout_s=1.0) as bus:
        with pytest.raises(BoardUnavailable, match="no link to the board"):
            await bus.send_frame(DAPC(GearShort(0), 1).frame)
        sim = SimulatedDaliBus(1, now=time.monotonic)
        async with Emulator(SerialPort(line.slave_path), sim, EmulatorOptions()):
            for _ in range(10):  # the connection's next link reset finds the board
                try:
                    reply = await bus.send_frame(QueryActualLevel(GearShort(0)).frame)
                    break
                except BoardUnavailable:
                    continue
            assert reply == Backward(254)


async def test_cli_emulate_on_a_new_pty(tmp_path: Path) -> None:
    """`lykta firmware emulate --pty` prints the port to open and serves a board there."""
    proc = await asyncio.create_subprocess_exec(
        *FIRMWARE_CLI, "emulate", "--pty", "--gear", "2", stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        path = line.decode().rsplit(" ", 1)[-1].strip()
        assert path.startswith("/dev/pts/"), line
        async with BoardDaliBus.open(path) as bus:
            assert await bus.send_frame(QueryActualLevel(GearShort(1)).frame) == Backward(254)
            assert await bus.send_frame(QueryActualLevel(GearShort(2)).frame) == NoAnswer()
    finally:
        proc.terminate()
        await proc.wait()
