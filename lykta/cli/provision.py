"""`lykta provision gateway GW --site S`: one gateway's credentials, config bundle and broker
entry, in one step.

The bundle (``OUT/GW/``) is copied to the gateway's ``--install-dir`` (``/etc/lykta``):
``gateway.toml``, the controller's public key, the site CA certificate, and either a random
broker password (``mqtt-password``, 0600) or a client certificate and key issued by the site CA.
The password's hashed entry goes into the broker's gateway password file (hashed by
``mosquitto_passwd`` from a private temporary file, so the password never appears on a command
line); the shipped ACL's ``%u`` patterns then cover the gateway. Nothing existing is
overwritten without ``--force``.

`lykta provision neighbours --strategy FILE --site S --acl ACL`: the per-gateway ACL entries
that let each gateway read exactly its presence neighbours' ``event`` topics (corridors across
cabinets), from the same function the program compiler names them with; it replaces the
generated block of ``ACL`` (run it again whenever the inventory changes).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import typer
from rich.console import Console

from lykta import pki
from lykta.contract.topics import TopicError, check_id
from lykta.neighbour_acl import block_span, neighbour_acl
from lykta.signing import SigningKeyError, load_public_key
from lykta.strategy import StrategyError, load_strategy, presence_neighbours

app = typer.Typer(help="Provision gateways: credentials, config bundle, broker entry.",
                  no_args_is_help=True)  # fmt: skip
console = Console(soft_wrap=True, stderr=True)
SHIPPED_ACL = Path(__file__).parents[2] / "config" / "mosquitto" / "lykta.acl"
ACL_SITE = "norrkoping"  # the site id written in the shipped ACL


@app.callback()
def _group() -> None:
    """Provision gateways: credentials, config bundle, broker entry."""


class ProvisionError(ValueError):
    """Provisioning cannot go on (the message says why and what to do)."""


def gateway_toml(gw: str, site: str, install: Path, host: str, port: int, latitude: float,
                 longitude: float, client_cert: bool) -> str:  # fmt: skip
    """The bundle's ``gateway.toml``: identity, trust and broker; field buses to be added."""
    auth = (
        f'[mqtt.tls]\nca_file = "{install / "ca.crt"}"\ncert_file = "{install / f"{gw}.crt"}"\n'
        f'key_file = "{install / f"{gw}.key"}"\n'
        if client_cert
        else f'username = "{gw}"\npassword_file = "{install / "mqtt-password"}"\n'
        f'[mqtt.tls]\nca_file = "{install / "ca.crt"}"\n'
    )
    return (
        f"# Made by `lykta provision gateway {gw} --site {site}`. Add the cabinet's [[dali]],\n"
        "# [[luminaires]] / luminaires_file and [[modbus]] sections (see config/gateway.toml).\n"
        f'site = "{site}"\nid = "{gw}"\nstate_dir = "/var/lib/lykta/gateway"\n'
        f'public_key_file = "{install / "controller.pub"}"   # programs and commands\n'
        f"latitude = {latitude}\nlongitude = {longitude}\n\n"
        f'[mqtt]\nhost = "{host}"\nport = {port}\n' + auth
    )


def hashed_entry(user: str, password: str) -> str:
    """``user:<hash>`` as ``mosquitto_passwd`` writes it (the password via a 0600 file)."""
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    with tempfile.TemporaryDirectory() as d:
        plain = Path(d) / "passwd"
        pki.write_private(plain, f"{user}:{password}\n".encode())
        try:
            subprocess.run([tool, "-U", str(plain)], check=True, capture_output=True)
        except FileNotFoundError:
            raise ProvisionError(
                "mosquitto_passwd not found: apt-get install mosquitto (or give no --passwd "
                "and add the entry on the broker host)"
            ) from None
        except subprocess.CalledProcessError as e:
            raise ProvisionError(f"mosquitto_passwd failed: {e.stderr.decode().strip()}") from None
        return plain.read_text().strip()


