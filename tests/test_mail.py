"""Platform mail (`-k mail`): the outbox is written in the act's transaction and
delivered after it commits, to a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import dataclasses
import email
import time
import uuid
from datetime import timedelta
from email import policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import update

from overture.platform import mail, mail_delivery
from overture.platform.db import db, utcnow
from overture.platform.mail import MailStatus, OutboxMessage, queue_mail
from overture.tenants.models import User
from tests.engine_support import free_port, running_workers

FROM = "Overture Test <noreply@overture.test>"


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(e.content, policy=policy.default)
                for e in self.envelopes]


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


@pytest.fixture
def sent(app_ctx, monkeypatch) -> list[tuple[uuid.UUID, int | None]]:
    """Messages handed to the broker, recorded instead of sent."""
    messages: list[tuple[uuid.UUID, int | None]] = []
    monkeypatch.setitem(app_ctx.extensions, mail.SENDER,
                        lambda message_id, delay_ms: messages.append((message_id, delay_ms)))
    return messages


def use_smtp(app: Any, monkeypatch: Any, port: int) -> None:
    settings = app.extensions["overture.settings"]
    monkeypatch.setitem(app.extensions, "overture.settings", dataclasses.replace(
        settings, smtp_host="127.0.0.1", smtp_port=port, mail_from=FROM))


def run_actor(app: Any, message_id: uuid.UUID) -> None:
    app.extensions[mail_delivery.EXTENSION].fn(str(message_id))


def stored(message_id: uuid.UUID) -> OutboxMessage:
    db.session.rollback()
    message = db.session.get(OutboxMessage, message_id, populate_existing=True)
    assert message is not None
    return message


def time_passes(message_id: uuid.UUID) -> None:
    """The message's retry delay is over."""
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id)
                       .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()


def sign_up(address: str) -> OutboxMessage:
    """A caller's act: a user row and its mail, in one transaction."""
    db.session.add(User(email=address, name="Ada"))
    return queue_mail(address, "test_message", {"name": "Ada"})


def test_mail_queued_message_is_delivered_as_html_and_text(app_ctx, sent, smtp_server,
                                                           monkeypatch):
    controller, inbox = smtp_server
    use_smtp(app_ctx, monkeypatch, controller.port)
    message_id = sign_up("ada@example.test").id
    assert sent == [], "nothing leaves before the act commits"
    db.session.commit()
    assert sent == [(message_id, None)]

    run_actor(app_ctx, message_id)

    (received,) = inbox.messages()
    assert inbox.envelopes[0].rcpt_tos == ["ada@example.test"]
    assert received["Subject"] == "Test message from Overture"
    assert received["From"] == FROM and received["To"] == "ada@example.test"
    assert received.get_content_type() == "multipart/alternative"
    text = received.get_body(("plain",)).get_content()
    html = received.get_body(("html",)).get_content()
    assert "Hello Ada," in text and ">Hello Ada,</p>" in html
    row = stored(message_id)
    assert (row.status, row.attempts, row.last_error) == (MailStatus.SENT, 0, None)
    assert row.sent_at is not None

    run_actor(app_ctx, message_id)  # a duplicate message delivers nothing twice
    assert len(inbox.envelopes) == 1


def test_mail_smtp_outage_keeps_the_act_and_marks_the_message_failed(app_ctx, sent,
                                                                     monkeypatch):
    use_smtp(app_ctx, monkeypatch, free_port())  # nothing listens there
    message_id = sign_up("bob@example.test").id
    db.session.commit()

    run_actor(app_ctx, message_id)
    row = stored(message_id)
    assert (row.status, row.attempts) == (MailStatus.PENDING, 1)
    assert "ConnectionRefusedError" in (row.last_error or "")
    assert sent[-1][0] == message_id and (sent[-1][1] or 0) > 0, "retried later"

    run_actor(app_ctx, message_id)
    assert stored(message_id).attempts == 1, "not due again before its delay"
    for _ in range(mail_delivery.MAX_ATTEMPTS - 1):
        time_passes(message_id)
        run_actor(app_ctx, message_id)
    row = stored(message_id)
    assert (row.status, row.attempts) == (MailStatus.FAILED, mail_delivery.MAX_ATTEMPTS)
    assert "ConnectionRefusedError" in (row.last_error or "") and row.sent_at is None
    assert db.session.query(User).filter_by(email="bob@example.test").count() == 1


