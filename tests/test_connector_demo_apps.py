"""The two built-in demo apps the seeded support demo runs on: the Demo CRM (sample
accounts kept on its connection) and the Demo outbox (records email and chat posts,
delivers nothing). They call no outside service, so the HTTP checks of the library
(auth failure, 429, timeout) have nothing to act on; what a user relies on is here:
the answers, validation naming the field, the misconfigured case, the outbox keeping
every message exactly once, and the framework's audit and metering."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from overture.billing.usage import UsageEvent
from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to
from tests.connector_library_support import call
from tests.engine_api_support import at_once, ok, send
from tests.support import Api, World, as_user, unique

ACCOUNTS = [
    {"id": "ACC-1", "name": "Ada Lovelace", "email": "Ada@Example.com", "plan": "Business"},
    {"id": "ACC-2", "name": "Alan Turing", "email": "alan@example.com", "plan": "Starter"},
]
EMAIL = {"to": ["ada@example.com"], "subject": "Re: your invoice", "text": "Refunded."}


def connection(app: Any, world: World, key: str, settings: dict[str, Any]) -> tuple[Api, str]:
    admin = as_user(app, world, "a_admin")
    created = ok(admin.post("/connections", json={
        "connector_key": key, "name": f"{key}-{unique()}", "settings": settings}), 201)
    return admin, created["id"]


def action(api: Api, connection_id: str, name: str, input: Any, key: str | None = None) -> Any:
    return send(api, "POST", f"/connections/{connection_id}/actions/{name}",
                {"Idempotency-Key": key} if key else {}, json={"input": input})


def outbox(api: Api, connection_id: str) -> list[dict[str, Any]]:
    return ok(api.get(f"/connections/{connection_id}"))["settings"].get("messages", [])


# --------------------------------------------------------------------------- Demo CRM


def test_connector_demo_crm_finds_accounts_by_email(app, world):
    admin, crm = connection(app, world, "demo_crm", {"accounts": ACCOUNTS})
    found = ok(action(admin, crm, "find_account", {"email": "ada@example.COM"}))["output"]
    assert found == {"found": True, "account": ACCOUNTS[0]}
    missing = ok(action(admin, crm, "find_account", {"email": "grace@example.com"}))
    assert missing["output"] == {"found": False, "account": None}
    listed = ok(action(admin, crm, "list_accounts", {"limit": 1}))["output"]
    assert listed == {"accounts": ACCOUNTS[:1], "total": 2}
    checked = ok(admin.post(f"/connections/{crm}/test"))
    assert checked["ok"] and "2 sample account(s)" in checked["detail"]
    with scoped_to(world.tenants["a"].id):  # the framework audits and meters each call
        calls = [e.details for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "connector.action_called").order_by(AuditEvent.seq))]
        metered = len(db.session.scalars(select(UsageEvent).where(
            UsageEvent.metric == "action_calls")).all())
        db.session.rollback()
    assert [(c["connector"], c["action"]) for c in calls] == [
        ("demo_crm", "find_account"), ("demo_crm", "find_account"),
        ("demo_crm", "list_accounts")]
    assert metered == 3


def test_connector_demo_crm_validation_error_and_missing_accounts(app, world):
    admin, crm = connection(app, world, "demo_crm", {"accounts": ACCOUNTS})
    r = action(admin, crm, "find_account", {"email": "not an email"})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "input.email"
    r = action(admin, crm, "find_account", {})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "input.email"
    _, empty = connection(app, world, "demo_crm", {})
    r = action(admin, empty, "find_account", {"email": "ada@example.com"})
    assert r.status_code == 502 and r.get_json()["reason"] == "misconfigured"
    _, broken = connection(app, world, "demo_crm", {"accounts": [{"name": "no email"}]})
    r = action(admin, broken, "find_account", {"email": "ada@example.com"})
    assert r.status_code == 502 and "each with an email" in r.get_json()["detail"]


# --------------------------------------------------------------------------- Demo outbox


def test_connector_demo_outbox_records_messages_and_delivers_nothing(app, world):
    admin, box = connection(app, world, "demo_outbox", {})
    sent = ok(action(admin, box, "send_email", EMAIL, key="ovt-step-1"))["output"]
    assert (sent["status"], sent["delivered"], sent["replayed"]) == ("sent_to_outbox",
                                                                     False, False)
    posted = ok(action(admin, box, "post_message",
                       {"channel": "#support", "text": "a ticket"}))["output"]
    assert posted["delivered"] is False and posted["channel"] == "#support"
    email, post = outbox(admin, box)
    assert {k: email[k] for k in ("kind", "to", "subject", "text")} == {"kind": "email",
                                                                         **EMAIL}
    assert email["message_id"] == sent["message_id"]
    assert (post["kind"], post["channel"], post["text"]) == ("chat", "#support", "a ticket")

    # an engine retry (the same idempotency key) finds its message: recorded once
    again = ok(action(admin, box, "send_email", EMAIL, key="ovt-step-1"))["output"]
    assert again["replayed"] is True and again["message_id"] == sent["message_id"]
    assert len(outbox(admin, box)) == 2
    checked = ok(admin.post(f"/connections/{box}/test"))
    assert "holds 2 message(s)" in checked["detail"] and "delivers nothing" in checked["detail"]


def test_connector_demo_outbox_takes_the_smtp_and_slack_input(app, world):
    admin, box = connection(app, world, "demo_outbox", {})
    r = action(admin, box, "send_email", {"subject": "x", "text": "y"})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "input.to"
    r = action(admin, box, "send_email", {**EMAIL, "subject": "two\nlines"})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "input.subject"
    r = action(admin, box, "post_message", {"channel": "#support"})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "input.text"
    assert outbox(admin, box) == []


def test_connector_demo_outbox_keeps_every_message_sent_at_once(app_ctx, world):
    admin, box = connection(app_ctx, world, "demo_outbox", {})

    def record(n: int) -> Any:
        with app_ctx.app_context():
            try:
                return call(world, box, "send_email", {**EMAIL, "subject": f"no. {n}"},
                            idempotency_key=f"ovt-{n}")
            finally:
                db.session.remove()

    results = at_once(*[lambda n=n: record(n) for n in range(8)])
    assert len({r["message_id"] for r in results}) == 8
    subjects = sorted(m["subject"] for m in outbox(admin, box))
    assert subjects == sorted(f"no. {n}" for n in range(8))
