"""Slack against a local fake of its Web API (`-k connector`): HTTP 200 answers with
`ok: false` become clear reasons; OAuth2 v2 with state bound to the session, the
token set sealed, a refresh exactly once while calls race."""

from __future__ import annotations

import base64
import json
import threading
import time
from urllib.parse import urlsplit

import pytest
from werkzeug.wrappers import Request, Response

from overture.connectors.errors import ActionFailed
from overture.connectors.execute import execute
from tests.oauth_app_support import (
    Stalls,
    connect,
    events,
    json_response,
    query_of,
    requests_to,
    tenant_a,
    throttled_then,
)
from tests.support import as_user

BOT_TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
CLIENT_SECRET = "slack-client-secret-3f9a"
POSTED = {"ok": True, "channel": "C0123ABCD", "ts": "1503435957.000100",
          "message": {"type": "message", "text": "Deploy finished", "user": "U0KRQLJ9H",
                      "bot_id": "B0KRQLJ9H", "ts": "1503435957.000100"}}


@pytest.fixture(autouse=True)
def allow_loopback(monkeypatch):
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


def slack_connection(app, world, httpserver, token=BOT_TOKEN, **credentials):
    return connect(app, world, "slack", base_url=httpserver.url_for("/api"),
                   credentials={"client_id": "3336676.569200954261",
                                "client_secret": CLIENT_SECRET, "access_token": token,
                                **credentials},
                   settings={"token_url": httpserver.url_for("/api/oauth.v2.access"),
                             "authorize_url": httpserver.url_for("/oauth/v2/authorize")},
                   secrets=(token, CLIENT_SECRET))


