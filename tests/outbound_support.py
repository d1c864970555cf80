"""Local servers for the outbound guard tests: a TCP listener that records every
connection made to it (whatever the protocol: HTTP, SMTP, IMAP, PostgreSQL), and an
HTTP server on any loopback address (127.0.0.2 is loopback too, but another address)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pytest_httpserver import HTTPServer


class Listener:
    """Accepts and records connections, answers nothing: a path the guard should have
    refused shows up here as a connection."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.accepted: list[Any] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.accepted.append(peer)
            conn.close()

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def connections(self) -> int:
        with self._lock:
            return len(self.accepted)

    def close(self) -> None:
        self.sock.close()


@contextmanager
def listening(host: str = "127.0.0.1", port: int = 0) -> Iterator[Listener]:
    listener = Listener(host, port)
    try:
        yield listener
    finally:
        listener.close()


@contextmanager
def http_server(host: str = "127.0.0.1", port: int = 0) -> Iterator[HTTPServer]:
    """pytest-httpserver on another address than the default fixture's."""
    server = HTTPServer(host=host, port=port)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        if server.is_running():
            server.stop()
