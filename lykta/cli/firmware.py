"""`lykta firmware`: DALI-master board: emulate, flash, info."""

from __future__ import annotations

import typer

app = typer.Typer(help="DALI-master board: emulate, flash, info.", no_args_is_help=True)
