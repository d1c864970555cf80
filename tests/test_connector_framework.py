"""The connector framework: registry, connections, one way to call an action, the
outbound client's retries and SSRF refusals (`-k connector`)."""

from __future__ import annotations

import json
import time

import pytest
from werkzeug.wrappers import Response

from overture.connectors.errors import ActionFailed
from overture.connectors.execute import execute
from overture.platform import audit
from overture.platform.db import scoped_to
from overture.platform.http import BlockedDestination, check_destination, request
from tests.support import as_user


@pytest.fixture
def allow_loopback(monkeypatch):
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/", "http://2130706433/", "http://0x7f.1/", "http://[::ffff:127.0.0.1]/",
    "http://100.64.0.1/", "http://localhost/", "file:///etc/passwd", "gopher://example.com/",
])
def test_connector_ssrf_refuses_private_and_odd_destinations(url, monkeypatch):
    monkeypatch.delenv("OVERTURE_OUTBOUND_ALLOWLIST", raising=False)
    with pytest.raises(BlockedDestination):
        check_destination(url)


def test_connector_ssrf_rechecks_every_redirect_hop(httpserver, allow_loopback):
    httpserver.expect_request("/hop").respond_with_response(
        Response(status=302, headers={"Location": "http://10.0.0.1/internal"}))
    httpserver.expect_request("/hop6").respond_with_response(
        Response(status=307, headers={"Location": "http://169.254.169.254/latest"}))
    with pytest.raises(BlockedDestination, match=r"10\.0\.0\.1"):
        request("GET", httpserver.url_for("/hop"))
    with pytest.raises(BlockedDestination, match=r"169\.254\.169\.254"):
        request("GET", httpserver.url_for("/hop6"))


def test_connector_registry_lists_connectors_with_schemas(app, world):
    caller = as_user(app, world, "a_builder")
    items = caller.get("/connectors").get_json()["items"]
    github = next(c for c in items if c["key"] == "github")
    create = next(a for a in github["actions"] if a["key"] == "create_issue")
    assert create["input_schema"]["required"] == ["owner", "repo", "title"]
    assert create["side_effects"] is True
    assert caller.get("/connectors/github").get_json()["auth"]["kind"] == "api_key"
    assert caller.get("/connectors/nope").status_code == 404


def github_connection(app, world, server_url, token="ghp_secret_token_123"):
    admin = as_user(app, world, "a_admin")
    r = admin.post("/connections", json={"connector_key": "github", "name": "gh",
                                         "credentials": {"api_key": token},
                                         "base_url": server_url})
    assert r.status_code == 201, r.get_json()
    assert token not in r.get_data(as_text=True)
    return admin, r.get_json()["id"]


