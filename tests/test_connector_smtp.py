"""Email by SMTP against a real local SMTP server (aiosmtpd) (`-k connector`)."""

from __future__ import annotations

import time
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from overture.connectors.errors import ActionFailed
from overture.connectors.execute import execute
from overture.platform.db import scoped_to
from tests.connector_support import (
    SilentServer,
    allow_loopback,  # noqa: F401  (fixture)
    connect,
    free_port,
)
from tests.engine_api_support import send

PASSWORD = "smtp-pass-s3cret"
pytestmark = pytest.mark.usefixtures("allow_loopback")


class Mailbox:
    """What the server received, and how it answers DATA."""

    def __init__(self, data_replies: list[str] | None = None) -> None:
        self.messages: list[dict[str, Any]] = []
        self.logins: list[tuple[str, str]] = []
        self.data_attempts = 0
        self.data_replies = list(data_replies or [])

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_attempts += 1
        if self.data_replies:
            return self.data_replies.pop(0)
        self.messages.append({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                              "message": message_from_bytes(envelope.content,
                                                            policy=policy.default)})
        return "250 2.0.0 queued"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=login == "mailer" and password == PASSWORD, handled=False)


@pytest.fixture
def mail_server():
    def start(data_replies: list[str] | None = None) -> tuple[Mailbox, int]:
        box = Mailbox(data_replies)
        port = free_port()
        controller = Controller(box, hostname="127.0.0.1", port=port,
                                authenticator=box.authenticate, auth_require_tls=False)
        controller.start()
        started.append(controller)
        return box, port

    started: list[Controller] = []
    yield start
    for controller in started:
        controller.stop()


def smtp_connection(app, world, port, password=PASSWORD, **more):
    return connect(app, world, "smtp", {
        "host": "127.0.0.1", "port": port, "security": "none", "username": "mailer",
        "password": password, "from_address": "robot@agency.example.com", **more})


EMAIL = {"to": ["ada@client.example.com"], "cc": ["bo@client.example.com"],
         "subject": "Your report is ready", "text": "Hello Ada,\nthe report is attached.",
         "html": "<p>Hello Ada,</p><p>the report is attached.</p>",
         "reply_to": "support@agency.example.com"}


def test_connector_smtp_sends_an_email_through_the_api(app, world, mail_server):
    box, port = mail_server()
    admin, conn = smtp_connection(app, world, port, from_name="Agency Robot")
    path = f"/connections/{conn}/actions/send_email"
    r = send(admin, "POST", path, {"Idempotency-Key": "step-123"}, json={"input": EMAIL})
    assert r.status_code == 200, r.get_json()
    out = r.get_json()["output"]
    assert out["accepted"] == ["ada@client.example.com", "bo@client.example.com"]
    assert out["refused"] == {}

    assert set(box.logins) == {("mailer", PASSWORD)}
    [got] = box.messages
    assert got["mail_from"] == "robot@agency.example.com"
    assert got["rcpt_tos"] == ["ada@client.example.com", "bo@client.example.com"]
    msg = got["message"]
    assert msg["Subject"] == "Your report is ready"
    assert msg["From"] == "Agency Robot <robot@agency.example.com>"
    assert msg["To"] == "ada@client.example.com" and msg["Cc"] == "bo@client.example.com"
    assert msg["Reply-To"] == "support@agency.example.com"
    assert msg["Message-ID"] == out["message_id"]
    plain = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert plain.strip() == EMAIL["text"]
    assert "<p>Hello Ada,</p>" in msg.get_body(("html",)).get_content()
    # The same idempotency key gives the same Message-ID (receivers dedupe on it).
    again = send(admin, "POST", path, {"Idempotency-Key": "step-123"},
                 json={"input": EMAIL}).get_json()["output"]
    assert again["message_id"] == out["message_id"]
    assert PASSWORD not in admin.get(f"/connections/{conn}").get_data(as_text=True)


