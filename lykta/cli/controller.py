"""`lykta controller`: run the central service; manage API tokens and the signing key."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from controller.config import ControllerConfig, load_controller_config
from controller.identity import IdentityError
from controller.registry import Registry, RegistryError, Role
from lykta.cli.output import error
from lykta.config import ConfigError, file_problems, tls_problems
from lykta.signing import SigningKeyError, load_or_generate_key, public_key_pem

app = typer.Typer(
    help="The controller: ingest, registry, signed programs, alarms, HTTP API.",
    no_args_is_help=True,
)
token_app = typer.Typer(help="API bearer tokens (stored hashed in the registry).",
                        no_args_is_help=True)  # fmt: skip
app.add_typer(token_app, name="token")
console = Console(soft_wrap=True, stderr=True)
ConfigOpt = typer.Option(..., "--config", "-c", help="controller.toml")


def load(path: Path) -> ControllerConfig:
    """Load the config or print every problem and exit 1."""
    try:
        return load_controller_config(path)
    except ConfigError as e:
        for p in e.problems:
            error(console, p)
        raise typer.Exit(1) from None


def registry(cfg: ControllerConfig) -> Registry:
    """The registry named by the config (its directory created if needed)."""
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    return Registry(cfg.registry())


@app.command()
def check(config: Path = ConfigOpt) -> None:
    """Validate the config file; list every problem and exit 1 if there is one."""
    cfg = load(config)
    key = cfg.programs.key_file
    problems = file_problems(config, {
        **cfg.mqtt.files(),
        "influx.password_file": cfg.influx.password_file,
        "influx.token_file": cfg.influx.token_file,
        "programs.strategy": cfg.programs.strategy,
        "programs.broker_acl_file": cfg.programs.broker_acl_file,
        # made on first start; once there it must be readable
        "programs.key_file": key if key.exists() else None,
    })
    problems += tls_problems(config, cfg.mqtt)
    if problems:
        for p in problems:
            error(console, p)
        raise typer.Exit(1)
    api = f"http://{cfg.api.host}:{cfg.api.port}" if cfg.api.enabled else "off"
    console.print(
        f"ok: site {cfg.site}, registry {cfg.registry()}, MQTT {cfg.mqtt.host}:{cfg.mqtt.port}, "
        f"InfluxDB {cfg.influx.url} (v{cfg.influx.version}), API {api}"
    )


@app.command()
def run(
    config: Path = ConfigOpt,
    log_level: str = typer.Option("INFO", help="DEBUG, INFO, WARNING, ERROR"),
) -> None:
    """Run ingest, registry, program distribution, alarms and the API until SIGTERM/Ctrl-C."""
    from controller.service import LoopFailed
    from controller.service import run as run_service

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    cfg = load(config)
    try:
        asyncio.run(run_service(cfg))
    except (SigningKeyError, IdentityError) as e:
        error(console, e)
        raise typer.Exit(1) from None
    except LoopFailed as e:  # logged with its cause; systemd restarts the controller
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass


@app.command("public-key")
def public_key(config: Path = ConfigOpt) -> None:
    """Print the program-signing public key (PEM) that every gateway is given (the key pair
    is generated on first use)."""
    cfg = load(config)
    try:
        key = load_or_generate_key(cfg.programs.key_file)
    except SigningKeyError as e:
        error(console, e)
        raise typer.Exit(1) from None
    typer.echo(public_key_pem(key.public_key()).decode(), nl=False)


@token_app.command("create")
def token_create(
    name: str = typer.Argument(..., help="who or what the token is for"),
    role: Role = typer.Option(..., "--role", "-r", help="viewer, operator, security or admin"),
    config: Path = ConfigOpt,
) -> None:
    """Create a token and print it (once: only its hash is stored)."""
    reg = registry(load(config))
    now = int(time.time() * 1000)
    try:
        token = reg.create_token(name, role, now)
    except ValueError as e:
        error(console, e)
        raise typer.Exit(1) from None
    reg.audit("cli", "token_create", f"token/{name}", {"role": role.value}, now)
    typer.echo(token)


@token_app.command("list")
def token_list(config: Path = ConfigOpt) -> None:
    """List tokens (name, role, created, revoked)."""
    reg = registry(load(config))
    t = Table("name", "role", "created (UTC)", "revoked")
    for row in reg.tokens():
        created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(row["created_ts"] / 1000))
        t.add_row(row["name"], row["role"], created, "yes" if row["revoked"] else "")
    Console().print(t)


@token_app.command("revoke")
def token_revoke(name: str, config: Path = ConfigOpt) -> None:
    """Revoke the token called NAME."""
    reg = registry(load(config))
    try:
        reg.revoke_token(name)
    except RegistryError as e:
        error(console, e)
        raise typer.Exit(1) from None
    reg.audit("cli", "token_revoke", f"token/{name}", {}, int(time.time() * 1000))
    console.print(f"revoked {name}")
