"""A small HTTP server speaking the few Grafana API endpoints ``lykta dashboards push`` uses
(no Grafana server installs here): folders, data sources and dashboards by uid, bearer-token
auth. It records every request so tests can assert what a push sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote


@dataclass
class Grafana:
    """What the fake Grafana holds, and the requests it got (method, path, JSON body)."""

    token: str
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    url: str = ""

    def writes(self) -> list[tuple[str, str, Any]]:
        """The requests that change something."""
        return [r for r in self.requests if r[0] != "GET"]

    def handle(self, method: str, path: str, auth: str | None, body: Any) -> tuple[int, Any]:
        self.requests.append((method, path, body))
        if auth != f"Bearer {self.token}":
            return 401, {"message": "Unauthorized"}
        parts = path.strip("/").split("/")
        match method, parts:
            case "GET", ["api", "folders", uid]:
                f = self.folders.get(uid)
                return (200, f) if f else (404, {"message": "folder not found"})
            case "POST", ["api", "folders"]:
                self.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"]}
                return 200, self.folders[body["uid"]]
            case "GET", ["api", "datasources", "uid", uid]:
                d = self.datasources.get(uid)
                return (200, d) if d else (404, {"message": "Data source not found"})
            case "POST", ["api", "datasources"]:
                if any(d["name"] == body["name"] for d in self.datasources.values()):
                    return 409, {"message": "data source with the same name already exists"}
                self.datasources[body["uid"]] = body
                return 200, {"datasource": body, "message": "Datasource added"}
            case "GET", ["api", "dashboards", "uid", uid]:
                d = self.dashboards.get(uid)
                return (200, d) if d else (404, {"message": "Dashboard not found"})
            case "POST", ["api", "dashboards", "db"]:
                dash = dict(body["dashboard"])
                old = self.dashboards.get(dash["uid"])
                version = old["dashboard"]["version"] + 1 if old else 1
                dash.update(id=7, version=version)
                self.dashboards[dash["uid"]] = {"dashboard": dash,
                                                "meta": {"folderUid": body["folderUid"]}}
                return 200, {"uid": dash["uid"], "status": "success", "version": version}
        return 404, {"message": "Not found"}


@contextmanager
def fake_grafana(token: str = "glsa_test") -> Iterator[Grafana]:
    """A fake Grafana on a free loopback port for the block."""
    state = Grafana(token)

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n)) if n else None
            status, out = state.handle(self.command, unquote(self.path.split("?")[0]),
                                       self.headers.get("Authorization"), body)
            data = json.dumps(out).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