def test_connector_slack_posts_a_message_and_finds_a_user(app, world, httpserver):
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Deploy* finished"}}]
    httpserver.expect_request(
        "/api/chat.postMessage", method="POST",
        headers={"Authorization": f"Bearer {BOT_TOKEN}"},
        json={"channel": "C0123ABCD", "text": "Deploy finished", "blocks": blocks,
              "thread_ts": "1503435956.000247"},
    ).respond_with_json(POSTED)
    httpserver.expect_request(
        "/api/users.lookupByEmail", method="GET", query_string={"email": "egon@example.com"},
        headers={"Authorization": f"Bearer {BOT_TOKEN}"},
    ).respond_with_json({"ok": True, "user": {
        "id": "W012A3CDE", "team_id": "T012AB3C4", "name": "spengler", "deleted": False,
        "real_name": "Egon Spengler", "is_bot": False,
        "profile": {"real_name": "Egon Spengler", "display_name": "spengler",
                    "email": "egon@example.com"}}})
    admin, conn = slack_connection(app, world, httpserver)

    r = admin.post(f"/connections/{conn}/actions/post_message", json={"input": {
        "channel": "C0123ABCD", "text": "Deploy finished", "blocks": blocks,
        "thread_ts": "1503435956.000247"}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["output"] == {"ts": "1503435957.000100", "channel": "C0123ABCD"}

    r = admin.post(f"/connections/{conn}/actions/find_user",
                   json={"input": {"email": "egon@example.com"}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["output"] == {
        "id": "W012A3CDE", "name": "spengler", "real_name": "Egon Spengler",
        "display_name": "spengler", "team_id": "T012AB3C4", "is_bot": False, "deleted": False}
    assert len(requests_to(httpserver, "/api/")) == 2
    listed = admin.get("/connectors/slack").get_json()
    assert listed["auth"]["kind"] == "oauth2"
    assert listed["auth"]["scopes"] == ["chat:write", "users:read", "users:read.email"]
    assert {a["key"] for a in listed["actions"]} == {"post_message", "find_user"}
    [called, *_] = events(world, "connector.action_called")
    assert called.details["outcome"] == "ok" and BOT_TOKEN not in json.dumps(called.details)


def test_connector_slack_ok_false_answers_become_clear_reasons(app, world, httpserver):
    httpserver.expect_request("/api/auth.test", method="POST").respond_with_json(
        {"ok": False, "error": "invalid_auth"})
    httpserver.expect_oneshot_request("/api/chat.postMessage").respond_with_json(
        {"ok": False, "error": "token_revoked"})
    httpserver.expect_oneshot_request("/api/chat.postMessage").respond_with_json(
        {"ok": False, "error": "channel_not_found"})
    httpserver.expect_oneshot_request("/api/users.lookupByEmail").respond_with_json(
        {"ok": False, "error": "missing_scope", "needed": "users:read.email",
         "provided": "chat:write"})
    admin, conn = slack_connection(app, world, httpserver, token="xoxb-revoked")

    r = admin.post(f"/connections/{conn}/test")
    assert r.get_json() == {"ok": False, "reason": "auth_failed",
                            "detail": "Slack refused the token (invalid_auth)"}
    message = {"input": {"channel": "C0123ABCD", "text": "hi"}}
    r = admin.post(f"/connections/{conn}/actions/post_message", json=message)
    assert r.status_code == 502
    assert (r.get_json()["reason"], r.get_json()["slack_error"]) == ("auth_failed",
                                                                     "token_revoked")
    r = admin.post(f"/connections/{conn}/actions/post_message", json=message)
    assert (r.status_code, r.get_json()["reason"]) == (502, "not_found")
    r = admin.post(f"/connections/{conn}/actions/find_user",
                   json={"input": {"email": "a@example.com"}})
    assert r.get_json()["reason"] == "auth_failed"
    assert r.get_json()["needed"] == "users:read.email"
    outcomes = [e.details["outcome"] for e in events(world, "connector.action_called")]
    assert sorted(outcomes) == ["auth_failed", "auth_failed", "not_found"]


def test_connector_slack_validation_error_names_the_field(app, world, httpserver):
    admin, conn = slack_connection(app, world, httpserver)
    r = admin.post(f"/connections/{conn}/actions/post_message",
                   json={"input": {"channel": "C0123ABCD"}})
    assert r.status_code == 422
    assert r.get_json()["errors"][0]["field"] == "input.text"
    r = admin.post(f"/connections/{conn}/actions/post_message",
                   json={"input": {"channel": "C1", "text": "x", "thread_ts": "yesterday"}})
    assert r.status_code == 422
    assert r.get_json()["errors"][0]["field"] == "input.thread_ts"
    assert requests_to(httpserver, "/api/") == []


def test_connector_slack_429_with_retry_after_then_success(app_ctx, world, httpserver):
    handler, calls = throttled_then({"ok": False, "error": "ratelimited"}, POSTED)
    httpserver.expect_request("/api/chat.postMessage").respond_with_handler(handler)
    _, conn = slack_connection(app_ctx, world, httpserver)
    with tenant_a(world):
        out = execute(conn, "post_message", {"channel": "C0123ABCD", "text": "hi"})
    assert out == {"ts": "1503435957.000100", "channel": "C0123ABCD"}
    assert len(calls) == 2 and calls[1] - calls[0] >= 0.9, "waited as Retry-After asked"


def test_connector_slack_timeout_is_reported(app_ctx, world, httpserver):
    stalled = Stalls(0.8, POSTED)
    httpserver.expect_request("/api/chat.postMessage").respond_with_handler(stalled)
    _, conn = slack_connection(app_ctx, world, httpserver)
    began = time.monotonic()
    with tenant_a(world), pytest.raises(ActionFailed) as failure:
        execute(conn, "post_message", {"channel": "C1", "text": "hi"}, timeout=0.25)
    assert failure.value.reason == "timeout" and failure.value.retryable
    assert time.monotonic() - began < 0.8, "gave up before the app answered"
    stalled.wait()
    [called] = events(world, "connector.action_called")
    assert called.details["outcome"] == "timeout"


# --------------------------------------------------------------------------- OAuth2


def token_set(access="xoxb-new-access", refresh="xoxe-1-new-refresh"):
    """What oauth.v2.access answers (token rotation on)."""
    return {"ok": True, "app_id": "A0KRD7HC3", "authed_user": {"id": "U1234"},
            "scope": "chat:write,users:read,users:read.email", "token_type": "bot",
            "access_token": access, "bot_user_id": "U0KRQLJ9H", "refresh_token": refresh,
            "expires_in": 43200, "team": {"name": "Acme", "id": "T9TK3CUKW"},
            "enterprise": None, "is_enterprise_install": False}


def test_connector_slack_oauth_state_is_bound_to_the_session(app, world, httpserver):
    exchanges: list[tuple[dict[str, str], str]] = []

    def token_endpoint(request: Request) -> Response:
        exchanges.append((dict(request.form), request.headers.get("Authorization", "")))
        return json_response(token_set(access=BOT_TOKEN))

    httpserver.expect_request("/api/oauth.v2.access", method="POST") \
        .respond_with_handler(token_endpoint)
    httpserver.expect_request("/api/chat.postMessage",
                              headers={"Authorization": f"Bearer {BOT_TOKEN}"}) \
        .respond_with_json(POSTED)
    admin, conn = connect(
        app, world, "slack", base_url=httpserver.url_for("/api"),
        credentials={"client_id": "3336676.569200954261", "client_secret": CLIENT_SECRET},
        settings={"authorize_url": httpserver.url_for("/oauth/v2/authorize"),
                  "token_url": httpserver.url_for("/api/oauth.v2.access")},
        secrets=(CLIENT_SECRET,))
    assert admin.get(f"/connections/{conn}").get_json()["status"] == "pending"

    r = admin.post(f"/connections/{conn}/authorize")
    assert r.status_code == 200, r.get_json()
    url = r.get_json()["authorize_url"]
    assert url.startswith(httpserver.url_for("/oauth/v2/authorize") + "?")
    asked = query_of(url)
    assert asked["client_id"] == "3336676.569200954261"
    assert asked["response_type"] == "code"
    assert asked["scope"] == "chat:write,users:read,users:read.email"
    assert urlsplit(asked["redirect_uri"]).path == "/oauth/callback"
    state = asked["state"]
    assert len(state) >= 20

    # The same person signed in elsewhere, and another admin: neither session asked.
    for thief in (as_user(app, world, "a_admin"), as_user(app, world, "a_owner")):
        r = thief.client.get(f"/oauth/callback?code=stolen-code&state={state}")
        assert r.status_code == 400
    assert exchanges == [], "a foreign state never reaches the token endpoint"
    r = admin.client.get("/oauth/callback?code=some-code&state=made-up-state")
    assert r.status_code == 400 and exchanges == []

    r = admin.client.get(f"/oauth/callback?code=4724469134.4644010092847.232b4e&state={state}")
    assert r.status_code == 302, r.get_data(as_text=True)
    [(form, client_auth)] = exchanges
    assert form["grant_type"] == "authorization_code"
    assert form["code"] == "4724469134.4644010092847.232b4e"
    assert form["redirect_uri"] == asked["redirect_uri"]
    assert client_auth == "Basic " + base64.b64encode(
        f"3336676.569200954261:{CLIENT_SECRET}".encode()).decode()
    # a state is good once
    r = admin.client.get(f"/oauth/callback?code=again&state={state}")
    assert r.status_code == 400 and len(exchanges) == 1

    shown = admin.get(f"/connections/{conn}")
    assert shown.get_json()["status"] == "active"
    credential = shown.get_json()["credential_id"]
    for path in (f"/connections/{conn}", "/connections", f"/credentials/{credential}",
                 "/credentials"):
        text = admin.get(path).get_data(as_text=True)
        assert BOT_TOKEN not in text and "xoxe-1-new-refresh" not in text, path
        assert CLIENT_SECRET not in text, path
    assert [e.action for e in events(world, "connection.authorized")] == \
        ["connection.authorized"]

    r = admin.post(f"/connections/{conn}/actions/post_message",
                   json={"input": {"channel": "C0123ABCD", "text": "Deploy finished"}})
    assert r.status_code == 200, r.get_json()


def test_connector_slack_expired_token_is_refreshed_once_while_10_calls_race(
        app, world, httpserver):
    refreshes: list[dict[str, str]] = []
    seen_tokens: list[str] = []

    def token_endpoint(request: Request) -> Response:
        refreshes.append(dict(request.form))
        time.sleep(0.3)  # a slow token endpoint widens the race
        return json_response(token_set())

    def post_message(request: Request) -> Response:
        seen_tokens.append(request.headers.get("Authorization", ""))
        return json_response({**POSTED, "ts": f"1503435957.{len(seen_tokens):06d}"})

    httpserver.expect_request("/api/oauth.v2.access", method="POST") \
        .respond_with_handler(token_endpoint)
    httpserver.expect_request("/api/chat.postMessage").respond_with_handler(post_message)
    admin, conn = slack_connection(app, world, httpserver, token="xoxb-expired-access",
                                   refresh_token="xoxe-1-old-refresh",
                                   expires_at="2020-01-01T00:00:00+00:00")
    tenant = world.tenants["a"].id
    start = threading.Barrier(10)
    outcomes: list[object] = []

    def call(i: int) -> None:
        from overture.platform.db import scoped_to

        with app.app_context(), scoped_to(tenant):
            start.wait()
            try:
                outcomes.append(execute(conn, "post_message",
                                        {"channel": "C0123ABCD", "text": f"call {i}"}))
            except Exception as exc:
                outcomes.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert len(outcomes) == 10
    assert len(refreshes) == 1, "exactly one caller refreshed"
    assert refreshes[0]["grant_type"] == "refresh_token"
    assert refreshes[0]["refresh_token"] == "xoxe-1-old-refresh"
    assert seen_tokens == ["Bearer xoxb-new-access"] * 10
    assert len(events(world, "connection.token_refreshed")) == 1

    # The new token set is sealed (rotated refresh token included); later calls reuse it.
    with tenant_a(world):
        execute(conn, "post_message", {"channel": "C0123ABCD", "text": "later"})
    assert len(refreshes) == 1 and seen_tokens[-1] == "Bearer xoxb-new-access"
    text = admin.get(f"/connections/{conn}").get_data(as_text=True)
    assert "xoxb-new-access" not in text and "xoxe-1-new-refresh" not in text
