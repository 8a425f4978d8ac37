"""The gateway's configuration from a commissioning run: the ``[[dali]]``, ``[[luminaires]]``
and ``[[modbus]]`` sections of ``gateway.toml`` for what was found (pure, except
:func:`write_gateway_config`, which validates by loading the file as the gateway will).

Added to a base file (the bundle ``lykta provision gateway`` made: identity, trust, broker) or
to a minimal head (site, id, position). A Modbus line's settings are those most of its devices
answered at; a device found at other settings (a factory meter) is left out with a comment
saying how to move it, since one line runs one setting.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from gateway.commissioning.modbus_scan import TCP, found_devices
from gateway.config import GatewayConfig, load_gateway_config
from gateway.modbus.access import parse_endpoint
from gateway.modbus.line_settings import LineSettings
from gateway.modbus.profile import DeviceProfile, load_profiles
from lykta.config import ConfigError

FIELD_SECTIONS = re.compile(r"^\s*\[\[\s*(dali|modbus|luminaires)\s*\]\]", re.M)


def _q(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid TOML basic string


def head(*, site: str, gateway: str, latitude: float, longitude: float) -> str:
    """A minimal top of ``gateway.toml`` when there is no provisioned base file."""
    return (f"# Made by `lykta commission config`; add [mqtt] and public_key_file (or start\n"
            f"# from the bundle of `lykta provision gateway`, with --base).\n"
            f"site = {_q(site)}\nid = {_q(gateway)}\n"
            f"latitude = {latitude}\nlongitude = {longitude}\n")


def _luminaire_id(bus: str, short: int, info: dict[str, Any], plan_ids: dict[int, str]) -> str:
    return plan_ids.get(short) or str(info.get("plan_id") or f"{bus}-{short:02d}")


def dali_sections(journal: dict[str, Any]) -> str:
    """``[[dali]]`` and ``[[luminaires]]`` for the DALI bus of the run (empty if none)."""
    args = journal.get("args", {})
    if not args.get("port") or not args.get("bus"):
        return ""
    bus = str(args["bus"])
    out = [f"[[dali]]\nname = {_q(bus)}\ntransport = {_q(args.get('transport', 'firmware-bridge'))}"
           f"\nurl = {_q(str(args['port']))}\n"]
    rows = {int(r["short_address"]): r for r in
            journal.get("steps", {}).get("assign", {}).get("rows", [])}
    for short, info in sorted((int(a), i) for a, i in journal["units"]["gear"].items()):
        row = rows.get(short, {})
        lid = str(row.get("id") or _luminaire_id(bus, short, info, {}))
        groups = [row["group"]] if row.get("group") is not None else []
        out.append(f"[[luminaires]]\nid = {_q(lid)}\nbus = {_q(bus)}\n"
                   f"short_address = {short}\ngroups = {groups}\n")
    return "\n".join(out)


def modbus_sections(journal: dict[str, Any], profiles: dict[str, DeviceProfile],
                    *, interval_s: float = 10.0) -> tuple[str, list[str]]:
    """``[[modbus]]`` per scanned line with identified devices, and notes on devices left out
    (unidentified, or at settings other than the line's)."""
    by_line: dict[str, list[dict[str, Any]]] = {}
    for dev in found_devices(journal):
        by_line.setdefault(dev["line"], []).append(dev)
    sections: list[str] = []
    notes: list[str] = []
    for n, (port, devices) in enumerate(sorted(by_line.items()), 1):
        usable = [d for d in devices if d.get("profile")]
        for d in devices:
            if not d.get("profile"):
                notes.append(f"{port} unit {d['unit']}: no profile fits ({d.get('reason')}); "
                             "write one (config/profiles) and add it by hand")
        if not usable:
            continue
        setting = Counter(d["settings"] for d in usable).most_common(1)[0][0]
        name = "rs485" if len(by_line) == 1 else f"rs485-{n}"
        if setting == TCP:
            endpoint = parse_endpoint(port)
            assert endpoint is not None
            name = "modbus-tcp" if len(by_line) == 1 else f"modbus-tcp-{n}"
            link = f"host = {_q(endpoint.host)}\ntcp_port = {endpoint.port}\n"
        else:
            s = LineSettings.parse(setting)
            link = (f"port = {_q(port)}\nbaudrate = {s.baudrate}\nparity = {_q(s.parity)}\n"
                    f"stopbits = {s.stopbits}\n")
        lines = []
        kinds: Counter[str] = Counter()
        for d in usable:
            if d["settings"] != setting:
                notes.append(f"{port} unit {d['unit']} ({profiles[d['profile']].name}) answers "
                             f"at {d['settings']}, the line runs {setting}: move it with "
                             "`lykta commission modbus write` and scan again")
                continue
            kind = profiles[d["profile"]].kind
            kinds[kind] += 1
            dev_id = f"{kind}-{d['unit']}" if len(by_line) == 1 else f"{kind}-{n}-{d['unit']}"
            lines.append(f"  {{ id = {_q(dev_id)}, unit = {d['unit']}, profile = "
                         f"{_q(d['profile'])}, interval_s = {interval_s} }},")
        sections.append(f"[[modbus]]\nname = {_q(name)}\n{link}devices = [\n"
                        + "\n".join(lines) + "\n]\n")
    return "\n".join(sections), notes


def gateway_config_text(journal: dict[str, Any], profiles: dict[str, DeviceProfile], *,
                        base: str) -> tuple[str, list[str]]:
    """``base`` (which must not have field sections of its own) plus the field sections of
    the run; and the notes (devices left out)."""
    if FIELD_SECTIONS.search(base):
        raise ValueError("the base file already has [[dali]], [[modbus]] or [[luminaires]] "
                         "sections: remove them (they are written from the scan) or leave "
                         "out --base")
    modbus, notes = modbus_sections(journal, profiles)
    dali = dali_sections(journal)
    if not modbus and not dali:
        raise ValueError("nothing to write: no DALI bus and no identified Modbus device in "
                         "this commissioning run (scan first)")
    body = "\n".join(part for part in (dali, modbus) if part)
    comment = "".join(f"# left out: {n}\n" for n in notes)
    text = base.rstrip("\n") + "\n\n# -- field buses, from `lykta commission` --\n" + comment \
        + body
    return text, notes


def write_gateway_config(path: Path, text: str) -> GatewayConfig:
    """Write ``text`` to ``path`` only if it loads as a valid gateway config (a
    :class:`~lykta.config.ConfigError` otherwise, and ``path`` is left as it was)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".gateway-", suffix=".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        cfg = load_gateway_config(Path(tmp))
        profiles = load_profiles(cfg.profile_dir)
        unknown = [f"modbus {m.name}: device {d.id}: no profile {d.profile!r} in "
                   f"{cfg.profile_dir}" for m in cfg.modbus for d in m.devices
                   if d.profile not in profiles]
        if unknown:
            raise ConfigError(unknown)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return cfg
