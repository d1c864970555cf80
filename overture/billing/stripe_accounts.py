"""An agency's own Stripe account, to bill its clients under its own brand, and the
invoices Stripe sent a tenant.

Two ways to connect: a restricted (or secret) key of the agency's account, sealed in
the vault (kind `api_key`) and never shown again (a hint, `rk_live_…a1b2`, says which
one it is); or the id of a Stripe Connect account of the platform (`acct_...`), which
the platform's key reaches with the `Stripe-Account` header. Reading needs
`billing.read`, changing `billing.manage`; every change and every test is audited
(never the key).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, select

from overture.billing import stripe_api, stripe_pending, stripe_sync
from overture.billing.plan_models import Plan
from overture.billing.stripe_models import (
    StripeAccount,
    StripeCustomer,
    StripeInvoice,
    StripeLink,
    StripeMeter,
    StripePlan,
    StripeSubscription,
)
from overture.billing.stripe_webhooks import ZERO_DECIMAL
from overture.platform import audit
from overture.platform.db import PLATFORM_TENANT_ID, db, in_tenant, utcnow
from overture.platform.errors import Conflict, ValidationFailed
from overture.platform.pagination import Page, paginate
from overture.tenants import credentials
from overture.tenants.access import Access
from overture.tenants.models import Tenant
from overture.tenants.vault_models import Credential

MODES = ("key", "connect")
KEY_RE = re.compile(r"(rk|sk)_(live|test)_[A-Za-z0-9]{8,240}")
ACCOUNT_RE = re.compile(r"acct_[A-Za-z0-9]{6,60}")
WEBHOOK_RE = re.compile(r"whsec_[A-Za-z0-9+/=]{8,200}")


def _agency(access: Access, permission: str) -> Tenant:
    access.require(permission)
    tenant = access.require_tenant()
    if not tenant.is_agency:
        raise ValidationFailed.field("tenant", "only an agency connects a Stripe account: "
                                               "it bills its client workspaces with it")
    return tenant


def view(access: Access) -> dict[str, Any]:
    """The agency's connection (None: not connected) and whether Connect is possible."""
    tenant = _agency(access, "billing.read")
    row = stripe_sync.agency_account_row(tenant.id)
    return {"account": _public(row) if row is not None else None,
            "connect_available": bool(stripe_sync.platform_key())}


def _public(row: StripeAccount) -> dict[str, Any]:
    credential = db.session.get(Credential, row.credential_id) if row.credential_id else None
    return {"mode": row.mode, "key_hint": row.key_hint,
            "webhook_secret_set": credential is not None
            and "webhook_secret" in credential.secret_fields,
            "account_id": row.connect_account_id, "updated_at": row.updated_at,
            "last_tested_at": row.last_tested_at, "last_test_error": row.last_test_error,
            "working": row.last_tested_at is not None and row.last_test_error is None}


def hint(key: str) -> str:
    return f"{key[:8]}…{key[-4:]}"


def connect(access: Access, mode: str, secret_key: str | None = None,
            account_id: str | None = None, webhook_secret: str | None = None) -> StripeAccount:
    """Connect (or replace) the agency's account; the caller commits. With a key, the
    signing secret of the account's webhook endpoint (`/webhooks/stripe/<agency id>`)
    may go with it (empty: the stored one is kept)."""
    tenant = _agency(access, "billing.manage")
    secret_key, account_id = (secret_key or "").strip(), (account_id or "").strip()
    webhook_secret = (webhook_secret or "").strip()
    _check(mode, secret_key, account_id, webhook_secret)
    row = stripe_sync.agency_account_row(tenant.id)
    if row is None:
        row = StripeAccount(tenant_id=tenant.id, mode=mode)
        db.session.add(row)
    old_credential = row.credential_id if mode == "connect" else None
    if row.id is not None and (row.mode != mode or (
            mode == "connect" and row.connect_account_id != account_id)):
        _forget_objects(tenant.id)  # another account: its customers and meters are not ours
    _forget_account_link(row)
    row.mode, row.updated_at = mode, utcnow()
    row.last_tested_at = row.last_test_error = None
    if mode == "key":
        row.credential_id = _keep_key(access, row.credential_id, secret_key, webhook_secret)
        row.key_hint, row.connect_account_id = hint(secret_key), None
    else:
        _claim(account_id, tenant)
        row.credential_id, row.key_hint, row.connect_account_id = None, None, account_id
    db.session.flush()
    if old_credential is not None:
        credentials.delete(access, old_credential)
    audit.record("stripe.account_connected", target_type="tenant", target_id=tenant.id,
                 details={"mode": mode, "key_hint": row.key_hint, "account_id": account_id
                          or None})
    return row


