"""`lykta sim`: Field simulator: Modbus devices, DALI gear, pedestrians."""

from __future__ import annotations

import typer

app = typer.Typer(help="Field simulator: Modbus devices, DALI gear, pedestrians.", no_args_is_help=True)
