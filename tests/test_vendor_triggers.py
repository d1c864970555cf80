"""Vendor triggers (`-k vendor`): Slack, HubSpot, Zendesk, Jira and Typeform post
events signed the way each vendor documents it; the signers below are written from
the vendors' documentation, not from the code under test. A valid call starts one run
per event, shown in the run list with its source; a wrong secret or a stale
timestamp is a 401 problem; a replayed or retried event starts nothing more."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from tests.engine_api_support import audit_events, ok, publish_via_api
from tests.support import as_key, as_user

ECHO = {"steps": [{"id": "echo", "type": "transform", "output": {"seen": "{{ input }}"}}]}
SECRET = "vendor-signing-secret-0123456789"
WRONG = "someone-elses-secret-0123456789"
JSON = {"Content-Type": "application/json"}
STALE = 10 * 60  # seconds: past every vendor's five-minute window


def feed(app, world, source: str, settings: dict[str, Any] | None = None
         ) -> tuple[dict[str, Any], dict[str, Any]]:
    """A published workflow with a vendor trigger: (workflow, trigger as the API shows it)."""
    admin = as_key(app, world, "a_admin")
    workflow = publish_via_api(admin, ECHO)
    trigger = ok(admin.post(f"/workflows/{workflow['id']}/vendor-triggers", json={
        "source": source, "secret": SECRET, "settings": settings or {}}), 201)
    return workflow, trigger


def runs_of(app, world, workflow: dict[str, Any], source: str) -> list[dict[str, Any]]:
    admin = as_key(app, world, "a_admin")
    return ok(admin.get("/runs", query_string={"workflow_id": workflow["id"],
                                               "trigger": source, "limit": 200}))["items"]


def post(app, trigger: dict[str, Any], body: bytes, headers: dict[str, str]) -> Any:
    return app.test_client().post(urlparse(trigger["url"]).path, data=body,
                                  headers={**JSON, **headers})


def refused(response: Any, reason: str) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["reason"] == reason, problem
    assert SECRET not in json.dumps(problem)


# --------------------------------------------------------------------------- vendors' signers

def slack_headers(body: bytes, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    """api.slack.com/authentication/verifying-requests-from-slack: v0=hex HMAC-SHA256 of
    'v0:' + X-Slack-Request-Timestamp + ':' + body."""
    stamp = str(int(time.time() if at is None else at))
    base = b"v0:" + stamp.encode() + b":" + body
    return {"X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": "v0=" + hmac.new(secret.encode(), base, "sha256").hexdigest()}


def hubspot_headers(url: str, body: bytes, secret: str = SECRET,
                    at: float | None = None) -> dict[str, str]:
    """developers.hubspot.com, Validating requests, v3: base64 HMAC-SHA256 of
    method + URI + body + timestamp (milliseconds)."""
    stamp = str(int((time.time() if at is None else at) * 1000))
    source = "POST" + url + body.decode() + stamp
    mac = hmac.new(secret.encode(), source.encode(), hashlib.sha256).digest()
    return {"X-HubSpot-Signature-v3": base64.b64encode(mac).decode(),
            "X-HubSpot-Request-Timestamp": stamp}


def zendesk_headers(body: bytes, secret: str = SECRET, at: float | None = None,
                    invocation: str | None = None) -> dict[str, str]:
    """developer.zendesk.com, Verifying webhook authenticity: base64 HMAC-SHA256 of
    timestamp + body; the timestamp is ISO 8601."""
    when = datetime.fromtimestamp(time.time() if at is None else at, tz=UTC)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    mac = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    return {"X-Zendesk-Webhook-Signature": base64.b64encode(mac).decode(),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            "X-Zendesk-Webhook-Invocation-Id": invocation or str(uuid.uuid4().int)[:12]}


def jira_headers(body: bytes, secret: str = SECRET, delivery: str | None = None
                 ) -> dict[str, str]:
    """Jira Cloud admin webhooks with a secret: X-Hub-Signature: sha256=<hex HMAC of body>."""
    return {"X-Hub-Signature": "sha256=" + hmac.new(secret.encode(), body,
                                                    hashlib.sha256).hexdigest(),
            "X-Atlassian-Webhook-Identifier": delivery or uuid.uuid4().hex}


def typeform_headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    """typeform.com/developers/webhooks/secure-your-webhooks: sha256=<base64 HMAC of body>."""
    mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {"Typeform-Signature": "sha256=" + base64.b64encode(mac).decode()}


# --------------------------------------------------------------------------- Slack

def slack_event(event: dict[str, Any], event_id: str | None = None) -> bytes:
    return json.dumps({"token": "legacy", "team_id": "T1", "api_app_id": "A1",
                       "type": "event_callback", "event_id": event_id or f"Ev{uuid.uuid4().hex}",
                       "event_time": int(time.time()), "event": event}).encode()


def test_vendor_slack_challenge_events_filters_and_retries(app, world):
    workflow, trigger = feed(app, world, "slack", {"channels": ["C1"]})
    assert trigger["settings"] == {"events": ["message", "app_mention"], "channels": ["C1"]}

    challenge = json.dumps({"token": "x", "challenge": "3eZbrw1aB", "type": "url_verification"})
    answer = post(app, trigger, challenge.encode(), slack_headers(challenge.encode()))
    assert answer.status_code == 200 and answer.get_json() == {"challenge": "3eZbrw1aB"}

    body = slack_event({"type": "message", "channel": "C1", "user": "U1", "text": "help",
                        "ts": "1.1"}, "Ev01")
    first = post(app, trigger, body, slack_headers(body))
    assert first.status_code == 200 and first.get_json()["started"] == 1
    [run] = runs_of(app, world, workflow, "slack")
    assert run["trigger"] == "slack" and run["input"]["text"] == "help"

    # Slack's retry of the same event, and a replay within the window: 200, no new run.
    retry = post(app, trigger, body, {**slack_headers(body), "X-Slack-Retry-Num": "1",
                                      "X-Slack-Retry-Reason": "http_timeout"})
    assert retry.status_code == 200 and retry.get_json()["existing"] == 1
    assert post(app, trigger, body, slack_headers(body)).status_code == 200

    # Another channel, a bot's message, an edit: answered, nothing started.
    for event in ({"type": "message", "channel": "C2", "text": "x", "ts": "2"},
                  {"type": "message", "channel": "C1", "bot_id": "B1", "text": "x", "ts": "3"},
                  {"type": "message", "subtype": "message_changed", "channel": "C1", "ts": "4"}):
        ignored = slack_event(event)
        reply = post(app, trigger, ignored, slack_headers(ignored))
        assert reply.status_code == 200 and reply.get_json()["ignored"] == 1
    mention = slack_event({"type": "app_mention", "channel": "C1", "user": "U2",
                           "text": "<@A1> hi", "ts": "5"})
    assert post(app, trigger, mention, slack_headers(mention)).get_json()["started"] == 1
    assert len(runs_of(app, world, workflow, "slack")) == 2


def test_vendor_slack_refuses_wrong_secret_stale_and_unsigned_calls(app, world):
    workflow, trigger = feed(app, world, "slack")
    body = slack_event({"type": "message", "channel": "C9", "text": "x", "ts": "1"})
    refused(post(app, trigger, body, slack_headers(body, secret=WRONG)), "mismatch")
    refused(post(app, trigger, body, slack_headers(body, at=time.time() - STALE)), "expired")
    refused(post(app, trigger, body, {}), "missing")
    tampered = body.replace(b'"x"', b'"y"')
    refused(post(app, trigger, tampered, slack_headers(body)), "mismatch")
    assert runs_of(app, world, workflow, "slack") == []


# --------------------------------------------------------------------------- HubSpot

def hubspot_batch(*events: tuple[int, str]) -> bytes:
    return json.dumps([{"eventId": event_id, "subscriptionId": 7, "portalId": 99,
                        "appId": 5, "occurredAt": 1_700_000_000_000,
                        "subscriptionType": kind, "attemptNumber": 0,
                        "objectId": 1000 + event_id, "changeFlag": "CREATED"}
                       for event_id, kind in events]).encode()


def test_vendor_hubspot_batch_starts_one_run_per_event_once(app, world):
    workflow, trigger = feed(app, world, "hubspot")
    body = hubspot_batch((1, "contact.creation"), (2, "deal.creation"),
                         (3, "contact.propertyChange"))
    reply = post(app, trigger, body, hubspot_headers(trigger["url"], body))
    assert reply.status_code == 200, reply.get_data(as_text=True)
    assert reply.get_json() | {"run_ids": None} == {"started": 2, "existing": 0, "ignored": 1,
                                                    "run_ids": None}
    runs = runs_of(app, world, workflow, "hubspot")
    assert sorted(r["input"]["type"] for r in runs) == ["contact.creation", "deal.creation"]

    # HubSpot's retry with one more event: only the new one starts.
    again = hubspot_batch((1, "contact.creation"), (2, "deal.creation"), (4, "contact.creation"))
    assert post(app, trigger, again, hubspot_headers(trigger["url"], again)).get_json()[
        "started"] == 1
    assert len(runs_of(app, world, workflow, "hubspot")) == 3

    fresh = hubspot_batch((5, "contact.creation"))
    refused(post(app, trigger, fresh, hubspot_headers(trigger["url"], fresh, secret=WRONG)),
            "mismatch")
    refused(post(app, trigger, fresh, hubspot_headers(trigger["url"], fresh,
                                                      at=time.time() - STALE)), "expired")
    # signed for another URL (a capture posted elsewhere): refused
    refused(post(app, trigger, fresh, hubspot_headers(trigger["url"] + "x", fresh)), "mismatch")
    assert len(runs_of(app, world, workflow, "hubspot")) == 3


# --------------------------------------------------------------------------- tickets

def zendesk_event(kind: str, event_id: str) -> bytes:
    return json.dumps({"type": f"zen:event-type:{kind}", "account_id": 1, "id": event_id,
                       "time": "2026-12-06T20:00:00Z", "zendesk_event_version": "2022-11-06",
                       "subject": "zen:ticket:42",
                       "detail": {"id": "42", "subject": "Printer on fire", "status": "NEW"},
                       "event": {}}).encode()


def test_vendor_zendesk_ticket_created_and_updated(app, world):
    workflow, trigger = feed(app, world, "zendesk")
    created = zendesk_event("ticket.created", "ev-1")
    assert post(app, trigger, created, zendesk_headers(created)).get_json()["started"] == 1
    updated = zendesk_event("ticket.status_changed", "ev-2")
    assert post(app, trigger, updated, zendesk_headers(updated)).get_json()["started"] == 1
    runs = runs_of(app, world, workflow, "zendesk")
    assert sorted(r["input"]["type"] for r in runs) == ["ticket.created", "ticket.updated"]
    assert {r["input"]["subject"] for r in runs} == {"Printer on fire"}

    # a redelivery (new invocation, same event id): nothing more
    assert post(app, trigger, created, zendesk_headers(created)).get_json()["existing"] == 1
    other = zendesk_event("ticket.created", "ev-3")
    refused(post(app, trigger, other, zendesk_headers(other, secret=WRONG)), "mismatch")
    refused(post(app, trigger, other, zendesk_headers(other, at=time.time() - STALE)), "expired")
    assert len(runs_of(app, world, workflow, "zendesk")) == 2


def test_vendor_zendesk_settings_choose_the_events(app, world):
    workflow, trigger = feed(app, world, "zendesk", {"events": ["ticket.created"]})
    updated = zendesk_event("ticket.priority_changed", "ev-9")
    assert post(app, trigger, updated, zendesk_headers(updated)).get_json()["ignored"] == 1
    user = zendesk_event("user.created", "ev-10")  # not a ticket at all
    assert post(app, trigger, user, zendesk_headers(user)).get_json()["ignored"] == 1
    assert runs_of(app, world, workflow, "zendesk") == []


def jira_event(kind: str, key: str = "OPS-7") -> bytes:
    return json.dumps({"timestamp": 1_700_000_000_000, "webhookEvent": f"jira:issue_{kind}",
                       "issue_event_type_name": f"issue_{kind}",
                       "issue": {"id": "10001", "key": key,
                                 "fields": {"summary": "VPN down"}}}).encode()


def test_vendor_jira_issue_created_and_updated_once_per_delivery(app, world):
    workflow, trigger = feed(app, world, "jira")
    created = jira_event("created")
    headers = jira_headers(created, delivery="d-1")
    assert post(app, trigger, created, headers).get_json()["started"] == 1
    assert post(app, trigger, created, headers).get_json()["existing"] == 1  # replay
    updated = jira_event("updated")
    assert post(app, trigger, updated, jira_headers(updated)).get_json()["started"] == 1
    runs = runs_of(app, world, workflow, "jira")
    assert sorted(r["input"]["type"] for r in runs) == ["issue.created", "issue.updated"]
    assert {r["input"]["issue_key"] for r in runs} == {"OPS-7"}

    refused(post(app, trigger, created, jira_headers(created, secret=WRONG)), "mismatch")
    # Jira signs no timestamp: a stale capture is stopped by its delivery id, and one
    # with its identifier stripped by its (signed) body
    bare = {"X-Hub-Signature": headers["X-Hub-Signature"]}
    assert post(app, trigger, created, bare).get_json()["started"] == 1
    assert post(app, trigger, created, bare).get_json()["existing"] == 1
    assert len(runs_of(app, world, workflow, "jira")) == 3


# --------------------------------------------------------------------------- Typeform

def typeform_event(event_id: str) -> bytes:
    return json.dumps({"event_id": event_id, "event_type": "form_response", "form_response": {
        "form_id": "lT4Z3j", "token": "a3a12ec67a1365927098a606107fac15",
        "submitted_at": "2026-12-06T20:00:00Z", "hidden": {"source": "site"},
        "answers": [{"type": "email", "email": "ada@example.com",
                     "field": {"id": "f1", "type": "email"}}]}}).encode()


def test_vendor_typeform_response_starts_one_run(app, world):
    workflow, trigger = feed(app, world, "typeform")
    body = typeform_event("01HTYPE1")
    assert post(app, trigger, body, typeform_headers(body)).get_json()["started"] == 1
    assert post(app, trigger, body, typeform_headers(body)).get_json()["existing"] == 1
    [run] = runs_of(app, world, workflow, "typeform")
    assert run["input"]["answers"][0]["email"] == "ada@example.com"
    refused(post(app, trigger, body, typeform_headers(body, secret=WRONG)), "mismatch")
    refused(post(app, trigger, body, {"Typeform-Signature": "sha256=bm9wZQ=="}), "mismatch")
    assert len(runs_of(app, world, workflow, "typeform")) == 1


# --------------------------------------------------------------------------- management

def test_vendor_trigger_management_keeps_the_secret_out_of_sight(app, world):
    workflow, trigger = feed(app, world, "typeform")
    assert "secret" not in trigger and SECRET not in json.dumps(trigger)
    admin = as_key(app, world, "a_admin")
    listed = ok(admin.get(f"/workflows/{workflow['id']}/vendor-triggers"))["items"]
    assert [t["id"] for t in listed] == [trigger["id"]]
    bad = admin.post(f"/workflows/{workflow['id']}/vendor-triggers",
                     json={"source": "myspace", "secret": SECRET})
    assert bad.status_code == 422 and "source" in bad.get_data(as_text=True)
    bad = admin.post(f"/workflows/{workflow['id']}/vendor-triggers",
                     json={"source": "slack", "secret": SECRET,
                           "settings": {"events": ["reaction_added"]}})
    assert bad.status_code == 422 and "settings.events" in bad.get_data(as_text=True)
    viewer = as_user(app, world, "a_viewer")
    assert viewer.post(f"/workflows/{workflow['id']}/vendor-triggers",
                       json={"source": "jira", "secret": SECRET}).status_code == 403

    # Turned off: 409, nothing starts; a new secret replaces the old at once.
    ok(admin.patch(f"/vendor-triggers/{trigger['id']}", json={"enabled": False}))
    body = typeform_event("01HOFF")
    assert post(app, trigger, body, typeform_headers(body)).status_code == 409
    ok(admin.patch(f"/vendor-triggers/{trigger['id']}",
                   json={"enabled": True, "secret": "a-brand-new-secret"}))
    refused(post(app, trigger, body, typeform_headers(body)), "mismatch")
    assert post(app, trigger, body, typeform_headers(body, "a-brand-new-secret")
                ).get_json()["started"] == 1
    changes = audit_events(world.tenants["a"].id, "trigger.vendor_updated")
    assert SECRET not in json.dumps(changes) and "a-brand-new-secret" not in json.dumps(changes)

    # Another workspace's URL shape with this token: not found.
    other = trigger["url"].replace(str(world.tid("a")), str(world.tid("b")))
    assert app.test_client().post(urlparse(other).path, data=body,
                                  headers=typeform_headers(body)).status_code == 404
    assert admin.delete(f"/vendor-triggers/{trigger['id']}").status_code == 204
    assert post(app, trigger, body, typeform_headers(body)).status_code == 404


def test_vendor_refusals_name_their_fault_and_settings_can_change(app, world):
    admin = as_key(app, world, "a_admin")
    workflow, trigger = feed(app, world, "slack")
    body = slack_event({"type": "message", "channel": "C5", "text": "x", "ts": "1"})
    refused(post(app, trigger, body, slack_headers(body, at=time.time() + STALE)),
            "from-the-future")
    refused(post(app, trigger, body, {**slack_headers(body), "X-Slack-Request-Timestamp":
                                      "yesterday"}), "malformed")
    # narrowed to another channel: the message is answered and ignored
    changed = ok(admin.patch(f"/vendor-triggers/{trigger['id']}",
                             json={"settings": {"channels": ["C6"], "events": ["message"]}}))
    assert changed["settings"] == {"events": ["message"], "channels": ["C6"]}
    assert post(app, trigger, body, slack_headers(body)).get_json()["ignored"] == 1
    assert runs_of(app, world, workflow, "slack") == []

    # a workflow never published: the vendor hears a problem, not a 500, and no run
    draft = ok(admin.post("/workflows", json={"name": f"draft-{uuid.uuid4().hex[:6]}",
                                              "definition": ECHO}), 201)
    unpublished = ok(admin.post(f"/workflows/{draft['id']}/vendor-triggers",
                                json={"source": "typeform", "secret": SECRET}), 201)
    form = typeform_event("01HDRAFT")
    answer = post(app, unpublished, form, typeform_headers(form))
    assert 400 <= answer.status_code < 500 and answer.mimetype == "application/problem+json"
