"""``lykta dashboards push``: the dashboards into a running Grafana, through its HTTP API.

With ``grafana-client``: the folder and the InfluxDB data source are created when missing;
each dashboard is uploaded by its uid only when it differs from what Grafana holds (or sits
in another folder), so a second push changes nothing. Returns what it did, one line each.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

import niquests
from grafana_client import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaTimeoutError,
    GrafanaUnauthorizedError,
)

from lykta.cli.dashboard_influxql import DATASOURCE_TYPE, DATASOURCE_UID

# what Grafana adds to a stored dashboard; not ours to compare
_SERVER_KEYS = ("id", "version")


class PushError(RuntimeError):
    """A push that could not go on; the message is one line for the operator."""


def folder_uid(title: str) -> str:
    """The folder's uid, stable for a title (so pushes to one Grafana find it again)."""
    # Grafana's uids are [a-zA-Z0-9_-]: ö becomes o, anything else a dash
    ascii_title = unicodedata.normalize("NFKD", title.lower()).encode("ascii", "ignore").decode()
    slug = "".join(c if c.isalnum() else "-" for c in ascii_title).strip("-")
    return (slug or "lykta")[:40]


def datasource(influx_url: str, database: str, *, token: str | None = None) -> dict[str, Any]:
    """The InfluxDB (InfluxQL) data source the dashboards name by uid."""
    ds: dict[str, Any] = {
        "uid": DATASOURCE_UID,
        "name": "Lykta InfluxDB",
        "type": DATASOURCE_TYPE,
        "access": "proxy",
        "url": influx_url,
        "jsonData": {"dbName": database, "httpMode": "POST"},
    }
    if token:  # InfluxDB 2.x/3.x through InfluxQL: DBRP mapping plus a token
        ds["jsonData"]["httpHeaderName1"] = "Authorization"
        ds["secureJsonData"] = {"httpHeaderValue1": f"Token {token}"}
    return ds


def _call(what: str, url: str, fn: Any, *args: Any, missing_ok: bool = False) -> Any:
    """``fn(*args)``; every failure as a :class:`PushError` saying what it was doing.
    ``missing_ok``: a 404 returns ``None`` (the thing is not there yet)."""
    try:
        return fn(*args)
    except GrafanaUnauthorizedError:
        raise PushError(f"Grafana at {url} refused the token (401 while {what})") from None
    except GrafanaClientError as e:
        if e.status_code == 404 and missing_ok:
            return None
        if e.status_code == 403:
            raise PushError(
                f"Grafana at {url} refused the token (403 while {what}: it needs the Editor "
                "role, or Admin to create the data source)"
            ) from None
        raise PushError(f"Grafana at {url} refused {what}: {e.message}") from None
    except GrafanaTimeoutError:
        raise PushError(f"Grafana at {url} did not answer in time ({what})") from None
    except GrafanaException as e:
        raise PushError(f"Grafana at {url} failed while {what}: "
                        f"{e.message}") from None  # fmt: skip
    except (niquests.exceptions.RequestException, OSError) as e:
        raise PushError(f"cannot reach Grafana at {url}: {_reason(e)}") from None


def _reason(e: BaseException) -> str:
    """What went wrong reaching Grafana, short: the OS's words (``Connection refused``, a
    name that does not resolve) rather than urllib3's pool repr or a bare class name."""
    # niquests hands on urllib3's nested errors only as text; the OS's reason is its tail
    text = str(e)
    if m := re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text):
        return m.group(1).strip()
    if m := re.search(r"Failed to resolve '([^']+)'", text):
        return f"cannot resolve {m.group(1)}"
    return type(e).__name__


def check_url(url: str) -> None:
    """Raise :class:`PushError` unless ``url`` is an http(s) URL with a host and a valid port
    (caught here: a bad port would otherwise surface as a traceback from deep in the client)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise PushError(f"--url {url}: {e}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PushError(f"--url {url}: write http://HOST:PORT or https://HOST:PORT")
    if port == 0:
        raise PushError(f"--url {url}: port 0 is not a port")


def push(
    url: str,
    token: str,
    dashboards: dict[str, dict[str, Any]],
    *,
    folder: str = "Lykta",
    influx_url: str = "http://127.0.0.1:8086",
    database: str = "lykta",
    influx_token: str | None = None,
    timeout_s: float = 10.0,
) -> list[str]:
    """Push ``dashboards`` (name -> dashboard JSON) into the Grafana at ``url``."""
    check_url(url)
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
    changes: list[str] = []
    uid = folder_uid(folder)
    if _call("reading the folder", url, api.folder.get_folder, uid, missing_ok=True) is None:
        _call("creating the folder", url, api.folder.create_folder, folder, uid)
        changes.append(f"folder {folder!r} created")
    have_ds = _call("reading the data source", url, api.datasource.get_datasource_by_uid,
                    DATASOURCE_UID, missing_ok=True)  # fmt: skip
    if have_ds is None:
        ds = datasource(influx_url, database, token=influx_token)
        _call("creating the data source", url, api.datasource.create_datasource, ds)
        changes.append(f"data source {DATASOURCE_UID!r} created ({influx_url}, db {database})")
    for name, dash in dashboards.items():
        d_uid = dash["uid"]
        have = _call(f"reading dashboard {d_uid}", url, api.dashboard.get_dashboard, d_uid,
                     missing_ok=True)  # fmt: skip
        if have is not None:
            stored = {k: v for k, v in have.get("dashboard", {}).items() if k not in _SERVER_KEYS}
            same_folder = have.get("meta", {}).get("folderUid") == uid
            if stored == dash and same_folder:
                changes.append(f"dashboard {name} ({d_uid}) unchanged")
                continue
        body = {"dashboard": dash, "folderUid": uid, "overwrite": True,
                "message": "lykta dashboards push"}  # fmt: skip
        _call(f"uploading dashboard {d_uid}", url, api.dashboard.update_dashboard, body)
        changes.append(f"dashboard {name} ({d_uid}) {'updated' if have else 'created'}")
    return changes
