"""Branded mail end to end (`-k mail`): every kind of mail, caused the way a user causes
it (an invitation, a reset asked for on the client's domain, a portal sign-in link, a
run waiting for approval, an approval escalated by the sweeper, a failed run, usage and
budget alerts), rendered and delivered by a real `overture worker` through a real local
SMTP server (aiosmtpd). Each is checked as its reader sees it: the headers, both
bodies, the client's brand with white-label on (no "Overture" anywhere in the message),
and every link followed with the test client on the client's verified domain."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import update

from overture.billing.alerts import send_budget_alert, send_usage_alert
from overture.orchestration import worker
from overture.orchestration.models import Approval
from overture.platform.db import db, scoped_to, utcnow
from tests.brand_support import png, upload
from tests.domain_support import add_verified
from tests.engine_api_support import ok, publish_via_api, settle, start_via_api
from tests.engine_support import running_workers
from tests.mail_support import (
    bodies,
    follow,
    links,
    post_form_on,
    signed_in_on,
    smtp_server,
)
from tests.support import World, as_key, as_user

DOMAIN = "portal.ws-a.example"
BASE = f"https://{DOMAIN}"
FROM_ADDRESS = "noreply@mail.example.test"
AGENCY_BRAND = {"product_name": "Northwind Cloud", "white_label": True, "primary": "#1d4ed8",
                "support_url": "https://help.northwind.example",
                "legal_footer": "Northwind Ltd.\nRegistered in England, 01234567."}
CLIENT_BRAND = {"primary": "#0f766e", "sender_name": "Workspace A Desk",
                "support_email": "desk@ws-a.example"}


@pytest.fixture
def relay():
    with smtp_server() as (port, inbox):
        yield port, inbox


@pytest.fixture
def mail_worker(settings, relay, world):
    port, _ = relay
    with running_workers(settings, processes=1, threads=4, env={
            "OVERTURE_SMTP_HOST": "127.0.0.1", "OVERTURE_SMTP_PORT": str(port),
            "OVERTURE_MAIL_FROM": f"Mail robot <{FROM_ADDRESS}>"}) as process:
        yield process
        settle([world.tenants["a"].id])  # the next test's TRUNCATE meets no transaction


def brand_workspace_a(app: Any, world: World, dns_zone: Any) -> str:
    """Northwind (white-label) brands its clients; workspace A overrides its colour,
    sender and support address and serves on its own domain. The logo's mailed URL."""
    agency = as_user(app, world, "nw_admin", "northwind")
    ok(agency.patch("/brand", json=AGENCY_BRAND))
    assert upload(agency, "logo", png()).status_code == 200
    client = as_key(app, world, "a_admin")
    ok(client.patch("/brand", json=CLIENT_BRAND))
    add_verified(world, "a_admin", "a", DOMAIN, dns_zone)
    return BASE + ok(client.get("/brand"))["effective"]["logo_url"]


def the_mail(inbox: Any, to: str, subject: str) -> EmailMessage:
    """The one message to `to` with this subject, once it arrived."""
    deadline_count = 0
    while True:
        found = [m for m in inbox.wait(to, deadline_count + 1) if m["Subject"] == subject]
        if found:
            assert len(found) == 1, f"{subject!r} arrived {len(found)} times"
            return found[0]
        deadline_count = len(inbox.messages(to))


def branded(message: EmailMessage, logo: str, *says: str) -> str:
    """Check a message carries workspace A's brand; returns its action link (the one
    link on A's domain that is not the logo)."""
    assert message["From"] == f"Workspace A Desk <{FROM_ADDRESS}>"
    assert message["Reply-To"] == "desk@ws-a.example"
    assert message["Message-ID"].endswith("@mail.example.test>")
    assert "X-Mailer" not in message
    assert b"overture" not in message.as_bytes().lower(), "white-label: never the platform"
    text, html = bodies(message)
    for words in says:
        assert words in text and words in html, words
    assert f'<img src="{logo}" alt="Northwind Cloud"' in html
    assert "background:#0f766e" in html, "the workspace's primary colour"
    assert "Northwind Ltd.<br>Registered in England, 01234567." in html
    assert "Northwind Ltd.\nRegistered in England, 01234567." in text
    assert "desk@ws-a.example" in text and 'href="mailto:desk@ws-a.example"' in html
    assert "https://help.northwind.example" in text
    assert f'<a href="{BASE}"' in html, "the footer names the client's own address"
    (action,) = {link for link in links(text) if link.startswith(BASE + "/")}
    assert f'href="{action}"' in html, "the same link in both bodies"
    return action


def post_form(client: Any, path: str, **data: str) -> Any:
    return post_form_on(client, BASE, path, **data)


def signed_in_on_domain(app: Any, email: str) -> Any:
    return signed_in_on(app, BASE, email)


def page_text(response: Any, status: int = 200) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return str(response.get_data(as_text=True))


