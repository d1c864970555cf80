"""Request and response shapes of outbound event subscriptions (API v1)."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import UUID, Boolean, DateTime, Integer, List, Nested, String
from apiflask.validators import Length, Range

from overture.tenants.events.outbox import EVENT_TYPES
from overture.web.api.schemas import Strict

TYPES = ", ".join(f"`{t}`" for t in EVENT_TYPES)


class SubscriptionOut(Schema):
    id = UUID()
    url = String()
    event_types = List(String(), metadata={"description": f"of {TYPES}, or `*` for all"})
    enabled = Boolean()
    description = String()
    include_clients = Boolean(metadata={"description": "an agency's subscription to its "
                                                       "client workspaces' events too"})
    previous_secret_valid_until = DateTime(allow_none=True, metadata={
        "description": "after a rotation, until when deliveries are also signed with the "
                       "previous secret"})
    disabled_reason = String(allow_none=True, metadata={
        "description": "why the platform turned it off (a day of failed deliveries)"})
    disabled_at = DateTime(allow_none=True)
    created_at = DateTime()


class SubscriptionWithSecret(SubscriptionOut):
    secret = String(metadata={"description": "the Standard Webhooks signing secret "
                                             "(`whsec_...`): shown in this response only"})


class SubscriptionList(Schema):
    items = List(Nested(SubscriptionOut))


class SubscriptionCreate(Strict):
    url = String(required=True, validate=Length(1, 2000), metadata={
        "description": "where events are POSTed: http(s), a public address"})
    event_types = List(String(validate=Length(1, 60)), required=True,
                       metadata={"description": f"of {TYPES}, or `*`"})
    description = String(load_default="", validate=Length(0, 500))
    enabled = Boolean(load_default=True)
    include_clients = Boolean(load_default=False)


class SubscriptionPatch(Strict):
    url = String(validate=Length(1, 2000))
    event_types = List(String(validate=Length(1, 60)))
    description = String(validate=Length(0, 500))
    enabled = Boolean()
    include_clients = Boolean()


class RotateSecret(Strict):
    overlap_seconds = Integer(load_default=86400, validate=Range(0, 604800), metadata={
        "description": "how long the previous secret stays valid (default a day)"})


class AttemptOut(Schema):
    attempted_at = DateTime()
    status_code = Integer(allow_none=True, metadata={"description": "null: no answer"})
    latency_ms = Integer()
    error = String(allow_none=True)
    manual = Boolean(metadata={"description": "a redelivery or a test"})


class DeliveryOut(Schema):
    id = UUID()
    webhook_id = String(metadata={"description": "the `webhook-id` sent on every attempt"})
    event_type = String()
    status = String(metadata={"description": "`pending`, `delivered` or `failed`"})
    attempts = Integer()
    next_attempt_at = DateTime(allow_none=True)
    delivered_at = DateTime(allow_none=True)
    created_at = DateTime()
    log = List(Nested(AttemptOut), metadata={"description": "each attempt, oldest first"})


class DeliveryList(Schema):
    items = List(Nested(DeliveryOut))


class DeliveryQuery(Strict):
    limit = Integer(load_default=50, validate=Range(1, 200))