def test_connector_smtp_auth_failure_and_validation_errors(app, world, mail_server):
    box, port = mail_server()
    admin, conn = smtp_connection(app, world, port, password="wrong-password")
    r = admin.post(f"/connections/{conn}/actions/send_email", json={"input": EMAIL})
    assert r.status_code == 502, r.get_json()
    assert r.get_json()["reason"] == "auth_failed"
    assert "535" in r.get_json()["detail"]
    assert set(box.logins) == {("mailer", "wrong-password")} and box.messages == []
    assert admin.post(f"/connections/{conn}/test").get_json()["reason"] == "auth_failed"

    box.logins.clear()  # input is checked before the server is called
    r = admin.post(f"/connections/{conn}/actions/send_email",
                   json={"input": {**EMAIL, "to": ["not an address"]}})
    assert r.status_code == 422
    assert r.get_json()["errors"][0]["field"] == "input.to.0"
    r = admin.post(f"/connections/{conn}/actions/send_email",
                   json={"input": {**EMAIL, "subject": "Hi\r\nBcc: victim@example.com"}})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "input.subject"
    r = admin.post(f"/connections/{conn}/actions/send_email",
                   json={"input": {k: v for k, v in EMAIL.items() if k != "text"}})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "input.text"
    assert box.logins == [] and box.messages == []


def test_connector_smtp_temporary_refusals_are_retried(app_ctx, world, mail_server,
                                                      monkeypatch):
    """A 451 ("try again later") is the SMTP 429: wait, try again, deliver once."""
    box, port = mail_server(data_replies=["451 4.7.1 Greylisted, try again later"])
    _, conn = smtp_connection(app_ctx, world, port)
    with scoped_to(world.tenants["a"].id):
        out = execute(conn, "send_email", EMAIL)
    assert box.data_attempts == 2
    assert len(box.messages) == 1 and out["accepted"] == EMAIL["to"] + EMAIL["cc"]

    # A refusal that lasts gives up after the retries, as a retryable failure.
    lasting, port = mail_server(data_replies=["452 4.3.1 Insufficient storage"] * 10)
    _, conn = smtp_connection(app_ctx, world, port, name="lasting")
    monkeypatch.setattr("overture.connectors.library.smtp.BACKOFF", 0.0)
    with scoped_to(world.tenants["a"].id), pytest.raises(ActionFailed) as failure:
        execute(conn, "send_email", EMAIL)
    assert failure.value.reason == "temporary" and failure.value.retryable
    assert "452" in failure.value.detail
    assert lasting.data_attempts == 4 and lasting.messages == []

    # A permanent refusal (5xx) fails at once and is not retried.
    spam, port = mail_server(data_replies=["554 5.7.1 Message rejected as spam"])
    _, conn = smtp_connection(app_ctx, world, port, name="spam")
    with scoped_to(world.tenants["a"].id), pytest.raises(ActionFailed) as failure:
        execute(conn, "send_email", EMAIL)
    assert failure.value.reason == "rejected" and not failure.value.retryable
    assert spam.data_attempts == 1


def test_connector_smtp_timeout_is_reported(app_ctx, world):
    with SilentServer() as silent:
        _, conn = smtp_connection(app_ctx, world, silent.port)
        began = time.monotonic()
        with scoped_to(world.tenants["a"].id), pytest.raises(ActionFailed) as failure:
            execute(conn, "send_email", EMAIL, timeout=0.5)
        assert time.monotonic() - began < 5
        assert silent.accepted, "the server was reached"
    assert failure.value.reason == "timeout"


def test_connector_smtp_refuses_private_hosts_and_missing_starttls(app_ctx, world, mail_server,
                                                                  monkeypatch):
    box, port = mail_server()
    _, plain = smtp_connection(app_ctx, world, port, security="starttls")
    with scoped_to(world.tenants["a"].id), pytest.raises(ActionFailed) as failure:
        execute(plain, "send_email", EMAIL)
    assert failure.value.reason == "misconfigured" and "STARTTLS" in failure.value.detail
    assert box.messages == []

    monkeypatch.delenv("OVERTURE_OUTBOUND_ALLOWLIST")
    _, private = smtp_connection(app_ctx, world, port, name="private")
    for host in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "2130706433"):
        with scoped_to(world.tenants["a"].id):
            from overture.connectors.models import Connection
            from overture.platform.db import db

            connection = db.session.get(Connection, private)
            connection.settings = {"host": host}
            db.session.commit()
            with pytest.raises(ActionFailed) as blocked:
                execute(private, "send_email", EMAIL)
        assert blocked.value.reason == "blocked", host
    assert box.logins == [] and box.messages == []
