"""A real HTTP proxy on 127.0.0.1 in front of a real InfluxDB that fails chosen ``/write``s.

Not a mock: requests travel over real sockets to the real server. The proxy only decides, per
``/write`` request in arrival order, to answer with an error status, to forward late (after the
client's timeout, so InfluxDB still stores the batch the client gave up on), or to cut the
connection without an answer. Everything else (``/query``, ``/ping``) is forwarded untouched.
With ``v2_to_v1``, a v2 ``/api/v2/write`` is passed on to the 1.x ``/write`` (same body, bucket
as database): InfluxDB 2.x does not install here, and 1.6 has no v2 API.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Fault:
    """What to do to one ``/write``: ``status`` answers it without forwarding; ``delay_s``
    forwards it after a pause; ``cut`` closes the connection without answering."""

    status: int | None = None
    body: bytes = b""
    delay_s: float = 0.0
    cut: bool = False


class FaultProxy:
    """``async with FaultProxy(upstream_url, [Fault(...), None, ...]) as proxy: proxy.url``."""

    def __init__(
        self, upstream: str, faults: list[Fault | None], *, v2_to_v1: bool = False
    ) -> None:
        self.upstream = upstream
        self.faults = list(faults)
        self.v2_to_v1 = v2_to_v1
        self.writes = 0
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # method, target, headers
        self._server: asyncio.Server | None = None
        self._client = httpx.AsyncClient(base_url=upstream, timeout=30)
        self._handlers: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for t in list(self._handlers):
            t.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()
        await self._client.aclose()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, target, _ = request_line.split(" ", 2)
                headers = {}
                for h in header_lines:
                    if ":" in h:
                        k, v = h.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append((method, target, headers))
                if self.v2_to_v1 and target.startswith("/api/v2/write"):
                    # InfluxDB 1.6 has no v2 API: hand the same body to its /write, with the
                    # bucket as database and the precision the client asked for.
                    q = httpx.URL(target).params
                    target = str(
                        httpx.URL("/write", params={"db": q["bucket"], "precision": q["precision"]})
                    )
                fault = None
                if target.startswith("/write"):
                    self.writes += 1
                    fault = self.faults.pop(0) if self.faults else None
                if fault is not None and fault.cut:
                    return
                if fault is not None and fault.status is not None:
                    status, payload = fault.status, fault.body
                else:
                    if fault is not None:
                        await asyncio.sleep(fault.delay_s)
                    r = await self._client.request(
                        method, target, content=body,
                        headers={"content-type": headers.get("content-type", "")},
                    )
                    status, payload = r.status_code, r.content
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
