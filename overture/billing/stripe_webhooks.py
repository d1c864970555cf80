"""Stripe's webhook events, verified and applied once each.

The signature is checked on the raw body with `stripe.Webhook.construct_event`, the
endpoint secret(s) (`STRIPE_WEBHOOK_SECRET`: the platform account's endpoint, and the
Connect endpoint for the agencies' connected accounts) and the tolerance
(`OVERTURE_STRIPE_WEBHOOK_TOLERANCE_SECONDS`): a forged or stale one is a 400.

Each event id is recorded in the transaction that applies it: a replay (or Stripe's
retry of an event already applied) finds the id and changes nothing. Event types not
handled here are acknowledged and ignored.

Whose event: the account is the platform's, or, with the `account` field (Connect),
the agency whose connected account it is; the object's customer then names the tenant
(`stripe_links`), and only a customer of that same account counts, so a connected
account cannot speak for another's customers.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from overture.billing import standing, stripe_api, stripe_sync
from overture.billing.stripe_models import (
    StripeCustomer,
    StripeInvoice,
    StripeLink,
    StripeWebhookEvent,
)
from overture.platform import audit
from overture.platform.db import PLATFORM_TENANT_ID, db, in_tenant, utcnow
from overture.platform.errors import BadRequest
from overture.platform.logging import get_logger
from overture.tenants import vault

log = get_logger(__name__)

# Amounts of these currencies have no minor unit (Stripe's list of zero-decimal ones).
ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg",
                          "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"})


class InvalidSignature(BadRequest):
    code = "invalid-signature"
    title = "Webhook signature not valid"


def verify(payload: bytes, signature: str | None,
           secrets: tuple[str, ...] | None = None) -> stripe.Event:
    """The event the payload holds, if one of the endpoint secrets (default: the
    platform's) signed it lately; else 400."""
    config = stripe_api.settings()
    secrets = config.stripe_webhook_secrets if secrets is None else secrets
    if not secrets:
        raise InvalidSignature("no Stripe webhook secret is configured for this endpoint: "
                               "nothing is accepted")
    if not signature:
        raise InvalidSignature("the Stripe-Signature header is missing")
    for secret in secrets:
        try:
            return stripe.Webhook.construct_event(payload, signature, secret,
                                                  config.stripe_webhook_tolerance)
        except stripe.SignatureVerificationError:
            continue
        except ValueError as exc:
            raise BadRequest("the body is not a Stripe event (JSON)") from exc
    raise InvalidSignature("the signature does not match this endpoint's secret, or its "
                           "timestamp is outside the tolerance")


def agency_secrets(agency_id: uuid.UUID) -> tuple[str, ...]:
    """The signing secret of the agency's own account's endpoint, if it gave one."""
    row = stripe_sync.agency_account_row(agency_id)
    if row is None or row.mode != "key" or row.credential_id is None:
        return ()
    with in_tenant(agency_id):
        values = vault.use_credential(row.credential_id, "verifying a Stripe webhook")
    secret = str(values.get("webhook_secret") or "")
    return (secret,) if secret else ()


def handle(event: stripe.Event, owner_id: uuid.UUID | None = None) -> str:
    """Apply the event in the session's transaction (the caller commits): `processed`,
    `duplicate` (its id was seen before) or `ignored` (a type or customer not ours).
    `owner_id`: the agency whose own endpoint received it (default: the platform's
    endpoint, where a Connect event names its account)."""
    if not _first_time(event):
        return "duplicate"
    body = event.to_dict()
    handler = HANDLERS.get(event.type)
    if handler is None:
        return "ignored"
    obj = body["data"]["object"]
    route = _route(body.get("account"), obj.get("customer"), owner_id)
    if route is None:
        log.info("stripe.webhook_unrouted", event_id=event.id, type=event.type)
        return "ignored"
    tenant_id, owner_id = route
    at = datetime.fromtimestamp(int(body.get("created") or utcnow().timestamp()), UTC)
    with in_tenant(tenant_id):
        handler(tenant_id, owner_id, obj, at)
        audit.record("stripe.webhook", target_type="tenant", target_id=tenant_id,
                     tenant_id=tenant_id, details={"event_id": event.id, "type": event.type,
                                                   "object_id": obj.get("id")})
        db.session.flush()  # written in the tenant's scope, where RLS lets them in
    return "processed"


def _first_time(event: stripe.Event) -> bool:
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    table = StripeWebhookEvent.__table__
    stmt = (dialect.insert(table).values(event_id=event.id, type=event.type[:100],
                                         account=getattr(event, "account", None),
                                         received_at=utcnow())
            .on_conflict_do_nothing(index_elements=[table.c.event_id])
            .returning(table.c.event_id))
    return db.session.execute(stmt).first() is not None


def _route(account: str | None, customer: Any, owner_id: uuid.UUID | None
           ) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(tenant, account owner) of the event's customer, or None when it is not ours."""
    if owner_id is not None:
        account = None  # the agency's own endpoint: its own account, whatever it says
    else:
        owner_id = PLATFORM_TENANT_ID
    if account:
        connected = db.session.get(StripeLink, account)
        if connected is None or connected.kind != "account":
            return None
        owner_id = connected.routes_to
    link = db.session.get(StripeLink, customer) if isinstance(customer, str) else None
    if link is None or link.kind != "customer" or link.owner_id != owner_id:
        return None
    return link.routes_to, owner_id


# --------------------------------------------------------------------------- handlers


def _paid(tenant_id: uuid.UUID, owner_id: uuid.UUID, obj: dict[str, Any], at: datetime) -> None:
    _keep_invoice(tenant_id, owner_id, obj)
    standing.payment_succeeded(tenant_id, at, obj.get("id"))


def _failed(tenant_id: uuid.UUID, owner_id: uuid.UUID, obj: dict[str, Any],
            at: datetime) -> None:
    _keep_invoice(tenant_id, owner_id, obj)
    standing.payment_failed(tenant_id, at, obj.get("id"))


def _finalized(tenant_id: uuid.UUID, owner_id: uuid.UUID, obj: dict[str, Any],
               at: datetime) -> None:
    _keep_invoice(tenant_id, owner_id, obj)


def _subscription(tenant_id: uuid.UUID, owner_id: uuid.UUID, obj: dict[str, Any],
                  at: datetime) -> None:
    row = db.session.scalars(select(StripeCustomer).where(
        StripeCustomer.owner_id == owner_id)).one_or_none()
    if row is None:
        return
    row.subscription_id = str(obj.get("id") or "")[:255] or None
    row.subscription_status = str(obj.get("status") or "")[:40] or None
    row.updated_at = utcnow()


def _keep_invoice(tenant_id: uuid.UUID, owner_id: uuid.UUID, obj: dict[str, Any]) -> None:
    invoice_id = str(obj.get("id") or "")
    if not invoice_id:
        return
    row = db.session.scalars(select(StripeInvoice).where(
        StripeInvoice.invoice_id == invoice_id)).one_or_none()
    if row is None:
        row = StripeInvoice(tenant_id=tenant_id, owner_id=owner_id, invoice_id=invoice_id)
        db.session.add(row)
    currency = str(obj.get("currency") or "usd").lower()[:3]
    row.number = obj.get("number")
    row.status = str(obj.get("status") or "open")[:40]
    row.currency = currency
    row.total = money(obj.get("total") or 0, currency)
    row.period_start = _time(obj.get("period_start"))
    row.period_end = _time(obj.get("period_end"))
    row.hosted_url = _https(obj.get("hosted_invoice_url"))
    row.updated_at = utcnow()


def money(minor: int, currency: str) -> Decimal:
    """Stripe's integer amount in the currency's unit."""
    amount = Decimal(int(minor))
    return amount if currency in ZERO_DECIMAL else amount / 100


def _time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if isinstance(value, int) else None


def _https(url: Any) -> str | None:
    """Only an https link is kept: the page links to it."""
    return url[:2000] if isinstance(url, str) and url.startswith("https://") else None


HANDLERS = {
    "invoice.paid": _paid,
    "invoice.payment_failed": _failed,
    "invoice.finalized": _finalized,
    "customer.subscription.updated": _subscription,
    "customer.subscription.deleted": _subscription,
}
