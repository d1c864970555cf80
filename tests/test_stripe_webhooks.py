"""Stripe webhooks at /webhooks/stripe (`-k stripe`), signed with Stripe's real scheme:
a valid event is applied once, a wrong secret or a stale timestamp is a 400 problem, a
replayed event id changes nothing, unknown types are acknowledged; issue 16's
acceptance 4: `invoice.payment_failed` restricts the tenant after the grace period and
`invoice.paid` lifts it. An agency's connected account speaks only for its clients."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from overture.billing import standing
from overture.billing.stripe_models import StripeCustomer, StripeInvoice, StripeLink
from overture.platform.audit import AuditEvent
from overture.platform.db import PLATFORM_TENANT_ID, db, scoped_to
from tests.stripe_fake import WEBHOOK_SECRET, T, event, fake_stripe, invoice, post, sign, use_stripe


@pytest.fixture
def fake(app, monkeypatch):
    with fake_stripe() as server:
        use_stripe(app, monkeypatch, server)
        yield server


@pytest.fixture
def customers(world, fake):
    """Northwind is the platform's customer; workspace A the customer of Northwind's
    connected account."""
    nw, a = world.tenants["northwind"].id, world.tenants["a"].id
    db.session.add_all([
        StripeLink(stripe_id="cus_nw", kind="customer", routes_to=nw, owner_id=PLATFORM_TENANT_ID),
        StripeLink(stripe_id="acct_nw", kind="account", routes_to=nw,
                   owner_id=PLATFORM_TENANT_ID),
        StripeLink(stripe_id="cus_a", kind="customer", routes_to=a, owner_id=nw)])
    with scoped_to(nw):
        db.session.add(StripeCustomer(tenant_id=nw, owner_id=PLATFORM_TENANT_ID,
                                      customer_id="cus_nw"))
        db.session.commit()
    return world


def invoices(tenant_id):
    with scoped_to(tenant_id):
        found = [(i.invoice_id, i.status, i.total, i.currency, i.number, i.hosted_url)
                 for i in db.session.query(StripeInvoice)]
        db.session.rollback()
    return found


def test_stripe_webhook_signatures_forged_stale_and_replayed(app, customers):
    nw = customers.tenants["northwind"].id
    payload = event("evt_1", "invoice.finalized", invoice())

    forged = post(app, payload, secret="whsec_someone_else")
    assert forged.status_code == 400 and forged.mimetype == "application/problem+json"
    assert forged.get_json()["type"].endswith(":invalid-signature")
    stale = post(app, payload, timestamp=int(time.time()) - 3600)
    assert stale.status_code == 400 and stale.get_json()["type"].endswith(":invalid-signature")
    unsigned = post(app, payload, header="")
    assert unsigned.status_code == 400 and "Stripe-Signature" in unsigned.get_json()["detail"]
    tampered = post(app, payload.replace(b"12345", b"1"),
                    header=sign(payload, WEBHOOK_SECRET))
    assert tampered.status_code == 400
    assert invoices(nw) == []  # nothing refused left a trace

    first = post(app, payload)
    assert first.status_code == 200 and first.get_json()["outcome"] == "processed"
    assert invoices(nw) == [("in_1", "open", Decimal("123.45"), "eur", "NW-0001",
                             "https://invoice.stripe.com/i/acct_x/test_1")]
    again = post(app, event("evt_1", "invoice.finalized", invoice(status="void")))
    assert again.status_code == 200 and again.get_json()["outcome"] == "duplicate"
    assert invoices(nw)[0][1] == "open"  # the replay changed nothing
    with scoped_to(nw):
        assert db.session.query(AuditEvent).filter(
            AuditEvent.action == "stripe.webhook").count() == 1
        db.session.rollback()


def test_stripe_webhook_unknown_types_and_strangers_are_acknowledged(app, customers):
    unknown = post(app, event("evt_2", "charge.dispute.created", {"id": "dp_1"}))
    assert unknown.status_code == 200 and unknown.get_json()["outcome"] == "ignored"
    stranger = post(app, event("evt_3", "invoice.paid", invoice(customer="cus_unknown")))
    assert stranger.get_json()["outcome"] == "ignored"
    not_json = post(app, b"not json")
    assert not_json.status_code == 400


def test_stripe_webhook_payment_failed_restricts_after_grace_and_paid_lifts(app, customers):
    nw = customers.tenants["northwind"].id
    failed_at = datetime.fromtimestamp(T, UTC)
    assert post(app, event("evt_f", "invoice.payment_failed", invoice())).status_code == 200
    with scoped_to(nw):
        assert standing.standing(nw, failed_at).status == standing.PAST_DUE
        assert not standing.restricted(nw, failed_at + timedelta(days=1))  # in grace
        assert standing.restricted(nw, failed_at + standing.grace() + timedelta(seconds=1))
        db.session.rollback()
    paid = event("evt_p", "invoice.paid", invoice(status="paid"), created=T + 8 * 86400)
    assert post(app, paid).status_code == 200
    with scoped_to(nw):
        assert not standing.restricted(nw, failed_at + timedelta(days=9))
        db.session.rollback()
    assert invoices(nw)[0][1] == "paid"


def test_stripe_webhook_connected_account_speaks_for_its_own_clients_only(app, customers):
    nw, a = customers.tenants["northwind"].id, customers.tenants["a"].id
    # Northwind's connected account: its client A's invoice
    ok = post(app, event("evt_c1", "invoice.finalized", invoice("in_a", "cus_a"), "acct_nw"))
    assert ok.get_json()["outcome"] == "processed"
    assert [i[0] for i in invoices(a)] == ["in_a"]
    # the same customer without the account (the platform's): not the platform's customer
    bare = post(app, event("evt_c2", "invoice.finalized", invoice("in_b", "cus_a")))
    assert bare.get_json()["outcome"] == "ignored"
    # a connected account naming the platform's customer of Northwind: refused
    hijack = post(app, event("evt_c3", "invoice.paid", invoice("in_c", "cus_nw"), "acct_nw"))
    assert hijack.get_json()["outcome"] == "ignored"
    assert invoices(nw) == []


def test_stripe_webhook_subscription_status_is_kept(app, customers):
    nw = customers.tenants["northwind"].id
    sub = {"id": "sub_1", "object": "subscription", "customer": "cus_nw", "status": "past_due"}
    post(app, event("evt_s1", "customer.subscription.updated", sub))
    post(app, event("evt_s2", "customer.subscription.deleted", {**sub, "status": "canceled"}))
    with scoped_to(nw):
        row = db.session.query(StripeCustomer).one()
        assert (row.subscription_id, row.subscription_status) == ("sub_1", "canceled")
        db.session.rollback()


def test_stripe_webhook_an_agencys_own_endpoint_uses_its_own_secret(app, customers):
    from tests.support import as_user

    nw, a = customers.tenants["northwind"].id, customers.tenants["a"].id
    owner = as_user(app, customers, "nw_owner", "northwind")
    saved = owner.put("/billing/stripe-account", json={
        "mode": "key", "secret_key": "rk_test_51Ownaccountkey0001",
        "webhook_secret": "whsec_agencyOwnSecret1"})
    assert saved.get_json()["account"]["webhook_secret_set"] is True
    assert "whsec_agencyOwnSecret1" not in saved.get_data(as_text=True)
    path = f"/webhooks/stripe/{nw}"
    payload = event("evt_own1", "invoice.finalized", invoice("in_own", "cus_a"))

    def deliver(secret):
        return app.test_client().post(path, data=payload, headers={
            "Stripe-Signature": sign(payload, secret)})

    assert deliver(WEBHOOK_SECRET).status_code == 400  # the platform's secret: not here
    assert deliver("whsec_agencyOwnSecret1").get_json()["outcome"] == "processed"
    assert [i[0] for i in invoices(a)] == ["in_own"]
    # the agency's endpoint cannot speak for the platform's customers
    theirs = event("evt_own2", "invoice.paid", invoice("in_nw", "cus_nw"))
    answer = app.test_client().post(path, data=theirs, headers={
        "Stripe-Signature": sign(theirs, "whsec_agencyOwnSecret1")})
    assert answer.get_json()["outcome"] == "ignored"
    # replacing the key alone keeps the stored webhook secret
    owner.put("/billing/stripe-account", json={"mode": "key",
                                               "secret_key": "rk_test_51Ownaccountkey0002"})
    assert owner.get("/billing/stripe-account").get_json()["account"]["webhook_secret_set"]
    assert app.test_client().post(f"/webhooks/stripe/{a}", data=payload).status_code == 404
