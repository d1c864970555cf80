"""`POST /webhooks/stripe`: Stripe's events about invoices and subscriptions. The raw
body is verified before anything is read from it (billing/stripe_webhooks.py); a
forged or stale signature is a 400 problem, a replay a 200 that changes nothing."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from overture.billing import stripe_webhooks
from overture.platform.db import db
from overture.platform.errors import NotFound
from overture.platform.ids import parse_id
from overture.tenants.access import find_tenant
from overture.web.extensions import client_address, csrf, limiter

bp = Blueprint("stripe_hooks", __name__)
csrf.exempt(bp)  # Stripe signs its calls; it has no session and no CSRF token


@bp.post("/webhooks/stripe")
@limiter.limit("600 per minute", key_func=client_address)
def stripe_webhook() -> tuple[dict[str, Any], int]:
    event = stripe_webhooks.verify(request.get_data(cache=False),
                                   request.headers.get("Stripe-Signature"))
    outcome = stripe_webhooks.handle(event)
    db.session.commit()
    return {"received": True, "id": event.id, "outcome": outcome}, 200


@bp.post("/webhooks/stripe/<agency_id>")
@limiter.limit("600 per minute", key_func=client_address)
def agency_stripe_webhook(agency_id: str) -> tuple[dict[str, Any], int]:
    """The endpoint of an agency's own Stripe account (connected with a key): verified
    with the signing secret the agency gave; its events count for its clients only."""
    ident = parse_id(agency_id)
    agency = find_tenant(str(ident)) if ident else None
    if agency is None or not agency.is_agency:
        raise NotFound("no such webhook")
    secrets = stripe_webhooks.agency_secrets(agency.id)
    event = stripe_webhooks.verify(request.get_data(cache=False),
                                   request.headers.get("Stripe-Signature"), secrets)
    outcome = stripe_webhooks.handle(event, owner_id=agency.id)
    db.session.commit()
    return {"received": True, "id": event.id, "outcome": outcome}, 200