def add_password_entry(passwd: Path, user: str, password: str, *, force: bool) -> bool:
    """Put ``user``'s hashed entry into broker password file ``passwd`` (created 0600 if
    missing, mode kept otherwise); True if it replaced an entry (only with ``force``)."""
    lines = passwd.read_text().splitlines() if passwd.exists() else []
    existing = [i for i, line in enumerate(lines) if line.split(":", 1)[0] == user]
    if existing and not force:
        raise ProvisionError(f"{passwd} already has an entry for {user}; --force replaces it")
    entry = hashed_entry(user, password)
    lines = [line for i, line in enumerate(lines) if i not in existing] + [entry]
    mode = passwd.stat().st_mode & 0o777 if passwd.exists() else 0o600
    tmp = passwd.with_name(f".{passwd.name}.tmp")
    pki.write_private(tmp, ("\n".join(lines) + "\n").encode(), force=True)
    os.chmod(tmp, mode)
    if passwd.exists() and os.getuid() == 0:
        st = passwd.stat()  # keep the owner (mosquitto may read it as its own user)
        os.chown(tmp, st.st_uid, st.st_gid)
    tmp.replace(passwd)
    return bool(existing)


def ensure_acl(acl: Path, site: str) -> bool:
    """Append the shipped ACL's gateway patterns for ``site`` to ``acl`` unless it has them;
    True if it was changed."""
    shipped = SHIPPED_ACL.read_text().splitlines()
    patterns = [ln.replace(f"lykta/v1/{ACL_SITE}/", f"lykta/v1/{site}/")
                for ln in shipped if ln.startswith("pattern ")]  # fmt: skip
    have = acl.read_text().splitlines() if acl.exists() else []
    missing = [p for p in patterns if p not in have]
    if not missing:
        return False
    with open(acl, "a") as f:
        f.write(f"\n# gateways of site {site} (lykta provision)\n" + "\n".join(missing) + "\n")
    return True


def write_neighbour_acl(acl: Path, block: str, site: str) -> bool:
    """Put ``block`` into ``acl`` in place of the site's previous generated block (appended
    when there is none); True if the file changed. The block ends with ``user`` sections, so
    it goes after the ``pattern`` lines, which apply to every user wherever they stand."""
    text = acl.read_text() if acl.exists() else ""
    span = block_span(text, site)
    if span is not None:
        new = text[: span[0]] + block + text[span[1] :].lstrip("\n")
    else:
        new = text + ("" if not text or text.endswith("\n") else "\n") + "\n" + block
    if new == text:
        return False
    tmp = acl.with_name(f".{acl.name}.tmp")
    tmp.write_text(new)
    if acl.exists():
        os.chmod(tmp, acl.stat().st_mode & 0o777)
    tmp.replace(acl)
    return True


@app.command()
def neighbours(
    strategy: Path = typer.Option(..., "--strategy", help="the site's strategy.toml"),
    site: str = typer.Option(..., "--site", help="the site id"),
    acl: Path | None = typer.Option(
        None, "--acl", help="the broker's ACL: replace its generated block (else: print it)"
    ),
) -> None:
    """Grant each gateway read access to exactly its presence neighbours' event topics."""
    try:
        check_id(site, "site")
        block = neighbour_acl(presence_neighbours(load_strategy(strategy)), site)
    except (StrategyError, TopicError) as e:
        console.print(f"[red]error:[/] {e}", highlight=False)
        raise typer.Exit(1) from None
    if acl is None:
        typer.echo(block, nl=False)
        return
    changed = write_neighbour_acl(acl, block, site)
    console.print(f"{'updated' if changed else 'unchanged'}: presence neighbours of site {site} "
                  f"in {acl}" + ("; reload the broker" if changed else ""),
                  highlight=False)  # fmt: skip