def test_mail_to_an_address_with_a_line_break_fails_without_raising(app_ctx, sent,
                                                                    smtp_server, monkeypatch):
    controller, inbox = smtp_server
    use_smtp(app_ctx, monkeypatch, controller.port)
    message_id = queue_mail("a@example.test\r\nBcc: all@example.test", "test_message").id
    db.session.commit()
    run_actor(app_ctx, message_id)
    row = stored(message_id)
    assert row.attempts == 1 and "ValueError" in (row.last_error or "")
    assert inbox.envelopes == []


def test_mail_rolled_back_act_sends_nothing(app_ctx, sent, smtp_server, monkeypatch):
    controller, inbox = smtp_server
    use_smtp(app_ctx, monkeypatch, controller.port)
    message_id = sign_up("eve@example.test").id
    db.session.rollback()
    db.session.commit()
    assert sent == []
    assert db.session.get(OutboxMessage, message_id) is None
    run_actor(app_ctx, message_id)
    assert inbox.envelopes == []


def test_mail_brand_resolver_names_the_sender_and_html_is_escaped(app_ctx, sent,
                                                                  smtp_server, monkeypatch):
    controller, inbox = smtp_server
    use_smtp(app_ctx, monkeypatch, controller.port)
    tenant_id = uuid.uuid4()
    previous = mail.set_brand_resolver(
        lambda tid: {"name": "Acme & Co"} if tid == tenant_id else {})
    try:
        branded = queue_mail("c@example.test", "test_message", {"name": "<b>Cy</b>"},
                             tenant_id=tenant_id)
        plain = queue_mail("d@example.test", "test_message")
    finally:
        mail.set_brand_resolver(previous)
    db.session.commit()
    assert branded.subject == "Test message from Acme & Co"
    assert "<strong>Acme &amp; Co</strong>" in branded.html_body
    assert "&lt;b&gt;Cy&lt;/b&gt;" in branded.html_body and "<b>Cy</b>" in branded.text_body
    assert plain.subject == "Test message from Overture"
    assert stored(branded.id).sender_tenant_id == tenant_id

    run_actor(app_ctx, branded.id)
    assert inbox.messages()[0]["Subject"] == "Test message from Acme & Co"


def test_mail_lost_with_the_broker_is_sent_again_by_the_scheduler(app_ctx, smtp_server,
                                                                   monkeypatch):
    controller, inbox = smtp_server
    use_smtp(app_ctx, monkeypatch, controller.port)

    def broker_down(message_id: uuid.UUID, delay_ms: int | None) -> None:
        raise ConnectionError("redis is down")

    monkeypatch.setitem(app_ctx.extensions, mail.SENDER, broker_down)
    message_id = sign_up("hal@example.test").id
    db.session.commit()  # the act stands although its message could not leave
    assert stored(message_id).status == MailStatus.PENDING
    sent: list[uuid.UUID] = []
    monkeypatch.setitem(app_ctx.extensions, mail.SENDER, lambda mid, delay: sent.append(mid))
    assert mail.resend_due() == 0, "not overdue yet"
    assert mail.resend_due(utcnow() + mail.RESEND_AFTER) == 1
    assert sent == [message_id]
    run_actor(app_ctx, message_id)
    run_actor(app_ctx, message_id)  # a duplicate finds it sent
    assert len(inbox.envelopes) == 1 and stored(message_id).status == MailStatus.SENT
    assert mail.resend_due(utcnow() + mail.RESEND_AFTER) == 0


def test_mail_without_smtp_host_goes_to_the_local_mailbox(app_ctx, sent):
    assert not app_ctx.extensions["overture.settings"].smtp_host
    message_id = queue_mail("f@example.test", "test_message").id
    db.session.commit()
    run_actor(app_ctx, message_id)
    row = stored(message_id)
    assert row.status == MailStatus.SENT and "test message" in row.text_body


def test_mail_is_delivered_by_a_real_worker(app_ctx, settings, smtp_server):
    controller, inbox = smtp_server
    with running_workers(settings, processes=1, threads=2, env={
            "OVERTURE_SMTP_HOST": "127.0.0.1", "OVERTURE_SMTP_PORT": str(controller.port),
            "OVERTURE_MAIL_FROM": FROM}):
        message_id = sign_up("grace@example.test").id
        db.session.commit()
        deadline = time.monotonic() + 30
        while stored(message_id).status != MailStatus.SENT:
            assert time.monotonic() < deadline, "the worker did not deliver the mail"
            time.sleep(0.1)
    (received,) = inbox.messages()
    assert received["To"] == "grace@example.test" and received["From"] == FROM
