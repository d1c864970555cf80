"""Helpers for the Slack, Google Sheets, HubSpot and Zendesk connector tests: a
connection pointed at a local fake of the app (pytest-httpserver), answers that
throttle or stall the way the real APIs do, and the audit trail of workspace A."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from werkzeug.wrappers import Request, Response

from overture.platform import audit
from overture.platform.db import scoped_to
from tests.support import Api, World, as_user, unique


def connect(app: Any, world: World, connector_key: str, *, credentials: dict[str, Any],
            base_url: str | None, settings: dict[str, Any] | None = None,
            secrets: tuple[str, ...] = ()) -> tuple[Api, str]:
    """A connection in workspace A, made by its admin through the API; none of
    `secrets` comes back in the answer."""
    caller = as_user(app, world, "a_admin")
    body: dict[str, Any] = {"connector_key": connector_key,
                            "name": f"{connector_key}-{unique()}", "credentials": credentials}
    if base_url is not None:
        body["base_url"] = base_url
    if settings:
        body["settings"] = settings
    r = caller.post("/connections", json=body)
    assert r.status_code == 201, r.get_json()
    for secret in secrets:
        assert secret not in r.get_data(as_text=True)
    return caller, r.get_json()["id"]


def tenant_a(world: World) -> Any:
    return scoped_to(world.tenants["a"].id)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {},
                    content_type="application/json; charset=utf-8")


def throttled_then(throttled: Any, body: Any, status: int = 200, retry_after: str = "1"
                   ) -> tuple[Callable[[Request], Response], list[float]]:
    """A handler answering 429 with Retry-After (and the app's error body) once, then
    `body`; and the times the requests came."""
    calls: list[float] = []

    def handler(request: Request) -> Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return json_response(throttled, 429, {"Retry-After": retry_after})
        return json_response(body, status)

    return handler, calls


class Stalls:
    """A handler that answers only after `seconds` (longer than the caller waits).
    `wait()` lets the test end only once it has answered, so its late entry in the
    fake server's log never lands in the next test's."""

    def __init__(self, seconds: float, body: Any) -> None:
        self.seconds, self.body = seconds, body
        self.answered = threading.Event()

    def __call__(self, request: Request) -> Response:
        time.sleep(self.seconds)
        self.answered.set()
        return json_response(self.body)

    def wait(self) -> None:
        assert self.answered.wait(self.seconds + 5)
        time.sleep(0.05)  # the server logs the exchange after the handler returns


def requests_to(httpserver: Any, prefix: str) -> list[Request]:
    """The requests the fake app saw under `prefix` (this test's, not a neighbour's)."""
    return [request for request, _ in httpserver.log if request.path.startswith(prefix)]


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def events(world: World, prefix: str) -> list[Any]:
    """Workspace A's audit events whose action starts with `prefix`."""
    with tenant_a(world):
        return audit.list_events(audit.EventFilter(action_prefix=prefix), None, 50)[0]


def raw_uri(request: Request) -> str:
    """The request target as sent (before percent-decoding)."""
    return str(request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI"))
