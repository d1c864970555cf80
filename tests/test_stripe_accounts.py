"""An agency's own Stripe account (`-k stripe`): connected with a restricted key (sealed,
write-only, shown as a hint) or a Connect account id, tested with one cheap call,
disconnected; audited; only an agency's owner may change it. And the invoice list."""

from __future__ import annotations

import pytest

from overture.billing.stripe_models import StripeLink
from overture.platform.audit import AuditEvent
from overture.platform.db import PLATFORM_TENANT_ID, db, scoped_to
from overture.tenants.vault_models import Credential
from tests.stripe_fake import event, fake_stripe, invoice, post, use_stripe
from tests.support import as_key, as_user

KEY = "rk_test_51Abcdefghijklmnopqrstuvwx1234"


@pytest.fixture
def fake(app, monkeypatch):
    with fake_stripe() as server:
        use_stripe(app, monkeypatch, server)
        yield server


def audited(tenant_id, prefix="stripe.account"):
    with scoped_to(tenant_id):
        found = [(e.action, e.details) for e in db.session.query(AuditEvent).filter(
            AuditEvent.action.like(f"{prefix}%")).order_by(AuditEvent.seq)]
        db.session.rollback()
    return found


def test_stripe_account_key_is_write_only_tested_and_audited(app, world, fake):
    owner = as_user(app, world, "nw_owner", "northwind")
    assert owner.get("/billing/stripe-account").get_json()["account"] is None
    saved = owner.put("/billing/stripe-account", json={"mode": "key", "secret_key": KEY})
    assert saved.status_code == 200, saved.get_data(as_text=True)
    shown = saved.get_json()["account"]
    assert shown["mode"] == "key" and shown["key_hint"] == "rk_test_…1234"
    assert KEY not in saved.get_data(as_text=True)
    assert KEY not in owner.get("/billing/stripe-account").get_data(as_text=True)

    tested = owner.post("/billing/stripe-account/test").get_json()["account"]
    assert tested["working"] is True and tested["last_test_error"] is None
    call = fake.seen("GET", "/v1/billing/meters")[-1]
    assert call.headers["Authorization"] == f"Bearer {KEY}"
    assert "Stripe-Account" not in call.headers

    fake.down = True
    failed = owner.post("/billing/stripe-account/test").get_json()["account"]
    assert failed["working"] is False and "HTTP 500" in failed["last_test_error"]

    nw = world.tenants["northwind"].id
    actions = [a for a, _ in audited(nw)]
    assert actions == ["stripe.account_connected", "stripe.account_tested",
                       "stripe.account_tested"]
    assert all(KEY not in str(d) for _, d in audited(nw, ""))

    assert owner.delete("/billing/stripe-account").status_code == 204
    assert owner.get("/billing/stripe-account").get_json()["account"] is None
    with scoped_to(nw):
        assert db.session.query(Credential).count() == 0  # the sealed key is gone
        db.session.rollback()


def test_stripe_account_connect_uses_the_stripe_account_header(app, world, fake):
    owner = as_user(app, world, "nw_owner", "northwind")
    saved = owner.put("/billing/stripe-account", json={"mode": "connect",
                                                       "account_id": "acct_1NorthWind"})
    assert saved.status_code == 200, saved.get_data(as_text=True)
    owner.post("/billing/stripe-account/test")
    call = fake.seen("GET", "/v1/billing/meters")[-1]
    assert call.headers["Stripe-Account"] == "acct_1NorthWind"
    assert call.headers["Authorization"] == "Bearer sk_test_platform_fake"

    other = as_user(app, world, "ct_owner", "contoso")
    taken = other.put("/billing/stripe-account", json={"mode": "connect",
                                                       "account_id": "acct_1NorthWind"})
    assert taken.status_code == 409


@pytest.mark.parametrize("body, field", [
    ({"mode": "key", "secret_key": "pk_live_publishable1234"}, "secret_key"),
    ({"mode": "key"}, "secret_key"),
    ({"mode": "connect", "account_id": "cus_123456"}, "account_id"),
])
def test_stripe_account_bad_input_names_the_field(app, world, fake, body, field):
    owner = as_user(app, world, "nw_owner", "northwind")
    refused = owner.put("/billing/stripe-account", json=body)
    assert refused.status_code == 422
    assert refused.get_json()["errors"][0]["field"] == field


def test_stripe_account_only_an_agencys_owner_changes_it(app, world, fake):
    admin = as_key(app, world, "nw_admin")  # billing.read, not billing.manage
    assert admin.get("/billing/stripe-account").status_code == 200
    assert admin.put("/billing/stripe-account", json={"mode": "key", "secret_key": KEY}
                     ).status_code == 403
    workspace = as_user(app, world, "a_owner", "a")
    refused = workspace.put("/billing/stripe-account", json={"mode": "key", "secret_key": KEY})
    assert refused.status_code == 422


def test_stripe_invoices_list_is_empty_then_shows_stored_invoices(app, world, fake):
    owner = as_user(app, world, "nw_owner", "northwind")
    assert owner.get("/billing/invoices").get_json() == {"items": [], "next_cursor": None}
    db.session.add(StripeLink(stripe_id="cus_nw", kind="customer",
                              routes_to=world.tenants["northwind"].id,
                              owner_id=PLATFORM_TENANT_ID))
    db.session.commit()
    post(app, event("evt_i", "invoice.finalized", invoice()))
    items = owner.get("/billing/invoices").get_json()["items"]
    assert [(i["number"], i["total"], i["currency"], i["status"]) for i in items] == [
        ("NW-0001", "123.45", "EUR", "open")]
    other = as_user(app, world, "ct_owner", "contoso")
    assert other.get("/billing/invoices").get_json()["items"] == []


def test_stripe_account_another_account_gets_its_own_customers_and_meters(app, world, fake):
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from overture.billing import meter_outbox
    from overture.billing.usage import Entry, record

    owner = as_user(app, world, "nw_owner", "northwind")
    owner.put("/billing/stripe-account", json={"mode": "connect", "account_id": "acct_1First"})
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    for h in (hour, hour + timedelta(hours=1)):
        with scoped_to(world.tenants["a"].id):
            record([Entry("steps", Decimal(1))], at=h)
            db.session.commit()
        meter_outbox.enqueue_all()
        if h == hour:
            meter_outbox.send_due()
            owner.put("/billing/stripe-account", json={"mode": "connect",
                                                       "account_id": "acct_2Second"})
    meter_outbox.send_due()
    by_account = {}
    for e in fake.events.values():
        by_account.setdefault(e["account"], set()).add(e["payload"]["stripe_customer_id"])
    assert by_account["acct_1First"].isdisjoint(by_account["acct_2Second"])
    made_in = {c["account"] for c in fake.customers.values()}
    assert {"acct_1First", "acct_2Second"} <= made_in
    meters_made = [r for r in fake.seen("POST", "/v1/billing/meters")
                   if r.headers.get("Stripe-Account") == "acct_2Second"]
    assert meters_made  # the second account got its own meters
