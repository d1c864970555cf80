"""The platform admin's view of the mail outbox: what was sent, what failed and why.

Read-only. In the embedded default (no SMTP relay) this is where mail is read: the
local mailbox. With a relay it still shows each message's status, attempts and last
error, so a failing relay is visible to admins.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select

from overture.platform.db import db
from overture.platform.mail import OutboxMessage

PER_PAGE = 50
_LINK = re.compile(r"https?://[^\s<>\"']+")


@dataclass(frozen=True)
class MailboxPage:
    messages: list[OutboxMessage]
    page: int
    pages: int
    total: int


def recent(page: int = 1, per_page: int = PER_PAGE) -> MailboxPage:
    """Messages, newest first, one page of them (pages count from 1)."""
    total = db.session.scalar(select(func.count()).select_from(OutboxMessage)) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    messages = list(db.session.scalars(
        select(OutboxMessage)
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
        .offset((page - 1) * per_page).limit(per_page)))
    return MailboxPage(messages, page, pages, total)


def message(message_id: uuid.UUID) -> OutboxMessage | None:
    return db.session.get(OutboxMessage, message_id)


def links(text: str) -> list[str]:
    """The web links in a message's text, in order, once each."""
    return list(dict.fromkeys(_LINK.findall(text)))
