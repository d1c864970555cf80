"""Helpers for the connector library tests: a connection pointed at a local fake of
the app (pytest-httpserver), calls through `execute`, and answers that throttle or
stall the way real APIs do."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
from typing import Any

from werkzeug.wrappers import Request, Response

from overture.connectors.execute import execute
from overture.platform.db import scoped_to
from tests.support import Api, World, as_user, unique

SECRET_FIELDS = ("api_key", "password", "bearer_token")


def connect(app: Any, world: World, connector_key: str, base_url: str,
            credentials: dict[str, Any], settings: dict[str, Any] | None = None
            ) -> tuple[Api, str]:
    """A connection in workspace A (by its admin, through the API) whose base URL is
    the fake server's. Its secrets never come back."""
    admin = as_user(app, world, "a_admin")
    r = admin.post("/connections", json={
        "connector_key": connector_key, "name": f"{connector_key}-{unique()}",
        "credentials": credentials, "base_url": base_url, "settings": settings or {}})
    assert r.status_code == 201, r.get_json()
    for name in SECRET_FIELDS:
        if name in credentials:
            assert credentials[name] not in r.get_data(as_text=True)
    return admin, r.get_json()["id"]


def call(world: World, connection_id: str, action: str, input: Any,
         idempotency_key: str | None = None, timeout: float = 30.0) -> Any:
    """`execute` as the engine calls it, in workspace A."""
    with scoped_to(world.tenants["a"].id):
        return execute(connection_id, action, input, idempotency_key, timeout)


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {},
                    content_type="application/json")


class ThrottledOnce:
    """The app's rate limit: the first request gets 429 with `Retry-After` and the
    app's own error body; later ones get `then`'s answer. Remembers when each came."""

    def __init__(self, error_body: Any, then: Any, retry_after: str = "1") -> None:
        self.error_body, self.then, self.retry_after = error_body, then, retry_after
        self.seen: list[tuple[float, Request]] = []

    def __call__(self, request: Request) -> Response:
        self.seen.append((time.monotonic(), request))
        if len(self.seen) == 1:
            return json_response(self.error_body, 429, {"Retry-After": self.retry_after})
        return self.then(request) if callable(self.then) else json_response(self.then)

    @property
    def waited(self) -> float:
        return self.seen[1][0] - self.seen[0][0]


class Stall:
    """An app that does not answer in time: each request waits until `finish()` (or
    `limit` seconds). `finish` also waits until the fake server logged the stalled
    requests, so they cannot spill into the next test's log."""

    def __init__(self, limit: float = 5.0) -> None:
        self.limit, self.released = limit, threading.Event()

    def __call__(self, request: Request) -> Response:
        self.released.wait(self.limit)
        return json_response({})

    def finish(self, httpserver: Any, requests: int = 1) -> None:
        self.released.set()
        deadline = time.monotonic() + self.limit
        while len(httpserver.log) < requests and time.monotonic() < deadline:
            time.sleep(0.01)


def form_of(request: Request) -> list[tuple[str, str]]:
    """A form body's pairs in order (repeated keys kept)."""
    return list(request.form.items(multi=True))


def post(api: Api, path: str, headers: dict[str, str], **kwargs: Any) -> Any:
    """`api.post` with extra request headers (an `Idempotency-Key`)."""
    return api.client.open("/api/v1" + path, method="POST",
                           headers={**api.headers(None), **headers}, **kwargs)


def settle(httpserver: Any) -> None:
    """Start a test with the fake server idle and its log empty. The server answers
    one request at a time, so a request that an earlier test left stalled (a timeout
    test) is finished once this probe is answered; then it is forgotten."""
    httpserver.expect_request("/__settle__").respond_with_data("")
    urllib.request.urlopen(httpserver.url_for("/__settle__"), timeout=10).read()
    httpserver.clear()
