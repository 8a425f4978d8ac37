"""`lykta firmware`: DALI-master board: emulate, flash, info."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from firmware_bridge.connection import BoardConnection, BoardUnavailable
from firmware_bridge.flash import flash as flash_image
from firmware_bridge.messages import MAX_VERSION_LENGTH
from firmware_bridge.transfer import FirmwareImage, TransferFailed
from lykta.cli.output import error

app = typer.Typer(help="DALI-master board: emulate, flash, info.", no_args_is_help=True)
console = Console(soft_wrap=True)

Port = typer.Option(..., "--port", help="Serial port or pyserial URL (e.g. socket://host:7000).")
Baud = typer.Option(115200, "--baud", help="Line speed (8N1).")


@app.command()
def emulate(
    pty: bool = typer.Option(False, "--pty", help="Serve on a new pseudo-terminal."),
    port: str | None = typer.Option(None, "--port", help="Serve on this port / pyserial URL."),
    baud: int = Baud,
    line_timing: bool = typer.Option(False, help="Limit the line to --baud, like a real UART."),
    dali_timing: bool = typer.Option(False, help="Take real DALI bus time per transaction."),
    gear: int = typer.Option(4, min=0, max=64, help="Simulated control gear on the bus."),
    state_dir: Path | None = typer.Option(
        None, help="Keep the board's flash here (transfers then survive a restart)."
    ),
) -> None:
    """Emulate a DALI-master board with the field simulator's DALI bus behind it."""
    from firmware_bridge.emulator import EmulatorOptions, open_port, run_emulator, simulated_bus

    if pty == (port is not None):
        error(console, "give exactly one of --pty or --port")
        raise typer.Exit(2)
    try:
        opened, path = open_port(port, baud)
    except OSError as exc:
        error(console, exc)
        raise typer.Exit(1) from None
    options = EmulatorOptions(
        baudrate=baud, line_timing=line_timing, dali_timing=dali_timing, state_dir=state_dir
    )

    def ready() -> None:
        # One line a script can wait for and parse, once the board answers: the port to open.
        print(f"emulating DALI-master board on {path}", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_emulator(opened, simulated_bus(gear), options, on_ready=ready))


@app.command()
def flash(
    image: Path = typer.Argument(..., exists=True, dir_okay=False, help="Firmware image."),
    port: str = Port,
    version: str | None = typer.Option(
        None,
        "--version",
        help="Version the image reports once running (default: the file name without suffix).",
    ),
    baud: int = Baud,
) -> None:
    """Transfer, verify and activate IMAGE; resumes after interruptions; prints the version
    running afterwards."""
    version = version or image.stem
    if len(version.encode()) > MAX_VERSION_LENGTH:
        console.print(
            f"[red]error:[/] version {version!r} is longer than {MAX_VERSION_LENGTH} bytes; "
            "give a shorter one with --version"
        )
        raise typer.Exit(2)
    firmware = FirmwareImage(image.read_bytes(), version)

    async def run() -> None:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task(f"flashing {image.name}", total=firmware.size)
            async with BoardConnection.open(port, baudrate=baud) as board:
                result = await flash_image(
                    board, firmware, progress=lambda done, total: bar.update(task, completed=done)
                )
        if result.resumes:
            console.print(f"resumed {result.resumes} time(s), from offsets {result.resumed_from}")
        console.print(f"running version: {result.running_version}")

    try:
        asyncio.run(run())
    except (BoardUnavailable, TransferFailed, OSError) as exc:
        error(console, exc)
        raise typer.Exit(1) from None


@app.command()
def info(port: str = Port, baud: int = Baud) -> None:
    """Show the board's firmware version, uptime, bus power and error counters."""

    async def run() -> None:
        async with BoardConnection.open(port, baudrate=baud) as board:
            status = await board.status()
            link = board.link
        console.print(f"firmware version  {status.firmware_version}")
        console.print(f"protocol version  {link.version} (window {link.window}, "
                      f"payload {link.max_payload} bytes)")
        console.print(f"uptime            {status.uptime_ms / 1000:.1f} s")
        console.print(f"DALI bus power    {'present' if status.bus_power else 'ABSENT'}")
        console.print(f"DALI frames       {status.dali_frames} "
                      f"({status.dali_collisions} collisions)")
        console.print(f"serial frames     {status.rx_frames} received, {status.rx_dropped} "
                      f"dropped ({status.rx_bad_crc} bad CRC), "
                      f"{status.retransmissions} retransmitted")

    try:
        asyncio.run(run())
    except (BoardUnavailable, OSError) as exc:
        error(console, exc)
        raise typer.Exit(1) from None
