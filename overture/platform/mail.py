"""Platform mail (invitations, password resets, notices): an outbox in the database.

`queue_mail` renders a template pair and adds a `mail_outbox` row to the caller's
session, in the transaction of the act that causes the mail: a rolled-back act sends
nothing. Once that transaction commits, the row's message goes to the `mail` queue
(`platform/mail_delivery.py` delivers it). Queueing never fails what committed: a
message that cannot reach the broker leaves its row pending, and the scheduler's
`resend_due` sends it again. `next_attempt_at` is when a pending row is next due; a
worker claims a row by moving it forward (a lease), so a duplicate message finds the
row not due and is dropped.

The outbox is platform-level, like `users`: mail on a tenant's behalf names that
tenant in `sender_tenant_id` (for its brand), which is not ownership, so the table has
no `tenant_id` and no row-level security, and only platform code reaches it by id.

Templates are `mail_templates/<name>.html` (autoescaped, extending `_layout.html`) and
`<name>.txt` (ending with `_signature.txt`); the text template sets the subject with
`{% set subject = ... %}`. Both see `brand`, from the resolver a higher floor registers
with `set_brand_resolver` (this floor cannot look tenants up itself), and the caller's
context. The brand's sender name and support address (the Reply-To) are kept on the row
when the mail is queued, so its headers and its body always show the same brand.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import current_app, has_app_context
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform import after_commit
from overture.platform.db import IdMixin, db, utcnow
from overture.platform.logging import get_logger

log = get_logger(__name__)

TEMPLATES = Path(__file__).with_name("mail_templates")
OUTBOX = "overture_mail_outbox"
SENDER = "overture.mail_sender"
RESEND_AFTER = timedelta(seconds=60)  # a due row this long past its time lost its message
# What a mail template may read of `brand` (the resolver's values go over these).
DEFAULT_BRAND: dict[str, Any] = {
    "name": "Overture", "product_name": "Overture", "sender_name": "Overture",
    "logo_url": None, "primary": "#3451d1", "on_primary": "#ffffff", "accent": "#7d93ff",
    "font_family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    "support_email": None, "support_url": None, "legal_footer": None, "white_label": False,
    "base_url": "",
}
BrandResolver = Callable[[uuid.UUID | None], Mapping[str, Any]]
MailSender = Callable[[uuid.UUID, int | None], None]


class MailStatus:
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class OutboxMessage(IdMixin, db.Model):
    __tablename__ = "mail_outbox"

    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(400))
    html_body: Mapped[str] = mapped_column(Text)
    text_body: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=MailStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    sender_tenant_id: Mapped[uuid.UUID | None]
    # The From name and Reply-To of the brand the mail is about (None: the platform's).
    sender_name: Mapped[str | None] = mapped_column(String(120))
    reply_to: Mapped[str | None] = mapped_column(String(320))


_environment = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                           autoescape=select_autoescape(["html"], default_for_string=False),
                           keep_trailing_newline=True)
_brand_resolver: BrandResolver = lambda tenant_id: DEFAULT_BRAND  # noqa: E731


def set_brand_resolver(resolver: BrandResolver | None) -> BrandResolver:
    """Where `brand` comes from: a callable taking the tenant id (or None for the
    platform) and returning at least a `name`. None restores the default. Returns the
    resolver it replaced (a test puts it back)."""
    global _brand_resolver
    previous = _brand_resolver
    _brand_resolver = resolver or (lambda tenant_id: DEFAULT_BRAND)
    return previous


def brand_for(tenant_id: uuid.UUID | None) -> dict[str, Any]:
    base = current_app.extensions["overture.settings"].public_url if has_app_context() else ""
    return {**DEFAULT_BRAND, "base_url": base, **dict(_brand_resolver(tenant_id) or {})}


def render(template: str, context: Mapping[str, Any],
           tenant_id: uuid.UUID | None = None,
           brand: Mapping[str, Any] | None = None) -> tuple[str, str, str]:
    """(subject, html, text) of a template pair."""
    values = {**context, "brand": brand if brand is not None else brand_for(tenant_id)}
    text_module = _environment.get_template(f"{template}.txt").make_module(values)
    subject = " ".join(str(getattr(text_module, "subject", "")).split())
    if not subject:
        raise ValueError(f"mail template {template}.txt sets no subject")
    html = _environment.get_template(f"{template}.html").render(values)
    return subject, html, str(text_module)


def queue_mail(to: str, template: str, context: Mapping[str, Any] | None = None,
               tenant_id: uuid.UUID | None = None) -> OutboxMessage:
    """Add the mail to the current transaction; it is sent once that commits. With a
    `tenant_id` the mail carries that tenant's brand: its body, its sender name and its
    support address as the Reply-To."""
    brand = brand_for(tenant_id)
    subject, html, text = render(template, context or {}, brand=brand)
    sender_name = reply_to = None
    if tenant_id is not None:
        sender_name = str(brand.get("sender_name") or "").strip()[:120] or None
        reply_to = str(brand.get("support_email") or "").strip()[:320] or None
    message = OutboxMessage(id=uuid.uuid4(), to_address=to, subject=subject, html_body=html,
                            text_body=text, template=template, status=MailStatus.PENDING,
                            attempts=0, next_attempt_at=utcnow(), sender_tenant_id=tenant_id,
                            sender_name=sender_name, reply_to=reply_to)
    db.session.add(message)
    after_commit.defer(db.session(), OUTBOX, message.id)
    return message


def set_sender(app: Any, sender: MailSender) -> None:
    """Where this app's mail messages go: the `mail` actor of its broker."""
    app.extensions[SENDER] = sender


def send_committed(message_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Send the messages of committed rows; returns those that could not leave."""
    if not message_ids or not has_app_context() or SENDER not in current_app.extensions:
        return list(message_ids)
    sender: MailSender = current_app.extensions[SENDER]
    unsent = []
    for message_id in message_ids:
        try:
            sender(message_id, None)
        except Exception:  # the row stays pending: resend_due sends it later
            log.warning("mail.enqueue_failed", message_id=str(message_id), exc_info=True)
            unsent.append(message_id)
    return unsent


def resend_due(now: datetime | None = None) -> int:
    """Send again the message of every pending row overdue by RESEND_AFTER (its message
    was lost with the broker, or its worker died); returns how many left."""
    overdue = (now or utcnow()) - RESEND_AFTER
    ids = list(db.session.scalars(select(OutboxMessage.id).where(
        OutboxMessage.status == MailStatus.PENDING,
        OutboxMessage.next_attempt_at <= overdue).limit(1000)))
    db.session.rollback()
    return len(ids) - len(send_committed(ids))


after_commit.register(OUTBOX, send_committed)