@app.command()
def gateway(
    gw: str = typer.Argument(..., help="the gateway id (its MQTT username and client id)"),
    site: str = typer.Option(..., "--site", help="the site id"),
    public_key: Path = typer.Option(
        ..., "--public-key", help="the controller's public key (lykta controller public-key)"
    ),
    ca_cert: Path = typer.Option(..., "--ca-cert", help="the site CA certificate (ca.crt)"),
    broker_host: str = typer.Option(..., "--broker-host", help="the broker as gateways reach it"),
    broker_port: int = typer.Option(8883, "--broker-port", help="the gateway listener"),
    latitude: float = typer.Option(..., min=-90, max=90, help="for the fail-safe clock"),
    longitude: float = typer.Option(..., min=-180, max=180),
    out: Path = typer.Option(Path("."), "--out", help="the bundle goes to OUT/GW/"),
    install_dir: Path = typer.Option(
        Path("/etc/lykta"), "--install-dir", help="where the bundle will live on the gateway"
    ),
    passwd: Path | None = typer.Option(
        None, "--passwd", help="the broker's gateway password file: add the entry there"
    ),
    acl: Path | None = typer.Option(
        None, "--acl", help="the broker's ACL: add the site's patterns if missing"
    ),
    client_cert: bool = typer.Option(
        False, "--client-cert", help="a client certificate (needs --ca) instead of a password"
    ),
    ca: Path | None = typer.Option(None, "--ca", help="the CA directory (lykta certs init)"),
    force: bool = typer.Option(False, "--force", help="replace an existing bundle or entry"),
) -> None:
    """Create a gateway's credentials, its gateway.toml bundle and its broker entry."""
    try:
        check_id(gw, "gateway")
        check_id(site, "site")
        _provision(gw, site, public_key, ca_cert, broker_host, broker_port, latitude, longitude,
                   out, install_dir, passwd, acl, client_cert, ca, force)  # fmt: skip
    except (ProvisionError, pki.PkiError, SigningKeyError, TopicError) as e:
        console.print(f"[red]error:[/] {e}", highlight=False)
        raise typer.Exit(1) from None


def _provision(gw: str, site: str, public_key: Path, ca_cert: Path, host: str, port: int,
               latitude: float, longitude: float, out: Path, install: Path,
               passwd: Path | None, acl: Path | None, client_cert: bool, ca: Path | None,
               force: bool) -> None:  # fmt: skip
    if client_cert and ca is None:
        raise ProvisionError("--client-cert needs --ca (the directory of lykta certs init)")
    load_public_key(public_key)  # it is an Ed25519 public key
    if not ca_cert.is_file():
        raise ProvisionError(f"{ca_cert}: no such CA certificate")
    bundle = out / gw
    if bundle.exists() and any(bundle.iterdir()) and not force:
        raise ProvisionError(f"{bundle} exists; not overwriting it (use --force to replace it)")
    password = None
    if not client_cert and passwd is not None:
        password = secrets.token_urlsafe(32)
        replaced = add_password_entry(passwd, gw, password, force=force)
        console.print(f"{'replaced' if replaced else 'added'} {gw} in {passwd}; reload the "
                      "broker (systemctl reload mosquitto) to use it", highlight=False)  # fmt: skip
    bundle.mkdir(parents=True, exist_ok=True)
    pki.write_public(bundle / "controller.pub", public_key.read_bytes(), force=True)
    pki.write_public(bundle / "ca.crt", ca_cert.read_bytes(), force=True)
    if client_cert:
        assert ca is not None
        pki.issue(ca, gw, out_dir=bundle, server=False, force=True)
    else:
        if password is None:
            password = secrets.token_urlsafe(32)
            console.print(f"no --passwd: on the broker host add the entry with "
                          f"`mosquitto_passwd lykta-gateways.passwd {gw}` and the password in "
                          f"{bundle / 'mqtt-password'}", highlight=False)  # fmt: skip
        pki.write_private(bundle / "mqtt-password", f"{password}\n".encode(), force=True)
    (bundle / "gateway.toml").write_text(
        gateway_toml(gw, site, install, host, port, latitude, longitude, client_cert)
    )
    if acl is not None and ensure_acl(acl, site):
        console.print(f"added site {site}'s gateway patterns to {acl}", highlight=False)
    console.print(f"bundle for {gw} in {bundle}: copy it to {install} on the gateway "
                  "(keep the modes)", highlight=False)  # fmt: skip
