"""Tenants' own SMTP servers (`-k mail`): an agency's server sends its clients' mail, a
workspace's own wins over it, everyone else's mail stays on the installation's relay;
the sign-in comes from the vault, a failure is retried and shown without the password,
and a test message says whether mail leaves. Real local SMTP servers (aiosmtpd) all
along; the mail actor delivers in this process."""

from __future__ import annotations

import base64
import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from overture.billing.alerts import send_usage_alert
from overture.platform import mail, mail_delivery
from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to, utcnow
from overture.platform.mail import MailStatus, OutboxMessage
from tests.engine_api_support import ok
from tests.mail_support import Inbox, smtp_server
from tests.support import World, as_key, as_user

RELAY_FROM = "Mail robot <noreply@mail.example.test>"
PASSWORD = "s3cret pass-word"
SERVER = {"host": "127.0.0.1", "security": "none", "from_address": "mail@northwind.example",
          "username": "mailer", "password": PASSWORD}


@pytest.fixture
def queued(app_ctx, monkeypatch) -> list[tuple[uuid.UUID, int | None]]:
    """Messages handed to the broker, kept here: the test delivers them."""
    handed: list[tuple[uuid.UUID, int | None]] = []
    monkeypatch.setitem(app_ctx.extensions, mail.SENDER,
                        lambda message_id, delay_ms: handed.append((message_id, delay_ms)))
    return handed


@pytest.fixture
def relay(app_ctx, monkeypatch):
    """The installation's relay, and loopback allowed for tenants' servers (the outbound
    guard refuses it otherwise: tests/test_outbound_paths.py)."""
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.0/8")
    with smtp_server() as (port, inbox):
        settings = app_ctx.extensions["overture.settings"]
        monkeypatch.setitem(app_ctx.extensions, "overture.settings", dataclasses.replace(
            settings, smtp_host="127.0.0.1", smtp_port=port, mail_from=RELAY_FROM))
        yield inbox


def deliver(app: Any, queued: list[tuple[uuid.UUID, int | None]]) -> None:
    """The mail actor, for every message handed over so far (once each)."""
    while queued:
        message_id, _ = queued.pop(0)
        app.extensions[mail_delivery.EXTENSION].fn(str(message_id))


def alert(world: World, tenant: str, threshold: int = 80) -> None:
    assert send_usage_alert(world.tenants[tenant].id, "runs_started", threshold, 8, 10,
                            meter_label="runs")
    db.session.commit()


def stored(message_id: uuid.UUID) -> OutboxMessage:
    db.session.rollback()
    message = db.session.get(OutboxMessage, message_id, populate_existing=True)
    assert message is not None
    return message


def test_mail_an_agencys_server_sends_its_clients_mail_and_a_workspace_may_use_its_own(
        app, world, queued, relay):
    agency = as_user(app, world, "nw_admin", "northwind")
    ok(agency.patch("/brand", json={"sender_name": "Northwind Mail"}))
    with smtp_server(Inbox(login=("mailer", PASSWORD))) as (port, agency_box):
        saved = agency.put("/mail-server", json={**SERVER, "port": port})
        assert PASSWORD not in saved.get_data(as_text=True)
        own = ok(saved)["own"]
        assert (own["host"], own["port"], own["username"], own["password_set"]) == (
            "127.0.0.1", port, "mailer", True)
        client_admin = as_key(app, world, "a_admin")
        assert ok(client_admin.get("/mail-server")) == {"own": None, "route": {
            "source": "agency", "tenant_name": "Northwind",
            "from_address": "mail@northwind.example"}}

        alert(world, "a")  # about A: through its agency's server
        alert(world, "c")  # about C (another agency, no server): the relay
        deliver(app, queued)
        to_a = agency_box.messages(world.users["a_owner"].email)
        assert len(to_a) == 1 and to_a[0]["From"] == "Northwind Mail <mail@northwind.example>"
        assert to_a[0]["Message-ID"].endswith("@northwind.example>")
        assert agency_box.logins and set(agency_box.logins) == {"mailer"}
        assert [m["To"] for m in relay.messages()] == [world.users["c_owner"].email]
        assert agency_box.messages(world.users["c_owner"].email) == []
        with scoped_to(world.tenants["northwind"].id):
            uses = db.session.scalars(select(AuditEvent).where(
                AuditEvent.action == "credential.used")).all()
            assert uses and all("mail delivery" in e.details["purpose"] for e in uses)
            db.session.rollback()
        assert ok(agency.get("/mail-server"))["own"]["last_sent_at"] is not None

        # Workspace A's own server (no sign-in) wins for A; B keeps the agency's.
        with smtp_server() as (own_port, own_box):
            ok(client_admin.put("/mail-server", json={
                "host": "127.0.0.1", "port": own_port, "security": "none",
                "from_address": "hello@ws-a.example"}))
            test = ok(client_admin.post("/mail-server/test"), 202)
            assert (test["status"], test["to"]) == ("pending", world.users["a_admin"].email)
            alert(world, "b")
            deliver(app, queued)
            (received,) = own_box.messages(world.users["a_admin"].email)
            assert received["Subject"] == "Test message from Overture"
            assert received["From"] == "Northwind Mail <hello@ws-a.example>"
            assert "sent through the mail server 127.0.0.1" in received.get_body(
                ("plain",)).get_content()
            shown = ok(client_admin.get(f"/mail-server/test/{test['id']}"))
            assert (shown["status"], shown["last_error"]) == ("sent", None)
            assert len(agency_box.messages(world.users["b_owner"].email)) == 1

            # Removed: A's mail goes through the agency again.
            assert client_admin.delete("/mail-server").status_code == 204
            assert ok(client_admin.get("/mail-server"))["route"]["source"] == "agency"
    # Someone else's test message is no business of A's.
    other = ok(as_key(app, world, "b_admin").post("/mail-server/test"), 202)
    assert client_admin.get(f"/mail-server/test/{other['id']}").status_code == 404


