"""The IMAP new-email polling trigger against a local IMAP server, plugged into the
engine: trigger subscriptions, poll rounds, one run per email (`-k connector`)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from overture.connectors.models import TriggerEvent
from overture.orchestration import triggers
from overture.orchestration.models import Run
from overture.orchestration.trigger_models import TriggerSubscription
from overture.platform.db import db, scoped_to, utcnow
from tests.connector_support import (
    SilentServer,
    allow_loopback,  # noqa: F401  (fixture)
    connect,
)
from tests.engine_api_support import ok, publish_via_api
from tests.imap_fake import FakeImap, email_bytes
from tests.support import as_user

USER, PASSWORD = "inbox@agency.example.com", 'imap "pass" \\ s3cret'
ECHO = {"steps": [{"id": "echo", "type": "transform",
                   "output": {"subject": "{{ input.subject }}"}}]}
pytestmark = pytest.mark.usefixtures("allow_loopback")


@pytest.fixture
def mailbox():
    with FakeImap(USER, PASSWORD) as fake:
        yield fake


def subscribe(app, world, port, password=PASSWORD, handle="a_admin"):
    admin, conn = connect(app, world, "imap", {"host": "127.0.0.1", "port": port,
                                               "security": "none", "username": USER,
                                               "password": password}, handle=handle)
    workflow = publish_via_api(admin, ECHO)
    sub = ok(admin.post(f"/workflows/{workflow['id']}/triggers",
                        json={"connection_id": conn, "trigger_key": "new_email",
                              "interval_seconds": 60}), 201)
    return admin, workflow, sub


def poll(world, sub_id, tenant="a"):
    with scoped_to(world.tenants[tenant].id):
        return triggers.poll_subscription(sub_id)


def runs_of(world, workflow_id, tenant="a"):
    with scoped_to(world.tenants[tenant].id):
        rows = db.session.scalars(select(Run).where(Run.workflow_id == workflow_id)
                                  .order_by(Run.created_at)).all()
        out = [(r.trigger, r.input) for r in rows]
        db.session.rollback()
    return out


def test_connector_imap_polling_starts_one_run_per_new_email(app, world, mailbox):
    mailbox.deliver(email_bytes("Old news", message_id="<old@client.example.com>"))
    admin, workflow, sub = subscribe(app, world, mailbox.port)
    assert sub["trigger_key"] == "new_email" and sub["enabled"] is True

    # The first poll notes where the mailbox stands: old mail is not new.
    with scoped_to(world.tenants["a"].id):
        assert triggers.poll_due() == 0
    assert runs_of(world, workflow["id"]) == []

    mailbox.deliver(email_bytes("Order #1", message_id="<o1@client.example.com>",
                                text="Two boxes, please.", html="<p>Two boxes</p>"))
    mailbox.deliver(email_bytes("Order #2", sender="bo@client.example.com"))  # no Message-ID
    assert poll(world, sub["id"]) == 2
    assert poll(world, sub["id"]) == 0, "polling again starts nothing"
    started = runs_of(world, workflow["id"])
    assert [(t, i["subject"]) for t, i in started] == [("polling", "Order #1"),
                                                       ("polling", "Order #2")]
    first = started[0][1]
    assert first["message_id"] == "<o1@client.example.com>"
    assert first["from"] == {"name": "Ada Lovelace", "email": "ada@client.example.com"}
    assert first["text"].strip() == "Two boxes, please."
    assert first["html"].strip() == "<p>Two boxes</p>"

    # A cursor that goes back (a restore, a crash before it was saved) re-reads the
    # same mail: the dedupe keys stop it from starting anything twice.
    with scoped_to(world.tenants["a"].id):
        db.session.execute(update(TriggerSubscription).values(
            state={"uidvalidity": mailbox.uidvalidity, "last_uid": 1}))
        db.session.commit()
    assert poll(world, sub["id"]) == 0
    mailbox.deliver(email_bytes("Order #3", message_id="<o3@client.example.com>"))
    assert poll(world, sub["id"]) == 1
    assert len(runs_of(world, workflow["id"])) == 3
    with scoped_to(world.tenants["a"].id):
        assert len(db.session.scalars(select(TriggerEvent)).all()) == 3
        db.session.rollback()

    # Read-only: the folder is EXAMINEd and messages fetched with BODY.PEEK (still unread).
    assert mailbox.count("SELECT") == 0 and mailbox.count("EXAMINE") >= 4
    assert all("BODY.PEEK[]" in c for c in mailbox.commands if c.startswith("UID FETCH"))
    listed = ok(admin.get(f"/workflows/{workflow['id']}/triggers"))["items"]
    assert [s["id"] for s in listed] == [sub["id"]]
    assert listed[0]["last_error"] is None and listed[0]["last_polled_at"]
    # Tenant B sees none of it.
    other = as_user(app, world, "b_admin")
    assert other.get(f"/triggers/{sub['id']}").status_code == 404
    assert other.get(f"/workflows/{workflow['id']}/triggers").status_code == 404


def test_connector_imap_concurrent_polls_start_one_run_per_email(app, world, mailbox):
    _, workflow, sub = subscribe(app, world, mailbox.port)
    poll(world, sub["id"])  # the starting point
    for n in range(3):
        mailbox.deliver(email_bytes(f"Race {n}", message_id=f"<race{n}@client.example.com>"))
    tenant = world.tenants["a"].id
    mailbox.search_barrier = threading.Barrier(2)  # both polls see the same three emails
    results, errors = [], []

    def in_thread(work):
        def run():
            try:
                with app.app_context(), scoped_to(tenant):
                    try:
                        results.append(work())
                    finally:
                        db.session.remove()
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
        return threading.Thread(target=run)

    fetches = mailbox.count("UID FETCH")
    threads = [in_thread(lambda: triggers.poll_subscription(sub["id"])) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert mailbox.count("UID FETCH") == fetches + 6, "both polls read all three emails"
    assert sum(results) == 3
    assert sorted(i["subject"] for _, i in runs_of(world, workflow["id"])) == [
        "Race 0", "Race 1", "Race 2"]

    # Two schedulers' poll rounds at the same moment: one claims the subscription.
    mailbox.search_barrier = None
    for n in range(2):
        mailbox.deliver(email_bytes(f"Round {n}", message_id=f"<round{n}@client.example.com>"))
    with scoped_to(tenant):
        db.session.execute(update(TriggerSubscription).values(
            next_poll_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    logins = mailbox.count("LOGIN")
    results.clear()
    rounds = [in_thread(triggers.poll_due) for _ in range(2)]
    for t in rounds:
        t.start()
    for t in rounds:
        t.join(30)
    assert not errors, errors
    assert sum(results) == 2 and len(runs_of(world, workflow["id"])) == 5
    assert mailbox.count("LOGIN") == logins + 1, "only one round polled"
    with scoped_to(tenant):
        due = db.session.get(TriggerSubscription, sub["id"], populate_existing=True)
        assert due.next_poll_at > utcnow() + timedelta(seconds=50)
        db.session.rollback()


def test_connector_imap_failures_are_kept_on_the_subscription(app, world, mailbox,
                                                              monkeypatch):
    admin, workflow, sub = subscribe(app, world, mailbox.port, password="wrong")
    assert poll(world, sub["id"]) == 0
    got = ok(admin.get(f"/triggers/{sub['id']}"))
    assert got["last_error"].startswith("auth_failed: the mail server refused the credentials")
    assert "AUTHENTICATIONFAILED" in got["last_error"]
    test = ok(admin.post(f"/connections/{sub['connection_id']}/test"))
    assert test["ok"] is False and test["reason"] == "auth_failed"

    monkeypatch.setattr(triggers, "POLL_TIMEOUT", 0.5)
    with SilentServer() as silent:
        with scoped_to(world.tenants["a"].id):
            from overture.connectors.models import Connection

            connection = db.session.get(Connection, sub["connection_id"])
            connection.settings = {"port": silent.port}
            db.session.commit()
        began = time.monotonic()
        assert poll(world, sub["id"]) == 0
        assert time.monotonic() - began < 5
    got = ok(admin.get(f"/triggers/{sub['id']}"))
    assert got["last_error"].startswith("timeout: "), got["last_error"]
    assert runs_of(world, workflow["id"]) == []


def test_connector_imap_renumbered_folder_starts_nothing_twice(app, world, mailbox):
    _, workflow, sub = subscribe(app, world, mailbox.port)
    poll(world, sub["id"])
    mailbox.deliver(email_bytes("Before", message_id="<before@client.example.com>"))
    assert poll(world, sub["id"]) == 1
    mailbox.renumber()
    assert poll(world, sub["id"]) == 0  # a new starting point
    mailbox.deliver(email_bytes("After", message_id="<after@client.example.com>"))
    assert poll(world, sub["id"]) == 1
    assert [i["subject"] for _, i in runs_of(world, workflow["id"])] == ["Before", "After"]


def test_connector_trigger_subscriptions_are_validated(app, world, mailbox):
    admin, workflow, sub = subscribe(app, world, mailbox.port)
    path = f"/workflows/{workflow['id']}/triggers"
    conn = sub["connection_id"]

    def refused(body, field, status=422):
        r = admin.post(path, json=body)
        assert r.status_code == status, r.get_json()
        if field:
            assert r.get_json()["errors"][0]["field"] == field

    refused({"connection_id": conn, "trigger_key": "nope"}, "trigger_key")
    refused({"connection_id": conn, "trigger_key": "new_email", "interval_seconds": 5},
            "interval_seconds")
    _, github = connect(app, world, "github", {"api_key": "ghp_token_for_tests"}, name="gh")
    refused({"connection_id": github, "trigger_key": "new_email"}, "trigger_key")
    _, foreign = connect(app, world, "imap", {"host": "127.0.0.1", "username": "u",
                                              "password": "imap-secret-b"}, handle="b_admin")
    refused({"connection_id": foreign, "trigger_key": "new_email"}, "connection_id")
    refused({"connection_id": conn, "trigger_key": "new_email"}, None, status=409)

    paused = ok(admin.patch(f"/triggers/{sub['id']}", json={"enabled": False}))
    assert paused["enabled"] is False
    with scoped_to(world.tenants["a"].id):
        db.session.execute(update(TriggerSubscription).values(
            next_poll_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        assert triggers.poll_due() == 0
    assert mailbox.count("LOGIN") == 0, "a paused subscription is not polled"
    assert admin.delete(f"/triggers/{sub['id']}").status_code == 204
    assert admin.get(f"/triggers/{sub['id']}").status_code == 404
