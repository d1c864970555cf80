"""The local mailbox (issue 13): without an SMTP relay the platform admin reads the
platform's mail, and its failures, at /admin/mailbox; nobody else can."""

from __future__ import annotations

import dataclasses

import pytest

from overture.platform import mail_delivery
from tests.engine_support import free_port
from tests.recovery_support import (
    link_in,
    mails,
    outbox,  # noqa: F401  (fixture)
    post_form,
    text,
)
from tests.support import login

pytestmark = pytest.mark.usefixtures("outbox")


def deliver_all(app) -> None:
    for message in mails():
        app.extensions[mail_delivery.EXTENSION].fn(str(message.id))


def test_mailbox_shows_sent_mail_and_failures_to_the_platform_admin(app, world, monkeypatch):
    user = world.users["a_viewer"]
    post_form(app.test_client(), "/password/forgot", email=user.email)
    deliver_all(app)  # no SMTP host: the local mailbox
    [reset] = mails()
    settings = app.extensions["overture.settings"]
    monkeypatch.setitem(app.extensions, "overture.settings", dataclasses.replace(
        settings, smtp_host="127.0.0.1", smtp_port=free_port()))  # nothing listens there
    post_form(app.test_client(), "/login/link", email=user.email)
    deliver_all(app)
    [failed] = [m for m in mails() if m.template == "sign_in_link"]

    admin = app.test_client()
    login(admin, world.users["platform"].email)
    listing = admin.get("/admin/mailbox")
    assert listing.status_code == 200
    page = text(listing)
    assert page.index("sign-in link") < page.index("Reset your Overture password"), "newest first"
    assert user.email in page
    assert 'data-status="sent"' in page and 'data-status="pending"' in page  # to be retried
    assert "ConnectionRefusedError" in page, "a failed delivery shows its error"

    shown = admin.get(f"/admin/mailbox/{reset.id}")
    body = text(shown)
    assert shown.status_code == 200
    assert link_in(reset) in body, "the link is on the page, to follow"
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in body
    assert "allow-scripts" not in body and "srcdoc=" in body
    assert "ConnectionRefusedError" in text(admin.get(f"/admin/mailbox/{failed.id}"))
    assert admin.get("/admin/mailbox/not-an-id").status_code == 404


def test_mailbox_is_refused_to_everyone_else(app, world):
    tenant_owner = app.test_client()
    login(tenant_owner, world.users["nw_owner"].email)
    refused = tenant_owner.get("/admin/mailbox")
    assert refused.status_code == 403 and "Only a platform admin" in text(refused)
    anonymous = app.test_client().get("/admin/mailbox")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
