"""Zendesk Support API v2 against a local fake (`-k connector`): the
`{email}/token:{api_token}` basic auth, the `{subdomain}` base URL, tickets wrapped
in {"ticket": ...}, and Zendesk's error bodies."""

from __future__ import annotations

import base64

import pytest

from overture.connectors import registry
from overture.connectors.errors import ActionFailed
from overture.connectors.execute import context_for, execute
from overture.connectors.models import Connection
from overture.platform.db import db
from tests.oauth_app_support import Stalls, connect, requests_to, tenant_a, throttled_then
from tests.support import as_user

API_TOKEN = "6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv"
AUTH = "Basic " + base64.b64encode(f"agent@acme.com/token:{API_TOKEN}".encode()).decode()


@pytest.fixture(autouse=True)
def allow_loopback(monkeypatch):
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


def ticket(ident: int, base: str, **fields) -> dict:
    return {"ticket": {"id": ident, "url": f"{base}/api/v2/tickets/{ident}.json",
                       "subject": "Printer on fire", "status": "new", "priority": "urgent",
                       "updated_at": "2024-05-01T10:00:00Z", **fields},
            "audit": {"id": 7001, "ticket_id": ident, "events": [
                {"id": 8001, "type": "Comment", "body": "It is on fire", "public": True},
                {"id": 8002, "type": "Create", "field_name": "status", "value": "new"}]}}


def zendesk_connection(app, world, httpserver, token=API_TOKEN, base_url="/api/v2"):
    return connect(app, world, "zendesk",
                   base_url=httpserver.url_for(base_url) if base_url else None,
                   credentials={"subdomain": "acme", "email": "agent@acme.com",
                                "api_token": token}, secrets=(token,))


