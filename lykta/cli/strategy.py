"""`lykta strategy`: Lighting strategy: check, preview, energy what-if, compile."""

from __future__ import annotations

import typer

app = typer.Typer(help="Lighting strategy: check, preview, energy what-if, compile.", no_args_is_help=True)
