"""`lykta gateway`: run one cabinet's gateway from its config file."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

import typer
from rich.console import Console

from gateway.config import FieldOpenError, GatewayConfig, load_gateway_config, open_field
from gateway.daemon import Gateway
from gateway.fieldbus import FieldBusReader
from gateway.program_runner import PresenceSensor, ProgramRunner
from lykta.cli.output import error
from lykta.config import ConfigError, file_problems, tls_problems
from lykta.signing import SigningKeyError, load_public_key, load_public_keys

app = typer.Typer(
    help="The edge gateway: field buses, program executor, MQTT link.", no_args_is_help=True
)
console = Console(soft_wrap=True, stderr=True)
ConfigOpt = typer.Option(..., "--config", "-c", help="gateway.toml")


def _load(path: Path) -> GatewayConfig:
    try:
        return load_gateway_config(path)
    except ConfigError as e:
        for p in e.problems:
            error(console, p)
        raise typer.Exit(1) from None


@app.command()
def check(config: Path = ConfigOpt) -> None:
    """Validate the config file; list every problem and exit 1 if there is one."""
    cfg = _load(config)
    problems = file_problems(config, {
        "public_key_file": cfg.public_key_file,
        "next_public_key_file": cfg.next_public_key_file,
        **cfg.mqtt.files(),
    })
    for key in (cfg.public_key_file, cfg.next_public_key_file):
        if key is not None and os.access(key, os.R_OK):
            try:
                load_public_key(key)
            except SigningKeyError as e:
                problems.append(f"{config}: {e}")
    problems += tls_problems(config, cfg.mqtt)
    if problems:
        for p in problems:
            error(console, p)
        raise typer.Exit(1)
    lums = cfg.all_luminaires()
    console.print(
        f"ok: gateway {cfg.site}/{cfg.id}, {len(cfg.dali)} DALI bus(es), "
        f"{len(lums)} luminaires, {sum(len(m.devices) for m in cfg.modbus)} Modbus "
        f"devices, {len(cfg.presence_sensors)} presence sensors"
    )


@app.command()
def run(
    config: Path = ConfigOpt,
    log_level: str = typer.Option("INFO", help="DEBUG, INFO, WARNING, ERROR"),
) -> None:
    """Run the gateway until SIGTERM/Ctrl-C (then it drains its outbox and says goodbye)."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # its own timeouts are our events
    cfg = _load(config)
    try:
        key = load_public_keys(cfg.trusted_key_files())
    except SigningKeyError as e:
        error(console, e)
        raise typer.Exit(1) from None
    if not key:
        console.print(
            "[yellow]warning:[/] no public_key_file: every program and every override will be "
            "rejected and the gateway runs its fail-safe (dusk to dawn at full light)"
        )
    try:
        asyncio.run(_run(cfg, key))
    except FieldOpenError as e:
        error(console, f"{e} (is the adapter plugged in, and does `url` in [[dali]] of "
                       f"{config} name it? ls -l /dev/serial/by-id/)")
        raise typer.Exit(1) from None


async def _run(cfg: GatewayConfig, key) -> None:  # noqa: ANN001
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as es:
        drivers, pollers = await open_field(cfg, es)
        reader = await es.enter_async_context(
            FieldBusReader(pollers, list(drivers.values()), fail_safe_level=cfg.fail_safe_level)
        )
        runner = ProgramRunner(
            site=cfg.site,
            gateway=cfg.id,
            drivers=drivers,
            luminaires={x.id: x.bus for x in cfg.all_luminaires()},
            state_dir=cfg.state_dir / "program",
            public_key=key,
            latitude=cfg.latitude,
            longitude=cfg.longitude,
            sun_elevation_deg=cfg.sun_elevation_deg,
            fail_safe_level=cfg.fail_safe_level,
            presence_sensors=[
                PresenceSensor(s.bus, s.short_address, s.zone, s.position_m, device=s.device)
                for s in cfg.presence_sensors
            ],
        )
        gw = Gateway(
            cfg.site,
            cfg.id,
            cfg.mqtt,
            reader,
            cfg.state_dir,
            telemetry_interval_s=cfg.telemetry_interval_s,
            runner=runner,
        )
        async with gw:
            _notify("READY=1")
            while not stop.is_set() and not gw.failed.is_set():
                if gw.healthy():  # fed only while the executor and the link make progress
                    _notify("WATCHDOG=1")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await stop.wait()
            _notify("STOPPING=1")
    if gw.failed.is_set():
        # a loop died: end non-zero so that systemd restarts the gateway
        console.print(f"[red]error:[/] gateway loop died: {gw.error!r}")
        raise SystemExit(1)


def _notify(state: str) -> None:
    """Tell systemd (Type=notify) where we are; a no-op outside systemd."""
    with contextlib.suppress(Exception):
        import sdnotify

        sdnotify.SystemdNotifier().notify(state)
