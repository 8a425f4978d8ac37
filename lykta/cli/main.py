"""The ``lykta`` command: one entry point for every role and tool.

This is the one place that reaches all roles (gateway, controller, firmware bridge); the shared
core in ``lykta/`` never imports them.
"""

from __future__ import annotations

import typer

from lykta.cli import alarms, contract, controller, demo, firmware, gateway, sim, stack, strategy

app = typer.Typer(
    name="lykta",
    help="Lykta: street lighting control — gateways, controller, strategy engine, local stack.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(stack.app, name="stack")
app.add_typer(contract.app, name="contract")
app.add_typer(strategy.app, name="strategy")
app.add_typer(sim.app, name="sim")
app.add_typer(firmware.app, name="firmware")
app.add_typer(gateway.app, name="gateway")
app.add_typer(controller.app, name="controller")
app.add_typer(alarms.app, name="alarms")
app.command("demo")(demo.demo)

if __name__ == "__main__":
    app()
