"""`lykta contract`: the wire contract, for people and other tools."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from lykta.contract import schema as contract_schema

app = typer.Typer(help="The MQTT wire contract: JSON Schema export.", no_args_is_help=True)


@app.command()
def schema(
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Write to this file instead of stdout."
    ),
) -> None:
    """Print the JSON Schema of every payload, keyed by topic."""
    text = json.dumps(contract_schema(), indent=2, sort_keys=True) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out}", err=True)
