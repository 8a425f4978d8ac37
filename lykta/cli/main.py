"""The ``lykta`` command: one entry point for every role and tool.

This is the one place that reaches all roles (gateway, controller, firmware bridge); the shared
core in ``lykta/`` never imports them. Each sub-command's module is imported only when that
sub-command runs, so a cabinet that installed ``lykta[gateway]`` never loads the controller's
FastAPI, SQLAlchemy or the demo's simulator, and a sub-command whose extra is not installed
says in one line which extra to install.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

# Typer bundles its own copy of Click (typer._click, private): the overrides below take and
# return its Context and Command objects, typed as Any rather than reaching into that module.


@dataclass(frozen=True)
class _Lazy:
    module: str  # lykta.cli.<module>
    attr: str  # a Typer app, or a function registered as a single command
    extra: str | None  # the lykta[...] extra its imports need; None: the core suffices
    help: str  # shown in `lykta --help` when the extra is missing


SUBCOMMANDS: dict[str, _Lazy] = {
    "stack": _Lazy("lykta.cli.stack", "app", None, "The private Mosquitto + InfluxDB."),
    "contract": _Lazy("lykta.cli.contract", "app", None, "The MQTT wire contract."),
    "strategy": _Lazy("lykta.cli.strategy", "app", None, "Check, preview, compile a strategy."),
    "sim": _Lazy("lykta.cli.sim", "app", "gateway", "Simulated devices; poll a Modbus device."),
    "firmware": _Lazy("lykta.cli.firmware", "app", "gateway", "The DALI-master board."),
    "gateway": _Lazy("lykta.cli.gateway", "app", "gateway", "The edge gateway."),
    "controller": _Lazy("lykta.cli.controller", "app", "controller", "The central controller."),
    "alarms": _Lazy("lykta.cli.alarms", "app", "controller", "A controller's alarms."),
    "certs": _Lazy("lykta.cli.certs", "app", None, "A private CA: broker/client certificates."),
    "provision": _Lazy("lykta.cli.provision", "app", None, "Gateway credentials and bundle."),
    "demo": _Lazy("lykta.cli.demo", "demo", "tools", "The local demo on an embedded stack."),
    "commission": _Lazy("lykta.cli.commission", "app", "gateway",
                        "Commission a cabinet: scan, address, identify, self-test, report."),
    "dashboards": _Lazy("lykta.cli.dashboards", "app", "tools",
                        "Grafana dashboards: build, check on InfluxDB, push."),
}

# Third-party top-level modules -> the extra that installs them (for imports made at run time
# by a command of the core, e.g. matplotlib for `strategy preview --png`).
EXTRA_OF_MODULE = {
    "pymodbus": "gateway",
    "serial": "gateway",
    "dali": "gateway",
    "cobs": "gateway",
    "crc": "gateway",
    "sdnotify": "gateway",
    "fastapi": "controller",
    "starlette": "controller",
    "uvicorn": "controller",
    "sqlalchemy": "controller",
    "influxdb_client": "controller",
    "httpx": "controller",
    "grafana_client": "controller",
    "matplotlib": "tools",
    "grafana_foundation_sdk": "tools",
}

_OWN_PACKAGES = {"lykta", "gateway", "controller", "firmware_bridge", "fieldsim"}


def missing_extra_message(command: str, missing: str, extra: str) -> str:
    """The one line a user sees when ``command`` needs an extra that is not installed."""
    return (
        f"error: `lykta {command}` needs the '{extra}' extra (module '{missing}' is not "
        f"installed): pip install 'lykta[{extra}]'"
    )


def _extra_for(err: ModuleNotFoundError, declared: str | None) -> str | None:
    top = (err.name or "").split(".")[0]
    if not top or top in _OWN_PACKAGES:
        return None  # our own module missing is a bug, not an install choice
    return declared or EXTRA_OF_MODULE.get(top)


def _unavailable(name: str, spec: _Lazy, err: ModuleNotFoundError, extra: str) -> Any:
    """A stand-in command that takes any arguments and says which extra to install."""
    message = missing_extra_message(name, err.name or "?", extra)
    stand_in = typer.Typer(add_completion=False)

    @stand_in.command(
        name,
        # escaped: Rich would take [gateway] for markup and swallow it
        help=escape(f"{spec.help} [not installed: pip install 'lykta[{extra}]']"),
        add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    def fail() -> None:
        print(message, file=sys.stderr)
        raise typer.Exit(1)

    return typer.main.get_command(stand_in)


class LazyGroup(TyperGroup):
    """A Typer group whose sub-commands are imported on first use (see ``SUBCOMMANDS``)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(SUBCOMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands or cmd_name not in SUBCOMMANDS:
            return super().get_command(ctx, cmd_name)
        spec = SUBCOMMANDS[cmd_name]
        try:
            target: Any = getattr(importlib.import_module(spec.module), spec.attr)
        except ModuleNotFoundError as e:
            extra = _extra_for(e, spec.extra)
            if extra is None:
                raise
            return _unavailable(cmd_name, spec, e, extra)
        holder = typer.Typer(add_completion=False)
        if isinstance(target, typer.Typer):
            # as a sub-group, the way add_typer would: a one-command app (contract) keeps
            # its command name (`lykta contract schema`)
            holder.add_typer(target, name=cmd_name)
            group = typer.main.get_command(holder)
            assert isinstance(group, TyperGroup)
            command = group.commands[cmd_name]
        else:
            holder.command(cmd_name)(target)
            command = typer.main.get_command(holder)
        command.name = cmd_name
        self.commands[cmd_name] = command
        return command

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as e:
            name = ctx.invoked_subcommand or ""
            spec = SUBCOMMANDS.get(name)
            extra = _extra_for(e, spec.extra if spec else None)
            if extra is None:
                raise
            print(missing_extra_message(name, e.name or "?", extra), file=sys.stderr)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="lykta",
    cls=LazyGroup,
    help="Lykta: street lighting control — gateways, controller, strategy engine, local stack.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Lykta: street lighting control — gateways, controller, strategy engine, local stack."""


if __name__ == "__main__":
    app()
