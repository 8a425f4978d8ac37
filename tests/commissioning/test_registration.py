"""Registering with the controller: what is not a controller's API is a clear refusal, never a
traceback (the happy path and a refused token run against a real controller in
test_scan_modbus.py)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from gateway.commissioning.registration import (
    ControllerUnreachable,
    RegistrationError,
    register,
)


@contextmanager
def _answering(reply: bytes) -> Iterator[str]:
    """A loopback TCP server that answers every connection with ``reply`` and closes."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(10)

    def serve() -> None:
        try:
            while True:
                conn, _ = srv.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(reply)
        except OSError:
            return  # closed: the test is over

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        srv.close()
        t.join(5)


@pytest.mark.parametrize("url", ["controller.example", "file:///etc/passwd", "ftp://x/"])
def test_a_url_that_is_not_http_is_refused_before_anything_is_opened(url: str) -> None:
    with pytest.raises(RegistrationError, match=r"write http\(s\)://HOST") as e:
        register(url, "t", "gw-1", {})
    assert not isinstance(e.value, ControllerUnreachable)


@pytest.mark.parametrize("reply", [
    b"SSH-2.0-OpenSSH_9.2\r\n",  # another service on the port: no HTTP status line
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 6\r\n\r\n<html>",
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]",
])
def test_something_that_is_not_a_controller_is_one_clear_refusal(reply: bytes) -> None:
    with _answering(reply) as url:
        with pytest.raises(RegistrationError, match="not a Lykta controller's answer"):
            register(url, "t", "gw-1", {}, timeout_s=5)


def test_an_error_page_that_is_not_json_keeps_the_status() -> None:
    reply = (b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\n"
             b"<h1/>")
    with _answering(reply) as url:
        with pytest.raises(RegistrationError, match=f"^{url}: 502 Bad Gateway$"):
            register(url, "t", "gw-1", {}, timeout_s=5)
