"""Outbound event subscriptions of the tenant this request acts in, their delivery log,
redelivery and a test ping. A subscription's secret is in the responses that make it
(creation, rotation) and never again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from overture.platform.db import db
from overture.tenants.events import deliveries, subscriptions
from overture.tenants.events.models import EventDelivery, EventSubscription
from overture.web.api import api
from overture.web.api.event_schemas import (
    DeliveryList,
    DeliveryOut,
    DeliveryQuery,
    RotateSecret,
    SubscriptionCreate,
    SubscriptionList,
    SubscriptionOut,
    SubscriptionPatch,
    SubscriptionWithSecret,
)
from overture.web.auth import current_access, require

TAGS = ["Outbound events"]
PERMISSION = subscriptions.PERMISSION


def subscription_view(subscription: EventSubscription, **extra: Any) -> dict[str, Any]:
    return {"id": subscription.id, "url": subscription.url,
            "event_types": subscription.event_types, "enabled": subscription.enabled,
            "description": subscription.description,
            "include_clients": subscription.include_clients,
            "previous_secret_valid_until": subscription.previous_expires_at,
            "disabled_reason": subscription.disabled_reason,
            "disabled_at": subscription.disabled_at, "created_at": subscription.created_at,
            **extra}


def delivery_view(delivery: EventDelivery, log: list[Any]) -> dict[str, Any]:
    return {"id": delivery.id, "webhook_id": delivery.webhook_id,
            "event_type": delivery.event_type, "status": delivery.status,
            "attempts": delivery.attempts, "next_attempt_at": delivery.next_attempt_at,
            "delivered_at": delivery.delivered_at, "created_at": delivery.created_at,
            "log": log}


@api.get("/event-subscriptions")
@require(PERMISSION)
@api.output(SubscriptionList)
@api.doc(tags=TAGS, summary="List event subscriptions (never their secrets)")
def list_event_subscriptions() -> dict[str, Any]:
    found = subscriptions.list_subscriptions(current_access())
    return {"items": [subscription_view(s) for s in found]}


@api.post("/event-subscriptions")
@require(PERMISSION)
@api.input(SubscriptionCreate, arg_name="body")
@api.output(SubscriptionWithSecret, status_code=201)
@api.doc(tags=TAGS, summary="Subscribe a URL to events; the signing secret is in this "
                            "response only")
def create_event_subscription(body: dict[str, Any]) -> dict[str, Any]:
    made = subscriptions.create(current_access(), **body)
    db.session.commit()
    return subscription_view(made.subscription, secret=made.secret)


@api.get("/event-subscriptions/<subscription_id>")
@require(PERMISSION)
@api.output(SubscriptionOut)
@api.doc(tags=TAGS, summary="One event subscription")
def get_event_subscription(subscription_id: str) -> dict[str, Any]:
    return subscription_view(subscriptions.get_subscription(current_access(), subscription_id))


@api.patch("/event-subscriptions/<subscription_id>")
@require(PERMISSION)
@api.input(SubscriptionPatch, arg_name="body")
@api.output(SubscriptionOut)
@api.doc(tags=TAGS, summary="Change an event subscription; enabling it again sends the "
                            "deliveries that waited")
def update_event_subscription(subscription_id: str, body: dict[str, Any]) -> dict[str, Any]:
    access = current_access()
    subscription = subscriptions.update(
        access, subscriptions.get_subscription(access, subscription_id), **body)
    db.session.commit()
    return subscription_view(subscription)


@api.delete("/event-subscriptions/<subscription_id>")
@require(PERMISSION)
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Delete an event subscription, its secret and its log")
def delete_event_subscription(subscription_id: str) -> tuple[str, int]:
    access = current_access()
    subscriptions.delete(access, subscriptions.get_subscription(access, subscription_id))
    db.session.commit()
    return "", 204


@api.post("/event-subscriptions/<subscription_id>/rotate-secret")
@require(PERMISSION)
@api.input(RotateSecret, arg_name="body")
@api.output(SubscriptionWithSecret)
@api.doc(tags=TAGS, summary="A new signing secret (in this response only); the previous "
                            "one also signs deliveries until the overlap ends")
def rotate_event_secret(subscription_id: str, body: dict[str, Any]) -> dict[str, Any]:
    access = current_access()
    made = subscriptions.rotate_secret(
        access, subscriptions.get_subscription(access, subscription_id),
        timedelta(seconds=body["overlap_seconds"]))
    db.session.commit()
    return subscription_view(made.subscription, secret=made.secret)


@api.get("/event-subscriptions/<subscription_id>/deliveries")
@require(PERMISSION)
@api.input(DeliveryQuery, location="query", arg_name="query")
@api.output(DeliveryList)
@api.doc(tags=TAGS, summary="The delivery log: recent deliveries, newest first, with "
                            "each attempt's status code, latency and error")
def list_event_deliveries(subscription_id: str, query: dict[str, Any]) -> dict[str, Any]:
    access = current_access()
    subscription = subscriptions.get_subscription(access, subscription_id)
    found = deliveries.list_deliveries(access, subscription, query["limit"])
    logs = deliveries.attempts_of(found)
    return {"items": [delivery_view(d, logs.get(d.id, [])) for d in found]}


@api.post("/event-subscriptions/<subscription_id>/test")
@require(PERMISSION)
@api.output(DeliveryOut)
@api.doc(tags=TAGS, summary="Send a `ping` event now and show how it went")
def test_event_subscription(subscription_id: str) -> dict[str, Any]:
    access = current_access()
    delivery, _ = deliveries.ping(access, subscriptions.get_subscription(access,
                                                                         subscription_id))
    return delivery_view(delivery, deliveries.attempts_of([delivery]).get(delivery.id, []))


@api.post("/event-deliveries/<delivery_id>/redeliver")
@require(PERMISSION)
@api.output(DeliveryOut)
@api.doc(tags=TAGS, summary="Send a delivery again now: a new attempt, the same "
                            "webhook-id and body")
def redeliver_event(delivery_id: str) -> dict[str, Any]:
    access = current_access()
    deliveries.redeliver(access, deliveries.get_delivery(access, delivery_id))
    delivery = deliveries.get_delivery(access, delivery_id)  # as the attempt left it
    return delivery_view(delivery, deliveries.attempts_of([delivery]).get(delivery.id, []))