def _check(mode: str, secret_key: str, account_id: str, webhook_secret: str) -> None:
    if webhook_secret and (mode != "key" or not WEBHOOK_RE.fullmatch(webhook_secret)):
        raise ValidationFailed.field("webhook_secret", "the endpoint's signing secret, "
                                                       "whsec_… (with a key only)")
    if mode not in MODES:
        raise ValidationFailed.field("mode", "`key` (your account's restricted key) or "
                                             "`connect` (a Connect account id)")
    if mode == "key" and not KEY_RE.fullmatch(secret_key):
        raise ValidationFailed.field("secret_key", "a restricted key (rk_live_… or "
                                                   "rk_test_…) or secret key (sk_…)")
    if mode == "connect":
        if not ACCOUNT_RE.fullmatch(account_id):
            raise ValidationFailed.field("account_id", "a Stripe account id, acct_…")
        if not stripe_sync.platform_key():
            raise ValidationFailed.field("mode", "Connect needs the platform's Stripe key, "
                                                 "which this installation has not set")


def _keep_key(access: Access, current: Any, secret_key: str, webhook_secret: str) -> Any:
    """The credential sealing the key (and the webhook secret, when given)."""
    fields = {"api_key": secret_key} | ({"webhook_secret": webhook_secret}
                                        if webhook_secret else {})
    if current is not None:
        stored = credentials.get_credential(access, current).secret_fields
        credentials.update(access, current, fields=fields,
                           secret_fields=sorted(set(stored) | set(fields)))
        return current
    made = credentials.create(access, name=f"Stripe account ({hint(secret_key)})",
                              kind="custom", connector_key="stripe", fields=fields,
                              secret_fields=sorted(fields))
    return made.id


def _claim(account_id: str, tenant: Tenant) -> None:
    taken = db.session.get(StripeLink, account_id)
    if taken is not None and taken.routes_to != tenant.id:
        raise Conflict("that Stripe account is connected to another agency")
    stripe_sync.link(account_id, "account", tenant.id, PLATFORM_TENANT_ID)


def _forget_account_link(row: StripeAccount) -> None:
    if row.connect_account_id:
        db.session.execute(delete(StripeLink).where(
            StripeLink.stripe_id == row.connect_account_id, StripeLink.kind == "account"))


def _forget_objects(agency_id: Any) -> None:
    """Forget the customers, meters, products, prices and subscriptions made in the
    agency's account, so that the next account gets its own (its plans and clients'
    subscriptions are pending again); rows not sent yet wait for it. (A replaced key is
    taken to be of the same account: rotating a key keeps them.)"""
    with in_tenant(agency_id):
        db.session.execute(delete(StripeMeter).where(StripeMeter.tenant_id == agency_id))
        db.session.execute(delete(StripePlan).where(StripePlan.tenant_id == agency_id))
        for plan in db.session.scalars(select(Plan)):  # to be made again in the next one
            stripe_pending.plan_changed(plan)
    clients = db.session.scalars(select(Tenant.id).where(Tenant.parent_id == agency_id))
    for client_id in list(clients):
        with in_tenant(client_id):
            db.session.execute(delete(StripeCustomer).where(StripeCustomer.owner_id == agency_id))
            db.session.execute(delete(StripeSubscription).where(
                StripeSubscription.owner_id == agency_id))
        stripe_pending.subscription_changed(client_id)
    db.session.execute(delete(StripeLink).where(StripeLink.owner_id == agency_id,
                                                StripeLink.kind == "customer"))


def test(access: Access) -> StripeAccount:
    """One cheap call with the connection; its outcome kept on the row and audited.
    Commits (the key's use is recorded whatever the answer)."""
    tenant = _agency(access, "billing.manage")
    row = stripe_sync.agency_account_row(tenant.id)
    if row is None:
        raise ValidationFailed.field("mode", "connect an account first")
    error = None
    try:
        acct = stripe_sync.account(tenant.id)
        if acct is None:
            raise ValueError("the connection is incomplete: connect it again")
        stripe_sync.probe(acct)
    except Exception as exc:  # the page says what went wrong; nothing else breaks
        db.session.rollback()
        error = stripe_api.describe(exc)
    row = stripe_sync.agency_account_row(tenant.id)
    assert row is not None
    row.last_tested_at, row.last_test_error = utcnow(), error
    audit.record("stripe.account_tested", target_type="tenant", target_id=tenant.id,
                 details={"mode": row.mode, "ok": error is None, "error": error})
    db.session.commit()
    return row


def disconnect(access: Access) -> None:
    """Forget the account (and its sealed key); the caller commits. Its clients' usage
    stops being reported to it; what was sent stays in Stripe."""
    tenant = _agency(access, "billing.manage")
    row = stripe_sync.agency_account_row(tenant.id)
    if row is None:
        return
    credential_id, mode = row.credential_id, row.mode
    _forget_account_link(row)
    _forget_objects(tenant.id)
    db.session.delete(row)
    db.session.flush()
    if credential_id is not None:
        credentials.delete(access, credential_id)
    audit.record("stripe.account_disconnected", target_type="tenant", target_id=tenant.id,
                 details={"mode": mode})


def total_text(row: StripeInvoice) -> str:
    """The invoice's total as its currency writes it (no cents for the yen)."""
    return f"{row.total:.0f}" if row.currency in ZERO_DECIMAL else f"{row.total:.2f}"


def invoices(access: Access, cursor: str | None, limit: int | None) -> Page[StripeInvoice]:
    """The tenant's invoices from Stripe, newest first."""
    access.require("billing.read")
    access.require_tenant()
    return paginate(select(StripeInvoice), StripeInvoice.id, cursor, limit, newest_first=True)
