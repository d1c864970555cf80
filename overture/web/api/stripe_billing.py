"""An agency's own Stripe account (to bill its clients) and the tenant's invoices from
Stripe. Reading needs `billing.read`; connecting, testing and disconnecting
`billing.manage`. The key is write-only: a hint of it is all that is ever shown."""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import UUID, Boolean, DateTime, List, Nested, String
from apiflask.validators import Length, OneOf

from overture.billing import stripe_accounts
from overture.platform.db import db
from overture.web.api import api
from overture.web.api.schemas import PageQuery, Strict
from overture.web.auth import current_access, require

TAGS = ["Billing"]


class StripeAccountIn(Strict):
    mode = String(required=True, validate=OneOf(stripe_accounts.MODES), metadata={
        "description": "`key`: your account's restricted key; `connect`: a Stripe Connect "
                       "account of this platform, reached with the `Stripe-Account` header"})
    secret_key = String(load_default=None, load_only=True, validate=Length(0, 255), metadata={
        "description": "with `key`: sealed in the vault, never shown again"})
    account_id = String(load_default=None, validate=Length(0, 80),
                        metadata={"description": "with `connect`: acct_…"})
    webhook_secret = String(load_default=None, load_only=True, validate=Length(0, 255),
                            metadata={"description": "with `key`, optional: the signing "
                                      "secret (whsec_…) of your account's endpoint pointed "
                                      "at /webhooks/stripe/<agency id>; sealed; empty keeps "
                                      "the stored one"})


class StripeAccountOut(Schema):
    mode = String()
    key_hint = String(allow_none=True, metadata={"description": "which key, never the key"})
    webhook_secret_set = Boolean(metadata={"description": "a webhook signing secret is "
                                                          "stored (never shown)"})
    account_id = String(allow_none=True)
    updated_at = DateTime()
    last_tested_at = DateTime(allow_none=True)
    last_test_error = String(allow_none=True)
    working = Boolean(metadata={"description": "the last test succeeded"})


class StripeView(Schema):
    account = Nested(StripeAccountOut, allow_none=True)
    connect_available = Boolean(metadata={
        "description": "this installation has a Stripe key, so Connect accounts can be used"})


class InvoiceOut(Schema):
    id = UUID()
    invoice_id = String(metadata={"description": "Stripe's id"})
    number = String(allow_none=True)
    status = String(metadata={"description": "`draft`, `open`, `paid`, `void` or "
                                             "`uncollectible`"})
    currency = String()
    total = String(metadata={"description": "in the currency's unit, as a decimal string"})
    period_start = DateTime(allow_none=True)
    period_end = DateTime(allow_none=True)
    hosted_url = String(allow_none=True, metadata={"description": "Stripe's invoice page"})
    updated_at = DateTime()


class InvoicePage(Schema):
    items = List(Nested(InvoiceOut))
    next_cursor = String(allow_none=True)


@api.get("/billing/stripe-account")
@require("billing.read")
@api.output(StripeView)
@api.doc(tags=TAGS, summary="The agency's own Stripe account, which bills its clients")
def get_stripe_account() -> dict[str, Any]:
    return stripe_accounts.view(current_access())


@api.put("/billing/stripe-account")
@require("billing.manage")
@api.input(StripeAccountIn, arg_name="body")
@api.output(StripeView)
@api.doc(tags=TAGS, summary="Connect (or replace) the agency's Stripe account")
def put_stripe_account(body: dict[str, Any]) -> dict[str, Any]:
    access = current_access()
    stripe_accounts.connect(access, body["mode"], body["secret_key"], body["account_id"],
                            body["webhook_secret"])
    db.session.commit()
    return stripe_accounts.view(access)


@api.post("/billing/stripe-account/test")
@require("billing.manage")
@api.output(StripeView)
@api.doc(tags=TAGS, summary="Make one cheap call to Stripe with the connection; the "
                            "outcome is kept (`last_test_error`)")
def test_stripe_account() -> dict[str, Any]:
    access = current_access()
    stripe_accounts.test(access)
    return stripe_accounts.view(access)


@api.delete("/billing/stripe-account")
@require("billing.manage")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Disconnect the agency's Stripe account (its key is deleted)")
def delete_stripe_account() -> tuple[str, int]:
    stripe_accounts.disconnect(current_access())
    db.session.commit()
    return "", 204


@api.get("/billing/invoices")
@require("billing.read")
@api.input(PageQuery, location="query", arg_name="query")
@api.output(InvoicePage)
@api.doc(tags=TAGS, summary="The tenant's invoices from Stripe, newest first")
def list_invoices(query: dict[str, Any]) -> dict[str, Any]:
    page = stripe_accounts.invoices(current_access(), query["cursor"], query["limit"])
    return {"items": [_invoice(i) for i in page.items], "next_cursor": page.next_cursor}


def _invoice(row: Any) -> dict[str, Any]:
    return {"id": row.id, "invoice_id": row.invoice_id, "number": row.number,
            "status": row.status, "currency": row.currency.upper(),
            "total": stripe_accounts.total_text(row),
            "period_start": row.period_start, "period_end": row.period_end,
            "hosted_url": row.hosted_url, "updated_at": row.updated_at}
