"""``lykta dashboards push`` against a local server speaking Grafana's API: what it sends,
that a second push changes nothing, one-line errors for a refused token and no Grafana."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from lykta.cli.dashboard_influxql import DATASOURCE_UID
from tests.dashboards.fake_grafana import fake_grafana

DASHBOARDS = Path(__file__).parents[2] / "dashboards"
UIDS = {json.loads(p.read_text())["uid"] for p in DASHBOARDS.glob("*.json")}


def push(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lykta.cli.main", "dashboards", "push", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_push_creates_folder_datasource_dashboards_then_changes_nothing() -> None:
    with fake_grafana() as g:
        r = push("--url", g.url, "--token", g.token, "--folder", "Lykta Norrköping",
                 "--influx-url", "http://influx:8086", "--influx-db", "lykta")  # fmt: skip
        assert r.returncode == 0, r.stderr + r.stdout
        writes = g.writes()
        assert [(m, p) for m, p, _ in writes[:2]] == [("POST", "/api/folders"),
                                                      ("POST", "/api/datasources")]
        folder = writes[0][2]
        assert folder["title"] == "Lykta Norrköping"
        ds = writes[1][2]
        assert (ds["uid"], ds["type"], ds["url"], ds["jsonData"]["dbName"]) == (
            DATASOURCE_UID, "influxdb", "http://influx:8086", "lykta")
        uploads = [b for m, p, b in writes if p == "/api/dashboards/db"]
        assert {b["dashboard"]["uid"] for b in uploads} == UIDS and len(uploads) == len(UIDS)
        assert all(b["folderUid"] == folder["uid"] and b["overwrite"] for b in uploads)
        # what Grafana got is the committed JSON, unchanged
        committed = {d["uid"]: d for d in (json.loads(p.read_text())
                                           for p in DASHBOARDS.glob("*.json"))}
        assert all(b["dashboard"] == committed[b["dashboard"]["uid"]] for b in uploads)
        assert "created" in r.stdout and f"{len(UIDS) + 2} change(s)" in r.stdout

        g.requests.clear()
        again = push("--url", g.url, "--token", g.token, "--folder", "Lykta Norrköping")
        assert again.returncode == 0, again.stderr
        assert g.writes() == []
        assert again.stdout.count("unchanged") == len(UIDS)
        assert "already has these dashboards" in again.stdout

        # a dashboard edited in Grafana is put back, only that one
        any_uid = sorted(UIDS)[0]
        g.dashboards[any_uid]["dashboard"]["title"] = "edited by hand"
        g.requests.clear()
        third = push("--url", g.url, "--token", g.token, "--folder", "Lykta Norrköping")
        assert third.returncode == 0
        assert [(p, b["dashboard"]["uid"]) for _, p, b in g.writes()] == [
            ("/api/dashboards/db", any_uid)]
        assert f"({any_uid}) updated" in third.stdout


def test_a_refused_token_is_one_line_and_changes_nothing() -> None:
    with fake_grafana() as g:
        r = push("--url", g.url, "--token", "wrong")
        assert r.returncode == 1
        out = (r.stdout + r.stderr).strip()
        assert out.startswith("error: ") and "refused the token" in out and "\n" not in out
        assert g.writes() == []


def test_a_refused_request_is_one_line_with_grafanas_reason() -> None:
    with fake_grafana() as g:
        # someone made a data source of that name by hand, under another uid
        g.datasources["by-hand"] = {"uid": "by-hand", "name": "Lykta InfluxDB"}
        r = push("--url", g.url, "--token", g.token)
        assert r.returncode == 1
        out = (r.stdout + r.stderr).strip().splitlines()
        assert out[-1] == (f"error: Grafana at {g.url} refused creating the data source: "
                           "Client Error 409: data source with the same name already exists")
        assert not any(p == "/api/dashboards/db" for _, p, _ in g.writes())


def test_an_unreachable_grafana_is_one_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    r = push("--url", f"http://127.0.0.1:{port}", "--token", "t")
    assert r.returncode == 1
    out = (r.stdout + r.stderr).strip()
    assert out.startswith("error: cannot reach Grafana") and "\n" not in out, out


def test_a_bad_url_is_one_line_and_reaches_nothing() -> None:
    # a port out of range used to end in a traceback from deep in the HTTP client
    for url, says in [("http://127.0.0.1:99999", "Port out of range"),
                      ("grafana:3000", "write http://HOST:PORT"),
                      ("ftp://127.0.0.1", "write http://HOST:PORT")]:  # fmt: skip
        r = push("--url", url, "--token", "t")
        assert r.returncode == 1
        out = (r.stdout + r.stderr).strip()
        assert out.startswith(f"error: --url {url}: ") and says in out and "\n" not in out, out


def test_an_unreachable_grafana_says_why() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = push("--url", f"http://127.0.0.1:{port}", "--token", "t")
    assert (r.stdout + r.stderr).strip().endswith("Connection refused"), r.stdout + r.stderr


def test_a_damaged_dashboard_file_is_one_line_and_pushes_nothing(tmp_path: Path) -> None:
    for p in DASHBOARDS.glob("*.json"):
        (tmp_path / p.name).write_text(p.read_text())
    broken = next(iter(sorted(tmp_path.glob("*.json"))))
    broken.write_text(broken.read_text()[:100])
    with fake_grafana() as g:
        r = push("--url", g.url, "--token", g.token, "--dir", str(tmp_path))
        assert r.returncode == 1
        out = (r.stdout + r.stderr).strip()
        assert out.startswith(f"error: {broken}: not a dashboard JSON file") and "\n" not in out
        assert g.writes() == []
