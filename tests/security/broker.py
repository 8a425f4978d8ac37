"""A private Mosquitto running the *shipped* production config (config/mosquitto/) with
generated test credentials: only paths, ports and the loopback bind address are rewritten."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from lykta import pki
from lykta.config import MqttConfig, TlsConfig

SHIPPED = Path(__file__).parents[2] / "config" / "mosquitto"
SITE = "norrkoping"  # the site id in the shipped ACL
DYNSEC = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")


def render_config(d: Path, gateway_port: int, controller_port: int) -> str:
    """The shipped mosquitto.conf with its paths under ``d`` and listeners on loopback."""
    conf = (SHIPPED / "mosquitto.conf").read_text()
    conf = (
        conf.replace("/etc/mosquitto/certs/", f"{d}/")
        .replace("/etc/mosquitto/", f"{d}/")
        .replace("/var/lib/mosquitto/", f"{d}/")
        .replace("listener 8883", f"listener {gateway_port} 127.0.0.1")
        .replace("listener 8884", f"listener {controller_port} 127.0.0.1")
    )
    assert f"listener {gateway_port}" in conf and f"listener {controller_port}" in conf
    if os.getuid() == 0:
        conf += "user root\n"  # else Mosquitto drops to 'mosquitto', who cannot read d
    conf += f"log_dest file {d}/mosquitto.log\nlog_type all\n"
    return conf


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class SecureBroker:
    """The shipped config on loopback. ``gateways`` and ``controllers`` get accounts whose
    password is ``secret-<name>`` (written to ``<name>.pw``, mode 0600)."""

    dir: Path
    gateways: list[str]
    controllers: list[str] = field(default_factory=lambda: ["lykta-controller"])
    gateway_port: int = 0
    controller_port: int = 0
    proc: subprocess.Popen | None = None
    neighbour_reads: dict[str, list[str]] | None = None
    """Not None: the gateway listener checks *subscriptions* (Mosquitto's dynamic-security
    plugin instead of the ACL file, which grants every SUBACK and filters at delivery): each
    gateway gets the shipped ACL's own-topic rights plus subscribing to the ``event`` topics of
    exactly the gateways listed for it; any other subscription is refused (0x87)."""

    def __post_init__(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.gateway_port, self.controller_port = free_ports(2)
        pki.init_ca(self.dir)
        issued = pki.issue(self.dir, "broker", out_dir=self.dir, server=True,
                           hosts=["localhost", "127.0.0.1"])  # fmt: skip
        assert issued.cert == self.dir / "broker.crt"
        for file, users in (
            ("lykta-gateways.passwd", self.gateways),
            ("lykta-controllers.passwd", self.controllers),
        ):
            for i, user in enumerate(users):
                self.add_user(file, user, create=i == 0)
        (self.dir / "lykta.acl").write_text((SHIPPED / "lykta.acl").read_text())
        self.write_config()

    def write_config(self) -> None:
        """(Re)write mosquitto.conf (and the dynamic-security file): after changing
        ``neighbour_reads``, ``stop()`` and ``start()`` make the broker use it."""
        conf = render_config(self.dir, self.gateway_port, self.controller_port)
        if self.neighbour_reads is not None:
            conf = self._dynsec(conf, self.neighbour_reads)
        (self.dir / "mosquitto.conf").write_text(conf)

    def _dynsec(self, conf: str, reads: dict[str, list[str]]) -> str:
        """``conf`` with the gateway listener's password and ACL file replaced by a
        dynamic-security configuration (passwords ``secret-<name>``, as the file's)."""

        def t(gw: str, kind: str) -> str:
            return f"lykta/v1/{SITE}/{gw}/{kind}"

        clients, roles = [], []
        for gw in self.gateways:
            salt = os.urandom(12)
            digest = hashlib.pbkdf2_hmac("sha512", f"secret-{gw}".encode(), salt, 101)
            clients.append({"username": gw, "password": base64.b64encode(digest).decode(),
                            "salt": base64.b64encode(salt).decode(), "iterations": 101,
                            "roles": [{"rolename": gw}]})  # fmt: skip
            acls = [{"acltype": "publishClientSend", "topic": t(gw, k), "allow": True}
                    for k in ("state", "telemetry", "event", "cmd/res")]  # fmt: skip
            acls += [{"acltype": "subscribeLiteral", "topic": topic, "allow": True}
                     for topic in [t(gw, k) for k in ("program", "cmd", "confirm")]
                     + [t(n, "event") for n in reads.get(gw, [])]]  # fmt: skip
            roles.append({"rolename": gw, "acls": acls})
        (self.dir / "dynsec.json").write_text(json.dumps({
            "clients": clients, "roles": roles, "groups": [],
            "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": True,
                                 "subscribe": False, "unsubscribe": True},
        }))  # fmt: skip
        gw_part, ctl_part = conf.split(f"listener {self.controller_port}", 1)
        plugin = f"plugin {DYNSEC}\nplugin_opt_config_file {self.dir}/dynsec.json\n"
        gw_part = gw_part.replace(f"password_file {self.dir}/lykta-gateways.passwd\n", plugin)
        gw_part = gw_part.replace(f"acl_file {self.dir}/lykta.acl\n", "")
        assert "dynsec.json" in gw_part and "acl_file" not in gw_part
        return gw_part + f"listener {self.controller_port}" + ctl_part

    def add_user(self, file: str, user: str, *, create: bool = False) -> None:
        subprocess.run(
            ["mosquitto_passwd", "-b", *(["-c"] if create else []), str(self.dir / file),
             user, f"secret-{user}"],
            check=True, capture_output=True,
        )  # fmt: skip
        pki.write_private(self.dir / f"{user}.pw", f"secret-{user}\n".encode(), force=True)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.dir / "mosquitto.conf")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        for port in (self.gateway_port, self.controller_port):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if self.proc.poll() is not None:
                        out = self.proc.stdout.read().decode() if self.proc.stdout else ""
                        raise RuntimeError(f"mosquitto exited: {out}") from None
                    assert time.monotonic() < deadline, "mosquitto did not listen"
                    time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.proc = None

    def log(self) -> str:
        p = self.dir / "mosquitto.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def cfg(
        self, user: str | None, *, password: str | None = None, controller: bool = False,
        tls: bool = True,
    ) -> MqttConfig:
        """Client settings for ``user`` on the gateway (or controller) listener; ``password``
        replaces the right one (a wrong-password attempt)."""
        pw = None
        if user is not None:
            pw = self.dir / f"{user}.pw"
            if password is not None:
                pw = self.dir / f"{user}.wrong"
                pki.write_private(pw, password.encode(), force=True)
        return MqttConfig(
            host="localhost" if tls else "127.0.0.1",
            port=self.controller_port if controller else self.gateway_port,
            username=user,
            password_file=pw,
            tls=TlsConfig(ca_file=self.dir / "ca.crt") if tls else None,
        )
