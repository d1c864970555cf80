"""`POST /webhooks/stripe`: Stripe's events about invoices and subscriptions. The raw
body is verified before anything is read from it (billing/stripe_webhooks.py); a
forged or stale signature is a 400 problem, a replay a 200 that changes nothing."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from overture.billing import stripe_webhooks
from overture.platform.db import db
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
