"""Delivery of the mail outbox: the Dramatiq actor `send_mail` on the `mail` queue.

A mail about a tenant that has its own SMTP server (or whose agency has one) leaves
through that server (`platform/mail_transport.py`, behind the outbound guard), from its
address. Everything else goes through the installation's relay (`OVERTURE_SMTP_*`),
which is the installation's own, like its database and Redis, so it is reached
directly. Without `OVERTURE_SMTP_HOST` (embedded mode) such a message is delivered to
the local mailbox: it stays in the table, marked sent, and its text goes to the log.

A worker first claims the row: pending and due, its `next_attempt_at` moves LEASE
ahead in one statement, so a duplicate message (or a resend by the scheduler) finds it
not due and is dropped. A failure counts an attempt and keeps the error; the message is
due again after a growing delay and marked failed after MAX_ATTEMPTS.
Nothing here raises into the act that queued the mail: it committed long before.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import Any

import dramatiq
from flask import current_app
from sqlalchemy import or_, update

from overture.platform import mail, mail_transport
from overture.platform.config import Settings
from overture.platform.db import db, utcnow
from overture.platform.logging import get_logger
from overture.platform.mail import MailStatus, OutboxMessage

log = get_logger(__name__)

QUEUE = "mail"
ACTOR = "send_mail"
EXTENSION = "overture.mail_actor"
MAX_ATTEMPTS = 5
RETRY_DELAYS_MS = (10_000, 60_000, 300_000, 1_800_000)
SMTP_TIMEOUT = 30.0
LEASE = timedelta(minutes=5)  # longer than a delivery can take
EARLY = timedelta(seconds=1)  # a delayed message may arrive this much before its time


def bind(app: Any, broker: dramatiq.Broker) -> dramatiq.Actor:
    """Declare the mail actor on `broker`, running inside `app`'s context."""

    def send_mail(message_id: str) -> None:
        with app.app_context():
            try:
                deliver(uuid.UUID(message_id))
            finally:
                db.session.remove()

    actor = broker.actors.get(ACTOR) or dramatiq.actor(
        send_mail, actor_name=ACTOR, queue_name=QUEUE, broker=broker, max_retries=0,
        time_limit=5 * 60 * 1000)

    def send(message_id: uuid.UUID, delay_ms: int | None = None) -> None:
        actor.send_with_options(args=(str(message_id),), delay=delay_ms)

    app.extensions[EXTENSION] = actor
    mail.set_sender(app, send)
    return actor


def deliver(message_id: uuid.UUID) -> str | None:
    """Deliver one outbox message; returns its status afterwards, or None when it was
    not claimed (no such row, not pending, or not due). Never raises for a failed
    delivery."""
    settings: Settings = current_app.extensions["overture.settings"]
    now = utcnow()
    claimed = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == MailStatus.PENDING,
               or_(OutboxMessage.next_attempt_at.is_(None),
                   OutboxMessage.next_attempt_at <= now + EARLY))
        .values(next_attempt_at=now + LEASE)
        .returning(OutboxMessage.id)).scalar()
    if claimed is None:
        db.session.rollback()
        return None
    message = db.session.get(OutboxMessage, message_id, populate_existing=True)
    assert message is not None
    to_address, text = message.to_address, message.text_body
    transport: mail_transport.Transport | None = None
    try:
        # Opening a tenant's sign-in from the vault records its use and commits.
        transport = mail_transport.transport_for(message.sender_tenant_id)
        message = db.session.get(OutboxMessage, message_id)
        assert message is not None
        email = build_email(message, settings, transport)  # a refused header fails too
        db.session.commit()  # no transaction stays open while the server answers
        if transport is not None:
            mail_transport.send(email, transport, SMTP_TIMEOUT)
        elif settings.smtp_host:
            transmit(email, settings)
        else:
            log.info("mail.local_mailbox", message_id=str(message_id), to=to_address,
                     subject=str(email["Subject"]), text=text)
    except Exception as error:
        said = f"{type(error).__name__}: {error}"
        said = transport.scrub(said) if transport is not None else said
        status = _failed(message_id, said)
        if transport is not None:
            mail_transport.report(transport, said)
        return status
    status = _record(message_id, status=MailStatus.SENT, sent_at=utcnow(), last_error=None,
                     next_attempt_at=None)
    if transport is not None:
        mail_transport.report(transport, None)
    return status


def build_email(message: OutboxMessage, settings: Settings,
                transport: mail_transport.Transport | None = None) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender(message, settings, transport)
    email["To"] = message.to_address
    if message.reply_to:
        email["Reply-To"] = message.reply_to
    email["Subject"] = message.subject
    email["Date"] = formatdate(localtime=False)
    # The sending address's own domain: a white-label mail names no other.
    domain = parseaddr(str(email["From"]))[1].rpartition("@")[2] or "localhost"
    email["Message-ID"] = make_msgid(idstring=message.id.hex, domain=domain)
    email.set_content(message.text_body)
    email.add_alternative(message.html_body, subtype="html")
    return email


def sender(message: OutboxMessage, settings: Settings,
           transport: mail_transport.Transport | None = None) -> str:
    """The sending server's address (a tenant's own server's, else the installation's)
    under the name of the brand the mail is about; the platform's own mail keeps
    OVERTURE_MAIL_FROM as it is."""
    address = transport.from_address if transport is not None else \
        parseaddr(settings.mail_from)[1]
    name = (message.sender_name or "").strip()
    if message.sender_tenant_id is None or not name or not address:
        return address if transport is not None else settings.mail_from
    return formataddr((name, address))


def transmit(email: EmailMessage, settings: Settings) -> None:
    host, port = settings.smtp_host or "", settings.smtp_port
    context = ssl.create_default_context()
    server: smtplib.SMTP
    if settings.smtp_security == "tls":
        server = smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT, context=context)
    else:
        server = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT)
    with server:
        if settings.smtp_security == "starttls":
            server.starttls(context=context)
        if settings.smtp_user:
            server.login(settings.smtp_user, settings.smtp_password or "")
        server.send_message(email)


def _failed(message_id: uuid.UUID, error: str) -> str | None:
    db.session.rollback()
    message = db.session.get(OutboxMessage, message_id)
    if message is None:
        db.session.rollback()
        return None
    message.attempts += 1
    message.last_error = error[:2000]
    retry = message.attempts < MAX_ATTEMPTS
    delay_ms = RETRY_DELAYS_MS[min(message.attempts, len(RETRY_DELAYS_MS)) - 1]
    if retry:
        message.next_attempt_at = utcnow() + timedelta(milliseconds=delay_ms)
    else:
        message.status, message.next_attempt_at = MailStatus.FAILED, None
    attempts, status = message.attempts, message.status
    db.session.commit()
    log.warning("mail.delivery_failed", message_id=str(message_id), attempts=attempts,
                error=error, final=not retry)
    if retry:
        _send_later(message_id, delay_ms)
    return status


def _send_later(message_id: uuid.UUID, delay_ms: int) -> None:
    sender = current_app.extensions.get(mail.SENDER)
    try:
        if sender is not None:
            sender(message_id, delay_ms)
    except Exception:  # the row stays pending: mail.resend_pending sends it later
        log.warning("mail.retry_enqueue_failed", message_id=str(message_id), exc_info=True)


def _record(message_id: uuid.UUID, **values: Any) -> str | None:
    message = db.session.get(OutboxMessage, message_id)
    if message is None:
        db.session.rollback()
        return None
    for name, value in values.items():
        setattr(message, name, value)
    status = message.status
    db.session.commit()
    return status
