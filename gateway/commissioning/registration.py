"""Registering a commissioned gateway with the controller's HTTP API
(``PUT /api/v1/gateways/{id}/commissioning``, an operator token).

Standard library only (``urllib``): a gateway-only install can register itself too.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from gateway.commissioning.modbus_scan import found_devices


class RegistrationError(RuntimeError):
    """The controller refused the registration (the message has its reason)."""


class ControllerUnreachable(RegistrationError):
    """No controller answered at the URL (network, DNS, refused connection, timeout)."""


def commissioning_record(journal: dict[str, Any], report: dict[str, Any],
                         config_toml: str) -> dict[str, Any]:
    """What is registered: DALI buses, luminaire count, Modbus devices, report summary and
    the gateway.toml written."""
    args = journal.get("args", {})
    dali = ([{"name": args["bus"], "transport": args.get("transport"), "url": args["port"],
              "gear": report.get("gear_found", 0),
              "control_devices": len(report.get("control_devices", []))}]
            if args.get("bus") and args.get("port") else [])
    modbus = [{k: d.get(k) for k in ("line", "unit", "settings", "profile", "by",
                                     "serial_number")}
              for d in found_devices(journal)]
    summary = {k: report.get(k) for k in ("gear_found", "addressed", "kept", "bus_time_s",
                                          "frames", "selftest_failed")}
    summary["missing"] = len(report.get("missing", []))
    summary["unexpected"] = len(report.get("unexpected", []))
    return {"dali_buses": dali, "luminaires": int(report.get("gear_found", 0)),
            "modbus_devices": modbus, "report": summary, "config_toml": config_toml}


def register(url: str, token: str, gateway: str, record: dict[str, Any], *,
             timeout_s: float = 10.0) -> dict[str, Any]:
    """PUT ``record`` for ``gateway`` to the controller at ``url`` (e.g.
    ``https://lykta.example``); returns its answer (``known``: whether the applied strategy
    has this gateway)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # urllib would open file:// and ftp:// too, or fail with a bare ValueError
        raise RegistrationError(f"{url}: write http(s)://HOST[:PORT] (the controller's API)")
    req = urllib.request.Request(
        f"{url.rstrip('/')}/api/v1/gateways/{gateway}/commissioning",
        data=json.dumps(record).encode(), method="PUT",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - URL given by the user
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail")
        except (ValueError, AttributeError):
            detail = exc.reason
        raise RegistrationError(f"{url}: {exc.code} {detail}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ControllerUnreachable(f"{url}: not reachable ({reason})") from None
    except (http.client.HTTPException, ValueError) as exc:
        # something answered, but not a controller's HTTP API (another service on the port)
        raise RegistrationError(f"{url}: not a Lykta controller's answer "
                                f"({type(exc).__name__})") from None
    if not isinstance(answer, dict):
        raise RegistrationError(f"{url}: not a Lykta controller's answer "
                                f"(JSON {type(answer).__name__})")
    return answer
