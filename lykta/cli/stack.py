"""`lykta stack`: a private Mosquitto + InfluxDB on loopback for the demo and development."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from lykta.cli.output import error
from lykta.stack import DEFAULT_DATA_DIR, LocalStack, StackError, StackInfo

app = typer.Typer(
    help="Local stack of real services (Mosquitto, InfluxDB 1.x) on loopback.", no_args_is_help=True
)
console = Console(soft_wrap=True)

DataDir = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="Where configs, data and logs live.")


def _show(info: StackInfo) -> None:
    console.print(
        f"[bold]MQTT[/]      {info.mqtt.url}   (pid {info.mqtt.pid}, log {info.mqtt.log})"
    )
    console.print(
        f"[bold]InfluxDB[/]  {info.influx.url}   (pid {info.influx.pid}, log {info.influx.log})"
    )


@app.command()
def up(
    data_dir: Path = DataDir,
    mqtt_port: int = typer.Option(0, help="MQTT port (0 = any free port)."),
    influx_port: int = typer.Option(0, help="InfluxDB HTTP port (0 = any free port)."),
) -> None:
    """Start the stack (or show the one already running) and wait until both services answer."""
    try:
        info = LocalStack(data_dir, mqtt_port=mqtt_port, influx_port=influx_port).up()
    except StackError as e:
        error(console, e)
        raise typer.Exit(1) from None
    _show(info)


@app.command()
def down(data_dir: Path = DataDir) -> None:
    """Stop exactly the processes `up` started for this data dir."""
    stopped = LocalStack(data_dir).down()
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command()
def status(data_dir: Path = DataDir) -> None:
    """Show whether the stack runs, and where; exit 1 if it does not."""
    info = LocalStack(data_dir).status()
    if info is None:
        console.print(f"no stack running under {Path(data_dir).absolute()}")
        raise typer.Exit(1)
    _show(info)