def test_mail_server_failures_are_retried_and_shown_without_the_password(
        app, world, queued, relay):
    agency = as_user(app, world, "nw_admin", "northwind")
    talkative = Inbox(refusal="535 {user} sent {password} ({password_b64}): not right")
    with smtp_server(talkative) as (port, box):
        ok(agency.put("/mail-server", json={**SERVER, "port": port}))
        alert(world, "a")
        (first, _), (second, _) = queued
        deliver(app, queued)
        row = stored(first)
        assert (row.status, row.attempts) == (MailStatus.PENDING, 1)
        assert row.last_error.startswith("SMTPAuthenticationError: (535, b'mailer sent ****")
        secret_forms = (PASSWORD, base64.b64encode(PASSWORD.encode()).decode())
        assert not any(f in row.last_error for f in secret_forms), row.last_error
        shown = agency.get("/mail-server")
        assert ok(shown)["own"]["last_error"].startswith("SMTPAuthenticationError")
        assert not any(f in shown.get_data(as_text=True) for f in secret_forms)
        page = agency.client.get("/mail-server", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "mailer sent ********" in page.get_data(as_text=True)
        assert not any(f in page.get_data(as_text=True) for f in secret_forms)
        assert box.messages() == [] and relay.messages() == [], "never the relay instead"

        # The outbox tries again after its delay; the server now takes the password.
        talkative.refusal, talkative.login = None, ("mailer", PASSWORD)
        db.session.execute(update(OutboxMessage).where(OutboxMessage.id.in_([first, second]))
                           .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        deliver(app, [(first, None), (second, None)])
        assert stored(first).status == stored(second).status == MailStatus.SENT
        assert len(box.messages()) == 2


def test_mail_server_settings_are_checked_and_kept_for_tenant_managers(
        app, world, queued, relay, monkeypatch):
    admin = as_key(app, world, "a_admin")
    refused = admin.put("/mail-server", json={"host": "smtp example", "port": 0,
                                              "security": "carrier pigeon",
                                              "from_address": "nobody"})
    assert refused.status_code == 422
    fields = {e["field"] for e in refused.get_json()["errors"]}
    assert {"port", "security"} <= fields  # the schema's own checks come first
    refused = admin.put("/mail-server", json={"host": "smtp example", "from_address": "x"})
    assert {e["field"] for e in refused.get_json()["errors"]} == {"host", "from_address"}
    new = admin.put("/mail-server", json={**SERVER, "port": 2525, "password": ""})
    assert new.status_code == 422 and new.get_json()["errors"][0]["field"] == "password"
    monkeypatch.delenv("OVERTURE_OUTBOUND_ALLOWLIST")
    private = admin.put("/mail-server", json={**SERVER, "port": 2525})
    assert private.status_code == 422 and "not a public address" in private.get_json()[
        "errors"][0]["message"]
    assert ok(admin.get("/mail-server"))["own"] is None, "nothing half-saved"

    viewer = as_user(app, world, "a_viewer")
    assert viewer.put("/mail-server", json={**SERVER, "port": 2525}).status_code == 403
    assert viewer.post("/mail-server/test").status_code == 403
    assert viewer.delete("/mail-server").status_code == 403
    assert ok(viewer.get("/mail-server"))["route"]["source"] == "platform"
