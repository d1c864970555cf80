"""Outbound events test helpers: a local receiver (pytest-httpserver) that checks every
delivery with the `standardwebhooks` package's own verifier, and subscriptions made as a
workspace admin."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import standardwebhooks
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response

from overture.platform.db import db, scoped_to
from overture.tenants.access import Principal, access_to
from overture.tenants.events import subscriptions
from tests.support import World


@dataclass
class Received:
    webhook_id: str
    type: str
    data: dict[str, Any]
    verified_with: list[str]  # the secrets that verified it


@dataclass
class Receiver:
    """Answers `status` (a 500 while failing), and keeps each request it got with the
    secrets (of `secrets`) whose signature checks out."""

    server: HTTPServer
    secrets: list[str] = field(default_factory=list)
    failures_left: int = 0
    got: list[Received] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # webhook-ids answered 500
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server.expect_request("/hook", method="POST").respond_with_handler(self.handle)

    @property
    def url(self) -> str:
        return self.server.url_for("/hook")

    def handle(self, request: Request) -> Response:
        body = request.get_data()
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified = []
        for secret in self.secrets:
            try:
                standardwebhooks.Webhook(secret).verify(body, headers)
                verified.append(secret)
            except standardwebhooks.WebhookVerificationError:
                pass
        with self.lock:
            if self.failures_left > 0:
                self.failures_left -= 1
                self.failed.append(headers["webhook-id"])
                return Response("down for maintenance", status=500)
            payload = json.loads(body)
            self.got.append(Received(headers["webhook-id"], payload["type"], payload["data"],
                                     verified))
        return Response("", status=204)

    def of_type(self, event_type: str) -> list[Received]:
        with self.lock:
            return [r for r in self.got if r.type == event_type]


def admin_access(w: World, tenant: str = "a", handle: str = "a_admin") -> Any:
    return access_to(Principal(w.users[handle]), w.tenants[tenant])


def subscribe(w: World, url: str, types: list[str], tenant: str = "a",
              handle: str = "a_admin", **options: Any) -> tuple[Any, str]:
    """(subscription id, its secret)."""
    with scoped_to(w.tenants[tenant].id, user_id=w.users[handle].id):
        made = subscriptions.create(admin_access(w, tenant, handle), url=url,
                                    event_types=types, **options)
        db.session.commit()
        return made.subscription.id, made.secret
