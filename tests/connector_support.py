"""Helpers for connector tests that need raw sockets: a free port, a server that
accepts and never answers, the loopback allow-list, and a connection made through
the API.

Used by the SMTP, IMAP, PostgreSQL and OpenAPI tests.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from tests.support import Api, World, as_user, unique

SECRET_FIELDS = ("api_key", "password", "bearer_token", "api_token", "client_secret",
                 "access_token", "refresh_token")


@pytest.fixture
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never says a word (a stalled app)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


def connect(app: Any, world: World, connector_key: str, credentials: dict[str, Any],
            base_url: str | None = None, settings: dict[str, Any] | None = None,
            name: str | None = None, handle: str = "a_admin") -> tuple[Api, str]:
    """A connection made through the API by `handle` (default: workspace A's admin);
    its secrets never come back. Returns (that caller, the connection id)."""
    admin = as_user(app, world, handle)
    body: dict[str, Any] = {"connector_key": connector_key,
                            "name": name or f"{connector_key}-{unique()}",
                            "credentials": credentials, "settings": settings or {}}
    if base_url is not None:
        body["base_url"] = base_url
    r = admin.post("/connections", json=body)
    assert r.status_code == 201, r.get_json()
    for field in SECRET_FIELDS:
        if isinstance(credentials.get(field), str):
            assert credentials[field] not in r.get_data(as_text=True)
    return admin, r.get_json()["id"]
