"""`lykta certs`: the site's private CA and the broker's (and gateways') TLS certificates."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from lykta import pki

app = typer.Typer(
    help="A private CA for the broker's TLS listeners: server and client certificates.",
    no_args_is_help=True,
)
console = Console(soft_wrap=True, stderr=True)
ForceOpt = typer.Option(False, "--force", help="replace existing files")


@app.command()
def init(
    directory: Path = typer.Argument(..., help="where ca.crt and ca.key go (keep ca.key offline)"),
    name: str = typer.Option("Lykta site CA", help="the CA's Common Name"),
    days: int = typer.Option(3650, min=1, help="validity"),
    force: bool = ForceOpt,
) -> None:
    """Create the CA: ca.crt (give it to the broker and every client) and ca.key (0600)."""
    try:
        out = pki.init_ca(directory, name=name, days=days, force=force)
    except pki.PkiError as e:
        console.print(f"[red]error:[/] {e}", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"wrote {out.cert} and {out.key} (mode 0600)", highlight=False)


@app.command()
def issue(
    name: str = typer.Argument(..., help="the broker's host name, or a gateway id (--client)"),
    ca: Path = typer.Option(..., "--ca", help="the directory of `lykta certs init`"),
    out: Path = typer.Option(Path("."), "--out", help="where NAME.crt and NAME.key go"),
    client: bool = typer.Option(False, "--client", help="a client certificate, CN = NAME"),
    host: list[str] = typer.Option(
        [], "--host", help="a DNS name or IP the broker is reached by (repeatable; server only)"
    ),
    days: int = typer.Option(825, min=1, help="validity (capped at the CA's)"),
    force: bool = ForceOpt,
) -> None:
    """Issue a server certificate for the broker (default) or a client certificate."""
    if client and host:
        console.print("[red]error:[/] --host is for server certificates")
        raise typer.Exit(2)
    try:
        got = pki.issue(ca, name, out_dir=out, server=not client, hosts=host or None,
                        days=days, force=force)  # fmt: skip
    except pki.PkiError as e:
        console.print(f"[red]error:[/] {e}", highlight=False)
        raise typer.Exit(1) from None
    kind = "client" if client else "server"
    console.print(f"wrote {kind} certificate {got.cert} and key {got.key} (mode 0600)",
                  highlight=False)  # fmt: skip
