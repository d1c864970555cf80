"""Webhook: another app calls the workflow's secret URL (`POST /hooks/<tenant>/<token>`,
optionally HMAC-signed); the request body becomes the run's input.

Senders retry deliveries, so the same event may arrive more than once. When a call
names its event (a header below, or an `event_id` field of a JSON body, or the `id`
of a body whose `object` is "event", as Stripe sends), that name is the dedupe key
and a repeated event answers with the run the first delivery started.
"""

from __future__ import annotations

from typing import Any

from overture.connectors.spec import Auth, Connector, Trigger, obj

# Checked in this order, case-insensitively.
EVENT_ID_HEADERS = ("x-event-id", "webhook-id", "x-webhook-id", "x-delivery-id",
                    "x-github-delivery", "x-shopify-webhook-id")


def event_key(event: dict[str, Any]) -> str:
    """The event's own id: `event` is {"headers": {lower-case name: value}, "body": ...}."""
    headers = event.get("headers") or {}
    for name in EVENT_ID_HEADERS:
        value = str(headers.get(name) or "").strip()
        if value:
            return f"{name}:{value}"
    body = event.get("body")
    if isinstance(body, dict):
        for value in (body.get("event_id"),
                      body.get("id") if body.get("object") == "event" else None):
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return f"body:{value}"
    return ""


CONNECTOR = Connector(
    key="webhook",
    name="Webhook",
    description="Start a workflow when another app calls its secret URL.",
    icon="webhook",
    auth=Auth(kind="none"),
    base_url=None,
    tags=("trigger",),
    triggers=(Trigger(
        key="event", name="Webhook call",
        description="A call to the workflow's webhook URL; the body is the run's input. "
                    "Calls naming the same event id (X-Event-Id, webhook-id, "
                    "X-GitHub-Delivery, ... or a body `event_id`) start one run.",
        kind="webhook", output_schema=obj({}, additional=True), dedupe_key=event_key),),
)
