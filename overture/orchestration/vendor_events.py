"""What each vendor's signed call means: which events it carries (each with the
vendor's own id, the dedupe key of the run it starts), filtered by the trigger's
settings, and the reply a vendor expects beyond "200" (Slack's URL challenge).

A source is a verifier (overture/platform/vendor_signing.py) and a reader; the
settings each source takes are cleaned here so the API and the console share them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from overture.platform import vendor_signing
from overture.platform.errors import ValidationFailed


@dataclass(frozen=True)
class Call:
    """One signed HTTP call as the vendor sent it."""

    method: str
    uris: tuple[str, ...]  # the full URLs the vendor may have posted to (HubSpot signs it)
    headers: Mapping[str, str]
    body: bytes
    payload: Any = None  # the parsed body, read once the signature holds


@dataclass
class Intake:
    events: list[tuple[str, Any]] = field(default_factory=list)  # (vendor's event id, input)
    reply: dict[str, Any] | None = None
    ignored: int = 0


@dataclass(frozen=True)
class Source:
    label: str
    events: tuple[str, ...]  # the event kinds a trigger may choose; default: all
    verify: Callable[[str, Call], None]
    read: Callable[[Call, dict[str, Any]], Intake]
    secret_hint: str
    channels: bool = False  # takes a channel filter (Slack)


def _wanted(settings: dict[str, Any], kind: str) -> bool:
    return kind in (settings.get("events") or ())


# --------------------------------------------------------------------------- Slack


def _slack(call: Call, settings: dict[str, Any]) -> Intake:
    payload = call.payload if isinstance(call.payload, dict) else {}
    if payload.get("type") == "url_verification":
        return Intake(reply={"challenge": str(payload.get("challenge", ""))})
    event = payload.get("event")
    event_id = payload.get("event_id")
    if payload.get("type") != "event_callback" or not isinstance(event, dict) or not event_id:
        return Intake(ignored=1)
    channels = settings.get("channels") or []
    bot = event.get("bot_id") or event.get("subtype") == "bot_message"
    # edits, deletions and joins are `message` events with a subtype: not new messages
    plain = event.get("subtype") in (None, "thread_broadcast", "file_share")
    if (not _wanted(settings, str(event.get("type"))) or bot or not plain
            or (channels and event.get("channel") not in channels)):
        return Intake(ignored=1)
    return Intake(events=[(str(event_id), {
        "source": "slack", "event_id": event_id, "team_id": payload.get("team_id"),
        "type": event.get("type"), "channel": event.get("channel"), "user": event.get("user"),
        "text": event.get("text", ""), "ts": event.get("ts"),
        "thread_ts": event.get("thread_ts"), "event": event})])


# --------------------------------------------------------------------------- HubSpot


def _hubspot(call: Call, settings: dict[str, Any]) -> Intake:
    batch = call.payload if isinstance(call.payload, list) else [call.payload]
    intake = Intake()
    for event in batch:
        kind = event.get("subscriptionType") if isinstance(event, dict) else None
        if not kind or not _wanted(settings, kind) or event.get("eventId") is None:
            intake.ignored += 1
            continue
        intake.events.append((str(event["eventId"]), {
            "source": "hubspot", "event_id": event["eventId"], "type": kind,
            "object_id": event.get("objectId"), "portal_id": event.get("portalId"),
            "occurred_at": event.get("occurredAt"), "event": event}))
    return intake


# --------------------------------------------------------------------------- tickets


def _zendesk(call: Call, settings: dict[str, Any]) -> Intake:
    payload = call.payload if isinstance(call.payload, dict) else {}
    raw_type = str(payload.get("type") or "")
    # Event-subscribed webhooks name it: zen:event-type:ticket.created, ...ticket.
    # status_changed (an update); user and organization events are not tickets. A
    # trigger-connected webhook's body is the admin's own: an update unless it says so.
    if raw_type.endswith("ticket.created"):
        kind: str | None = "ticket.created"
    elif not raw_type or "ticket." in raw_type:
        kind = "ticket.updated"
    else:
        kind = None
    event_id = payload.get("id") or call.headers.get("X-Zendesk-Webhook-Invocation-Id")
    if kind is None or not _wanted(settings, kind) or not event_id:
        return Intake(ignored=1)
    detail = payload.get("detail") if isinstance(payload.get("detail"), dict) else {}
    return Intake(events=[(str(event_id), {
        "source": "zendesk", "event_id": event_id, "type": kind, "zendesk_type": raw_type,
        "ticket_id": detail.get("id"), "subject": detail.get("subject"),
        "ticket": detail, "event": payload})])


def _jira(call: Call, settings: dict[str, Any]) -> Intake:
    payload = call.payload if isinstance(call.payload, dict) else {}
    kind = {"jira:issue_created": "issue.created",
            "jira:issue_updated": "issue.updated"}.get(str(payload.get("webhookEvent")))
    # the delivery's id; a body-only signature makes the body itself the fallback name
    delivery = (call.headers.get("X-Atlassian-Webhook-Identifier")
                or "body:" + hashlib.sha256(call.body).hexdigest())
    if kind is None or not _wanted(settings, kind):
        return Intake(ignored=1)
    issue = payload.get("issue") if isinstance(payload.get("issue"), dict) else {}
    fields = issue.get("fields") if isinstance(issue.get("fields"), dict) else {}
    return Intake(events=[(delivery, {
        "source": "jira", "event_id": delivery, "type": kind, "issue_key": issue.get("key"),
        "summary": fields.get("summary"), "issue": issue, "event": payload})])


# --------------------------------------------------------------------------- forms


def _typeform(call: Call, settings: dict[str, Any]) -> Intake:
    payload = call.payload if isinstance(call.payload, dict) else {}
    if payload.get("event_type") != "form_response" or not payload.get("event_id"):
        return Intake(ignored=1)
    response = payload.get("form_response") if isinstance(payload.get("form_response"),
                                                          dict) else {}
    return Intake(events=[(str(payload["event_id"]), {
        "source": "typeform", "event_id": payload["event_id"],
        "form_id": response.get("form_id"), "answers": response.get("answers", []),
        "hidden": response.get("hidden", {}), "submitted_at": response.get("submitted_at"),
        "form_response": response})])


SOURCES: dict[str, Source] = {
    "slack": Source("Slack", ("message", "app_mention"),
                    lambda s, c: vendor_signing.verify_slack(s, c.headers, c.body), _slack,
                    "the app's Signing Secret (Basic Information > App Credentials)",
                    channels=True),
    "hubspot": Source("HubSpot", ("contact.creation", "deal.creation"),
                      lambda s, c: vendor_signing.verify_hubspot(s, c.method, c.uris, c.headers,
                                                                 c.body), _hubspot,
                      "the app's Client secret (app settings > Auth)"),
    "zendesk": Source("Zendesk", ("ticket.created", "ticket.updated"),
                      lambda s, c: vendor_signing.verify_zendesk(s, c.headers, c.body),
                      _zendesk, "the webhook's Signing secret (Admin Center > Webhooks)"),
    "jira": Source("Jira", ("issue.created", "issue.updated"),
                   lambda s, c: vendor_signing.verify_jira(s, c.headers, c.body), _jira,
                   "the Secret you enter on the Jira webhook (System > WebHooks)"),
    "typeform": Source("Typeform", ("form_response",),
                       lambda s, c: vendor_signing.verify_typeform(s, c.headers, c.body),
                       _typeform, "the Secret set on the form's webhook (Connect > Webhooks)"),
}


def source(key: str) -> Source:
    found = SOURCES.get(key)
    if found is None:
        raise ValidationFailed.field("source", "one of " + ", ".join(SOURCES))
    return found


def clean_settings(key: str, raw: dict[str, Any] | None) -> dict[str, Any]:
    """The settings a source takes: `events` (a subset of its kinds; default all) and,
    for Slack, `channels` (channel ids; empty: every channel the app is in)."""
    spec, raw = source(key), dict(raw or {})
    unknown = set(raw) - {"events", "channels"} if spec.channels else set(raw) - {"events"}
    if unknown:
        raise ValidationFailed.field("settings", f"unknown setting {sorted(unknown)[0]!r}")
    events = raw.get("events") or list(spec.events)
    if not isinstance(events, list) or not set(events) <= set(spec.events):
        raise ValidationFailed.field("settings.events", "a list of " + ", ".join(spec.events))
    cleaned: dict[str, Any] = {"events": [e for e in spec.events if e in events]}
    if spec.channels:
        channels = raw.get("channels") or []
        if not isinstance(channels, list) or not all(
                isinstance(c, str) and 1 <= len(c) <= 40 for c in channels) or len(channels) > 50:
            raise ValidationFailed.field("settings.channels", "up to 50 Slack channel ids "
                                                              "(like C0123456789)")
        cleaned["channels"] = channels
    return cleaned