def test_connector_zendesk_creates_updates_and_comments_on_tickets(app, world, httpserver):
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request(
        "/api/v2/tickets.json", method="POST", headers={"Authorization": AUTH,
                                                        "Idempotency-Key": "step-run-42"},
        json={"ticket": {"subject": "Printer on fire", "priority": "urgent",
                         "tags": ["hardware"], "custom_fields": [{"id": 360001, "value": "A"}],
                         "comment": {"body": "It is on fire", "public": True},
                         "requester": {"email": "ada@example.com", "name": "Ada"}}},
    ).respond_with_json(ticket(35436, base), status=201)
    httpserver.expect_request(
        "/api/v2/tickets/35436.json", method="PUT", headers={"Authorization": AUTH},
        json={"ticket": {"status": "open", "assignee_id": 235323,
                         "additional_tags": ["escalated"]}},
    ).respond_with_json(ticket(35436, base, status="open"))
    httpserver.expect_request(
        "/api/v2/tickets/35437.json", method="PUT", headers={"Authorization": AUTH},
        json={"ticket": {"comment": {"body": "Extinguisher on its way", "public": False}}},
    ).respond_with_json(ticket(35437, base, status="open"))
    admin, conn = zendesk_connection(app, world, httpserver)

    r = admin.client.post(f"/api/v1/connections/{conn}/actions/create_ticket",
                          headers={**admin.headers(None), "Idempotency-Key": "step-run-42"},
                          json={"input": {"subject": "Printer on fire", "body": "It is on fire",
                                          "priority": "urgent", "tags": ["hardware"],
                                          "custom_fields": [{"id": 360001, "value": "A"}],
                                          "requester_email": "ada@example.com",
                                          "requester_name": "Ada"}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["output"] == {
        "id": 35436, "url": f"{base}/api/v2/tickets/35436.json",
        "agent_url": f"{base}/agent/tickets/35436", "status": "new",
        "subject": "Printer on fire", "updated_at": "2024-05-01T10:00:00Z", "comment_id": 8001}
    r = admin.post(f"/connections/{conn}/actions/update_ticket", json={"input": {
        "ticket_id": 35436, "status": "open", "assignee_id": 235323,
        "add_tags": ["escalated"]}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["output"]["status"] == "open"
    r = admin.post(f"/connections/{conn}/actions/add_comment", json={"input": {
        "ticket_id": 35437, "body": "Extinguisher on its way", "public": False}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["output"]["comment_id"] == 8001
    assert len(requests_to(httpserver, "/api/v2/")) == 3


def test_connector_zendesk_auth_failure_is_clear(app, world, httpserver):
    httpserver.expect_request("/api/v2/tickets.json").respond_with_json(
        {"error": "Couldn't authenticate you"}, status=401)
    # Zendesk answers /users/me for unknown callers with the anonymous user
    httpserver.expect_request("/api/v2/users/me.json").respond_with_json(
        {"user": {"id": None, "url": None, "name": "Anonymous user", "email": "invalid@example.com",
                  "role": "end-user"}})
    admin, conn = zendesk_connection(app, world, httpserver, token="wrong-token")

    assert admin.post(f"/connections/{conn}/test").get_json() == {
        "ok": False, "reason": "auth_failed",
        "detail": "Zendesk did not recognise the email and token"}
    r = admin.post(f"/connections/{conn}/actions/create_ticket",
                   json={"input": {"subject": "x", "body": "y"}})
    assert r.status_code == 502
    assert r.get_json()["reason"] == "auth_failed"
    assert r.get_json()["body"] == {"error": "Couldn't authenticate you"}
    assert "wrong-token" not in r.get_data(as_text=True)


def test_connector_zendesk_connection_test_and_missing_ticket(app, world, httpserver):
    httpserver.expect_request("/api/v2/users/me.json", headers={"Authorization": AUTH}) \
        .respond_with_json({"user": {"id": 235323, "name": "Agent", "email": "agent@acme.com",
                                     "role": "agent"}})
    httpserver.expect_request("/api/v2/tickets/999.json").respond_with_json(
        {"error": "RecordNotFound", "description": "Not found"}, status=404)
    httpserver.expect_request("/api/v2/tickets/5.json").respond_with_json(
        {"error": "RecordInvalid", "description": "Record validation errors",
         "details": {"base": [{"description": "Status: closed prevents ticket update",
                               "error": "ClosedPreventsUpdate"}]}}, status=422)
    admin, conn = zendesk_connection(app, world, httpserver)
    assert admin.post(f"/connections/{conn}/test").get_json() == {
        "ok": True, "detail": "signed in to Zendesk as agent@acme.com (agent)"}
    r = admin.post(f"/connections/{conn}/actions/add_comment",
                   json={"input": {"ticket_id": 999, "body": "hello?"}})
    assert (r.status_code, r.get_json()["reason"]) == (502, "not_found")
    r = admin.post(f"/connections/{conn}/actions/update_ticket",
                   json={"input": {"ticket_id": 5, "status": "open"}})
    assert (r.status_code, r.get_json()["reason"]) == (502, "http_4xx")
    assert r.get_json()["body"]["details"]["base"][0]["error"] == "ClosedPreventsUpdate"


def test_connector_zendesk_validation_error_names_the_field(app, world, httpserver):
    admin, conn = zendesk_connection(app, world, httpserver)
    r = admin.post(f"/connections/{conn}/actions/create_ticket",
                   json={"input": {"body": "It is on fire"}})
    assert r.status_code == 422
    assert r.get_json()["errors"][0]["field"] == "input.subject"
    r = admin.post(f"/connections/{conn}/actions/add_comment",
                   json={"input": {"ticket_id": "35436/../../users", "body": "x"}})
    assert r.get_json()["errors"][0]["field"] == "input.ticket_id"
    r = admin.post(f"/connections/{conn}/actions/update_ticket",
                   json={"input": {"ticket_id": 1, "status": "archived"}})
    assert r.get_json()["errors"][0]["field"] == "input.status"
    r = admin.post(f"/connections/{conn}/actions/update_ticket",
                   json={"input": {"ticket_id": 1}})
    assert r.status_code == 422
    assert requests_to(httpserver, "/api/v2/") == []


def test_connector_zendesk_base_url_comes_from_the_subdomain(app, world, httpserver):
    _, conn = zendesk_connection(app, world, httpserver, base_url=None)
    with tenant_a(world):
        ctx = context_for(db.session.get(Connection, conn), registry.get("zendesk"), "test")
    assert ctx.client.base_url == "https://acme.zendesk.com/api/v2/"
    assert ctx.client.headers["Authorization"] == AUTH
    listed = as_user(app, world, "a_builder").get("/connectors/zendesk").get_json()
    assert listed["auth"]["kind"] == "custom"
    assert listed["auth"]["secret_fields"] == ["api_token"]
    assert [f["name"] for f in listed["auth"]["fields"]] == ["subdomain", "email", "api_token"]


def test_connector_zendesk_429_with_retry_after_then_success(app_ctx, world, httpserver):
    base = httpserver.url_for("").rstrip("/")
    handler, calls = throttled_then(
        {"error": "APIRateLimitExceeded", "description": "Number of allowed API requests per "
         "minute exceeded"}, ticket(35436, base))
    httpserver.expect_request("/api/v2/tickets/35436.json", method="PUT") \
        .respond_with_handler(handler)
    _, conn = zendesk_connection(app_ctx, world, httpserver)
    with tenant_a(world):
        out = execute(conn, "add_comment", {"ticket_id": 35436, "body": "hi"})
    assert out["id"] == 35436
    assert len(calls) == 2 and calls[1] - calls[0] >= 0.9, "waited as Retry-After asked"


def test_connector_zendesk_timeout_is_reported(app_ctx, world, httpserver):
    stalled = Stalls(0.8, {})
    httpserver.expect_request("/api/v2/tickets.json").respond_with_handler(stalled)
    _, conn = zendesk_connection(app_ctx, world, httpserver)
    with tenant_a(world), pytest.raises(ActionFailed) as failure:
        execute(conn, "create_ticket", {"subject": "x", "body": "y"}, timeout=0.25)
    assert failure.value.reason == "timeout"
    stalled.wait()
