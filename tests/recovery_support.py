"""Helpers for the emailed-link tests: the outbox as the mail, its link as a path."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from overture.platform import audit, mail
from overture.platform.db import PLATFORM_TENANT_ID, db, scoped_to
from overture.platform.mail import OutboxMessage
from tests.support import csrf_token, signed_in_csrf_token

SENT = "If an account exists for that address, we have sent a link."
LINK = re.compile(r"https?://\S+")


@pytest.fixture
def outbox(app_ctx: Any, monkeypatch: Any) -> list[Any]:
    """Mail leaves no further than the outbox table (no broker message)."""
    handed: list[Any] = []
    monkeypatch.setitem(app_ctx.extensions, mail.SENDER,
                        lambda message_id, delay_ms: handed.append(message_id))
    return handed


def mails(to: str | None = None) -> list[OutboxMessage]:
    db.session.rollback()
    query = select(OutboxMessage).order_by(OutboxMessage.created_at)
    if to is not None:
        query = query.where(OutboxMessage.to_address == to)
    return list(db.session.scalars(query))


def link_in(message: OutboxMessage) -> str:
    """The path of the one link in a mail (the same in its text and HTML)."""
    found = set(LINK.findall(message.text_body))
    assert len(found) == 1, found
    link = found.pop()
    assert link in message.html_body
    return urlsplit(link).path


def post_form(client: FlaskClient, path: str, **data: str) -> Any:
    """A form post, signed in or not, with the session's CSRF token."""
    signed_in = client.get("/login").status_code == 302
    token = signed_in_csrf_token(client) if signed_in else csrf_token(client)
    return client.post(path, data={**data, "csrf_token": token})


def text(response: Any) -> str:
    return response.get_data(as_text=True)


def platform_events(prefix: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    with scoped_to(PLATFORM_TENANT_ID):
        rows = audit.list_events(audit.EventFilter(action_prefix=prefix), None, 200)[0]
        return [(e.action, e.target_id, e.details) for e in rows]
