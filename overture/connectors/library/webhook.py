"""Webhook: another app calls the workflow's secret URL (`POST /hooks/<tenant>/<token>`,
optionally HMAC-signed); the request body becomes the run's input.

Senders retry deliveries, so the same event may arrive more than once. When a call
names its event (a header below, or an `event_id` field of a JSON body, or the `id`
of a body whose `object` is "event", as Stripe sends), that name is the dedupe key
and a repeated event answers with the run the first delivery started.

A delivery id is one value whichever header (in whatever letter case) or body field
carried it: a sender that moves from `X-Event-Id` to `webhook-id` still names the same
events. A UUID is compared in its canonical form (lower case, hyphenated), since
senders and proxies spell UUIDs in either case and they mean the same; any other id
is compared exactly, since ids such as Stripe's `evt_1Nx...` are case-sensitive and
folding them could merge two events.
"""

from __future__ import annotations

import uuid
from typing import Any

from overture.connectors.spec import Auth, Connector, Trigger, obj

# Checked in this order, case-insensitively.
EVENT_ID_HEADERS = ("x-event-id", "webhook-id", "x-webhook-id", "x-delivery-id",
                    "x-github-delivery", "x-shopify-webhook-id")


def canonical_event_id(value: str) -> str:
    """One spelling per delivery id: a UUID in its canonical form, anything else as given."""
    value = value.strip()
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return value


def event_key(event: dict[str, Any]) -> str:
    """The event's own id: `event` is {"headers": {name: value}, "body": ...}."""
    headers = {str(name).lower(): value for name, value in (event.get("headers") or {}).items()}
    for name in EVENT_ID_HEADERS:
        value = canonical_event_id(str(headers.get(name) or ""))
        if value:
            return value
    body = event.get("body")
    if isinstance(body, dict):
        for value in (body.get("event_id"),
                      body.get("id") if body.get("object") == "event" else None):
            if (isinstance(value, str | int) and not isinstance(value, bool)
                    and (canonical := canonical_event_id(str(value)))):
                return canonical
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