def test_connector_github_happy_path_through_the_api(app, world, httpserver, allow_loopback):
    httpserver.expect_request(
        "/repos/acme/site/issues", method="POST",
        headers={"Authorization": "Bearer ghp_secret_token_123"},
        json={"title": "Broken link", "labels": ["bug"]},
    ).respond_with_json({"number": 7, "id": 99, "html_url": "https://gh/acme/site/issues/7",
                         "state": "open"}, status=201)
    admin, conn = github_connection(app, world, httpserver.url_for("/"))
    r = admin.post(f"/connections/{conn}/actions/create_issue",
                   json={"input": {"owner": "acme", "repo": "site", "title": "Broken link",
                                   "labels": ["bug"]}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["output"] == {"number": 7, "id": 99, "state": "open",
                                      "url": "https://gh/acme/site/issues/7"}
    with scoped_to(world.tenants["a"].id):
        [called] = audit.list_events(audit.EventFilter(action_prefix="connector."), None, 10)[0]
        used = audit.list_events(audit.EventFilter(action_prefix="credential.used"), None, 10)[0]
    assert called.details["outcome"] == "ok"
    assert called.details["input_digest"].startswith("sha256:")
    assert "ghp_secret" not in json.dumps(called.details)
    assert used and used[0].details["purpose"] == "github.create_issue"


def test_connector_validation_error_names_the_field(app, world, httpserver, allow_loopback):
    admin, conn = github_connection(app, world, httpserver.url_for("/"))
    r = admin.post(f"/connections/{conn}/actions/create_issue",
                   json={"input": {"owner": "acme", "repo": "site"}})
    assert r.status_code == 422
    assert r.get_json()["errors"][0]["field"] == "input.title"
    assert len(httpserver.log) == 0


def test_connector_auth_failure_is_clear(app, world, httpserver, allow_loopback):
    httpserver.expect_request("/user").respond_with_json({"message": "Bad credentials"},
                                                         status=401)
    admin, conn = github_connection(app, world, httpserver.url_for("/"))
    r = admin.post(f"/connections/{conn}/test")
    assert r.status_code == 200
    assert r.get_json() == {"ok": False, "reason": "auth_failed",
                            "detail": "the app refused the credentials (401)"}


def test_connector_429_with_retry_after_then_success(app_ctx, world, httpserver,
                                                     allow_loopback):
    calls = []

    def handler(req):
        calls.append(time.monotonic())
        if len(calls) == 1:
            return Response(json.dumps({"message": "slow down"}), status=429,
                            headers={"Retry-After": "1"}, content_type="application/json")
        return Response(json.dumps({"id": 1, "html_url": "u"}), status=201,
                        content_type="application/json")

    httpserver.expect_request("/repos/a/b/issues/3/comments").respond_with_handler(handler)
    _, conn = github_connection(app_ctx, world, httpserver.url_for("/"))
    with scoped_to(world.tenants["a"].id):
        out = execute(conn, "comment", {"owner": "a", "repo": "b", "issue_number": 3,
                                        "body": "hi"})
    assert out == {"id": 1, "url": "u"}
    assert len(calls) == 2 and calls[1] - calls[0] >= 0.9, "waited as Retry-After asked"


def test_connector_timeout_is_reported(app_ctx, world, httpserver, allow_loopback):
    httpserver.expect_request("/user").respond_with_handler(
        lambda req: (time.sleep(2), Response("{}", content_type="application/json"))[1])
    _, conn = github_connection(app_ctx, world, httpserver.url_for("/"))
    from overture.connectors import registry
    from overture.connectors.execute import context_for
    from overture.connectors.models import Connection
    from overture.platform.db import db

    with scoped_to(world.tenants["a"].id):
        connection = db.session.get(Connection, conn)
        ctx = context_for(connection, registry.get("github"), "test", timeout=0.5)
        with pytest.raises(ActionFailed) as failure:
            ctx.connector.test(ctx)
    assert failure.value.reason == "timeout"
    deadline = time.monotonic() + 5  # let the slow answer finish before the next test
    while not httpserver.log and time.monotonic() < deadline:
        time.sleep(0.05)


def test_connector_connections_are_tenant_scoped(app, world, httpserver, allow_loopback):
    _, conn = github_connection(app, world, httpserver.url_for("/"))
    other = as_user(app, world, "b_admin")
    assert other.get(f"/connections/{conn}").status_code == 404
    assert other.post(f"/connections/{conn}/actions/comment", json={"input": {}}
                      ).status_code == 404
    assert conn not in other.get("/connections").get_data(as_text=True)
    viewer = as_user(app, world, "a_viewer")
    assert viewer.post("/connections", json={"connector_key": "github", "name": "x",
                                             "credentials": {"api_key": "k"}}).status_code == 403


def test_connector_per_connection_rate_limit(app_ctx, world, httpserver, allow_loopback,
                                             monkeypatch):
    from overture.connectors import client

    monkeypatch.setattr(client, "MAX_THROTTLE_WAIT", 0.4)
    httpserver.expect_request("/limited/user").respond_with_json({"login": "bot"})
    admin = as_user(app_ctx, world, "a_admin")
    r = admin.post("/connections", json={"connector_key": "github", "name": "limited",
                                         "credentials": {"api_key": "k"},
                                         "base_url": httpserver.url_for("/limited/"),
                                         "rate_limit": "2 per minute"})
    assert r.status_code == 201, r.get_json()
    conn = r.get_json()["id"]
    bad = admin.patch(f"/connections/{conn}", json={"rate_limit": "fast please"})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "rate_limit"
    results = [admin.post(f"/connections/{conn}/test").get_json() for _ in range(3)]
    assert [x["ok"] for x in results] == [True, True, False]
    assert results[2]["reason"] == "rate_limited"
    reached = [req for req, _ in httpserver.log if req.path == "/limited/user"]
    assert len(reached) == 2, "the third call never reached the app"
