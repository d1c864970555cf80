"""Stripe: find customers and refund payments (form-encoded REST API).

A secret or restricted key, sent as a Bearer token. Refunds carry an
`Idempotency-Key`, so a retried step refunds once.
"""

from __future__ import annotations

import uuid
from typing import Any

from overture.connectors.context import ActionContext
from overture.connectors.spec import Action, Auth, Connector, obj
from overture.platform.errors import ValidationFailed

MAX_PAGES = 20  # a bound on following `has_more`, whatever the server says
CUSTOMER = obj({"id": {"type": "string"}, "email": {"type": ["string", "null"]},
                "name": {"type": ["string", "null"]}, "phone": {"type": ["string", "null"]},
                "description": {"type": ["string", "null"]}, "created": {"type": "integer"},
                "metadata": {"type": "object"}})
REASONS = ["duplicate", "fraudulent", "requested_by_customer"]


def _customer(c: dict[str, Any]) -> dict[str, Any]:
    return {"id": c["id"], "email": c.get("email"), "name": c.get("name"),
            "phone": c.get("phone"), "description": c.get("description"),
            "created": c.get("created"), "metadata": c.get("metadata") or {}}


def find_customer(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    """By exact email (the list endpoint) or by a Stripe search query, following
    `has_more` until `limit` customers are found."""
    if not data.get("email") and not data.get("query"):
        raise ValidationFailed.field("input.email", "give an email (or a search query)")
    limit = data.get("limit", 10)
    found: list[dict[str, Any]] = []
    has_more, cursor = False, None
    for _ in range(MAX_PAGES):
        params: dict[str, Any] = {"limit": min(100, limit - len(found))}
        if data.get("email"):
            path = "customers"
            params["email"] = data["email"]
            if cursor:
                params["starting_after"] = cursor
        else:
            path = "customers/search"
            params["query"] = data["query"]
            if cursor:
                params["page"] = cursor
        page = ctx.client.request("GET", path, params=params).json()
        batch = page.get("data") or []
        found.extend(_customer(c) for c in batch)
        has_more = bool(page.get("has_more"))
        cursor = page.get("next_page") if path.endswith("search") else (
            batch[-1]["id"] if batch else None)
        if not has_more or not cursor or len(found) >= limit:
            break
    found = found[:limit]
    return {"found": bool(found), "customer": found[0] if found else None,
            "customers": found, "has_more": has_more}


def create_refund(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    if bool(data.get("payment_intent")) == bool(data.get("charge")):
        raise ValidationFailed.field("input.payment_intent",
                                     "give either a payment_intent or a charge, not both")
    form: list[tuple[str, str]] = []
    for name in ("payment_intent", "charge", "reason"):
        if data.get(name):
            form.append((name, data[name]))
    if "amount" in data:
        form.append(("amount", str(data["amount"])))
    form.extend((f"metadata[{k}]", str(v)) for k, v in (data.get("metadata") or {}).items())
    # Without a caller's key, one of our own still makes the client's retries safe.
    key = ctx.idempotency_key or f"ovt-{uuid.uuid4()}"
    response = ctx.client.request("POST", "refunds", data=form,
                                  headers={"Idempotency-Key": key})
    refund = response.json()
    return {"id": refund["id"], "status": refund.get("status"),
            "amount": refund.get("amount"), "currency": refund.get("currency"),
            "payment_intent": refund.get("payment_intent"), "charge": refund.get("charge"),
            "reason": refund.get("reason"),
            "replayed": response.headers.get("Idempotent-Replayed") == "true"}


def check(ctx: ActionContext) -> str:
    balance = ctx.client.request("GET", "balance").json()
    return "Stripe accepted the key (" + ("live" if balance.get("livemode") else "test") \
        + " mode)"


CONNECTOR = Connector(
    key="stripe",
    name="Stripe",
    description="Find Stripe customers and refund payments, with a secret or restricted key.",
    icon="stripe",
    auth=Auth(kind="api_key", header="Authorization", scheme="Bearer"),
    base_url="https://api.stripe.com/v1",
    docs_url="https://docs.stripe.com/api/refunds/create",
    test=check,
    actions=(
        Action(key="find_customer", name="Find a customer",
               description="Find customers by exact (case-sensitive) email address, newest "
                           "first, or by a Stripe search query such as \"name:'Jane Doe'\".",
               input_schema=obj({
                   "email": {"type": "string", "minLength": 3, "maxLength": 512},
                   "query": {"type": "string", "minLength": 1,
                             "description": "Stripe search query language"},
                   "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10,
                             "description": "at most this many customers"},
               }),
               output_schema=obj({"found": {"type": "boolean"},
                                  "customer": {"anyOf": [CUSTOMER, {"type": "null"}]},
                                  "customers": {"type": "array", "items": CUSTOMER},
                                  "has_more": {"type": "boolean"}}),
               run=find_customer),
        Action(key="create_refund", name="Refund a payment",
               description="Refund a payment intent (or a charge), in full or in part. "
                           "Called twice with the same idempotency key, it refunds once.",
               input_schema=obj({
                   "payment_intent": {"type": "string", "pattern": r"^pi_\w+$"},
                   "charge": {"type": "string", "pattern": r"^(ch|py)_\w+$"},
                   "amount": {"type": "integer", "minimum": 1,
                              "description": "in the smallest currency unit (cents); "
                                             "the whole payment when absent"},
                   "reason": {"enum": REASONS},
                   "metadata": {"type": "object", "maxProperties": 50,
                                "additionalProperties": {"type": ["string", "number"]}},
               }),
               output_schema=obj({"id": {"type": "string"}, "status": {"type": "string"},
                                  "amount": {"type": "integer"}, "currency": {"type": "string"},
                                  "payment_intent": {"type": ["string", "null"]},
                                  "charge": {"type": ["string", "null"]},
                                  "reason": {"type": ["string", "null"]},
                                  "replayed": {"type": "boolean"}}),
               run=create_refund, side_effects=True, idempotent=True),
    ),
)