def test_mail_every_kind_carries_the_clients_brand_and_works_on_its_domain(
        app, world, dns_zone, relay, mail_worker):
    _, inbox = relay
    logo = brand_workspace_a(app, world, dns_zone)
    people = {h: world.users[h].email for h in ("a_admin", "a_owner", "a_builder",
                                                  "a_operator", "a_viewer", "a_member")}
    browser = app.test_client()
    image = follow(browser, logo)
    assert image.status_code == 200 and image.mimetype == "image/png"

    # Invitation: on the domain, the offer to join A.
    newcomer = "new.person@people.example.com"
    ok(as_key(app, world, "a_admin").post("/members", json={"email": newcomer,
                                                             "role": "viewer"}), 202)
    mail = the_mail(inbox, newcomer,
                    "a_admin invited you to Workspace A on Northwind Cloud")
    link = branded(mail, logo, "invited you to join", "as viewer")
    assert link.startswith(f"{BASE}/invite/")
    assert "Workspace A" in page_text(follow(browser, link))

    # Password reset, asked for on A's domain.
    asker = app.test_client()
    page_text(post_form(asker, "/password/forgot", email=people["a_viewer"]))
    mail = the_mail(inbox, people["a_viewer"], "Reset your Northwind Cloud password")
    link = branded(mail, logo, "To choose a new password", people["a_viewer"])
    assert link.startswith(f"{BASE}/password/reset/")
    assert 'name="password"' in page_text(follow(browser, link))

    # A sign-in link, asked for on the portal.
    page_text(post_form(asker, "/portal/ws-a/login/link", email=people["a_member"]))
    mail = the_mail(inbox, people["a_member"], "Your Northwind Cloud sign-in link")
    link = branded(mail, logo, "sign in to Northwind Cloud", people["a_member"])
    assert link.startswith(f"{BASE}/portal/ws-a/login/link/")
    assert people["a_member"] in page_text(follow(browser, link))

    # Approval requested, to the operators (the role it is assigned to), and decided
    # through the mailed link.
    builder = as_user(app, world, "a_builder")
    refunds = publish_via_api(builder, {"steps": [{
        "id": "review", "type": "approval", "prompt": "Refund 120 to acme?",
        "assignee": {"role": "operator"}, "timeout_seconds": 3600}]}, name="Refunds")
    start_via_api(builder, refunds["id"], {})
    mail = the_mail(inbox, people["a_operator"], "Approval needed: Refunds")
    link = branded(mail, logo, "Refund 120 to acme?", "waiting for a decision from its "
                   "operators")
    assert link.startswith(f"{BASE}/approve/")
    assert "Refund 120 to acme?" in page_text(follow(browser, link))
    operator = as_user(app, world, "a_operator")
    (approval,) = ok(operator.get("/approvals"))["items"]
    assert ok(operator.post(f"/approvals/{approval['id']}/link"))["url"] == link, \
        "the API hands out the same signed link, on the same address"

    # Approval escalated by the sweeper, past its deadline, to the admins.
    invoices = publish_via_api(builder, {"steps": [{
        "id": "sign_off", "type": "approval", "prompt": "Sign off the March invoice?",
        "assignee": {"role": "operator"}, "timeout_seconds": 3600,
        "timeout_action": "escalate", "escalate_to_role": "admin"}]}, name="Invoices")
    run = start_via_api(builder, invoices["id"], {})
    the_mail(inbox, people["a_operator"], "Approval needed: Invoices")
    with scoped_to(world.tenants["a"].id):
        db.session.execute(update(Approval).where(Approval.run_id == run["id"]).values(
            deadline_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert worker.sweep_tenant(world.tenants["a"].id)["approvals"] == 1
    mail = the_mail(inbox, people["a_admin"], "Escalated to you: approval in Invoices")
    link = branded(mail, logo, "Sign off the March invoice?", "passed on to its admins")
    assert "Sign off the March invoice?" in page_text(follow(browser, link))

    # A failed run of a workflow with failure alerts on: to the person who made it.
    charges = publish_via_api(builder, {"steps": [{
        "id": "charge", "type": "stop", "status": "failed",
        "error": "the card was declined"}]}, name="Charges")
    assert ok(builder.patch(f"/workflows/{charges['id']}",
                            json={"failure_alerts": True}))["failure_alerts"] is True
    run = start_via_api(builder, charges["id"], {})
    mail = the_mail(inbox, people["a_builder"], "Run failed: Charges")
    link = branded(mail, logo, "the card was declined", "failure alerts are on")
    assert link == f"{BASE}/runs/{run['id']}"
    staff = signed_in_on_domain(app, people["a_builder"])
    assert "Charges" in page_text(follow(staff, link))

    # Usage and budget alerts, to the owners and admins, once a month.
    a = world.tenants["a"].id
    assert send_usage_alert(a, "runs_started", 80, 800, 1000, meter_label="runs") is True
    db.session.commit()
    assert send_usage_alert(a, "runs_started", 80, 990, 1000) is False, "once a month"
    assert send_budget_alert(a, 100, Decimal("50"), Decimal("50")) is True
    db.session.commit()
    month = utcnow().strftime("%B %Y")
    for handle in ("a_owner", "a_admin"):
        mail = the_mail(inbox, people[handle],
                        f"Workspace A has used 80% of its runs for {month}")
        usage = branded(mail, logo, "800 of 1,000", "To keep work going past it")
        mail = the_mail(inbox, people[handle],
                        f"Workspace A has spent 100% of its budget for {month}")
        budget = branded(mail, logo, "50.00 USD of 50.00 USD", "The budget is reached")
        assert usage == budget == f"{BASE}/usage"
    admin = signed_in_on_domain(app, people["a_admin"])
    assert "Workspace A" in page_text(follow(admin, usage))

    # Nobody got anything twice, and nothing went to anyone else.
    sent = [(m["To"], m["Subject"]) for m in inbox.messages()]
    assert len(sent) == len(set(sent)) == 11, sent
