"""The first two library connectors, GitHub and the generic HTTP request, held to the
same checks as the rest of the library: happy path, auth failure, validation error,
429 with Retry-After then success, timeout."""

from __future__ import annotations

import time

import pytest

from overture.connectors.errors import ActionFailed
from overture.connectors.execute import execute_unconnected
from overture.platform.db import scoped_to
from tests.connector_library_support import (
    Stall,
    ThrottledOnce,
    call,
    connect,
    json_response,
    settle,
)

GH_TOKEN = "ghp_basics0000000000000000000000000000"
HOOK_TOKEN = "hook-bearer-secret-0123"
BAD_CREDENTIALS = {"message": "Bad credentials", "documentation_url":
                   "https://docs.github.com/rest", "status": "401"}


@pytest.fixture(autouse=True)
def _local_fake(monkeypatch, httpserver):
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")
    settle(httpserver)


def github_connection(app, world, httpserver, token: str = GH_TOKEN):
    return connect(app, world, "github", httpserver.url_for("/"), {"api_key": token})


def http_connection(app, world, httpserver):
    return connect(app, world, "http", httpserver.url_for("/api"),
                   {"bearer_token": HOOK_TOKEN})


# --------------------------------------------------------------------------- GitHub


def test_connector_github_comment_happy_path(app, world, httpserver):
    httpserver.expect_request("/repos/acme/site/issues/7/comments", method="POST"
                              ).respond_with_json(
        {"id": 1296269, "html_url": "https://github.com/acme/site/issues/7#issuecomment-1",
         "body": "On it."}, status=201)
    admin, conn = github_connection(app, world, httpserver)
    r = admin.post(f"/connections/{conn}/actions/comment", json={"input": {
        "owner": "acme", "repo": "site", "issue_number": 7, "body": "On it."}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["output"] == {
        "id": 1296269, "url": "https://github.com/acme/site/issues/7#issuecomment-1"}
    [(request, _)] = httpserver.log
    assert (request.method, request.path) == ("POST", "/repos/acme/site/issues/7/comments")
    assert request.headers["Authorization"] == f"Bearer {GH_TOKEN}"
    assert request.headers["Accept"] == "application/vnd.github+json"
    assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert request.get_json() == {"body": "On it."}


def test_connector_github_auth_failure(app, world, httpserver):
    httpserver.expect_request("/repos/acme/site/issues", method="POST").respond_with_json(
        BAD_CREDENTIALS, status=401)
    admin, conn = github_connection(app, world, httpserver, token="ghp_revoked")
    r = admin.post(f"/connections/{conn}/actions/create_issue",
                   json={"input": {"owner": "acme", "repo": "site", "title": "x"}})
    assert r.status_code == 502
    assert r.get_json()["reason"] == "auth_failed"
    assert r.get_json()["body"]["message"] == "Bad credentials"
    assert "ghp_revoked" not in r.get_data(as_text=True)
    assert len(httpserver.log) == 1, "a refusal is not retried"


def test_connector_github_validation_error_names_the_field(app, world, httpserver):
    admin, conn = github_connection(app, world, httpserver)
    for action, input, field in [
        ("comment", {"owner": "acme", "repo": "site", "issue_number": 0, "body": "x"},
         "input.issue_number"),
        ("comment", {"owner": "acme", "repo": "site", "issue_number": 7}, "input.body"),
        ("create_issue", {"repo": "site", "title": "x"}, "input.owner"),
        ("create_issue", {"owner": "acme", "repo": "site", "title": "x", "labels": [1]},
         "input.labels.0"),
    ]:
        r = admin.post(f"/connections/{conn}/actions/{action}", json={"input": input})
        assert r.status_code == 422, (input, r.get_json())
        assert r.get_json()["errors"][0]["field"] == field
    assert len(httpserver.log) == 0


def test_connector_github_429_with_retry_after_then_success(app_ctx, world, httpserver):
    throttle = ThrottledOnce(
        {"message": "You have exceeded a secondary rate limit. Please wait a few minutes "
                    "before you try again.",
         "documentation_url": "https://docs.github.com/rest/overview/rate-limits"},
        lambda r: json_response({"number": 8, "id": 2, "html_url": "https://gh/8",
                                 "state": "open"}, 201))
    httpserver.expect_request("/repos/acme/site/issues", method="POST"
                              ).respond_with_handler(throttle)
    _, conn = github_connection(app_ctx, world, httpserver)
    out = call(world, conn, "create_issue", {"owner": "acme", "repo": "site", "title": "x"})
    assert out == {"number": 8, "id": 2, "url": "https://gh/8", "state": "open"}
    assert len(throttle.seen) == 2 and throttle.waited >= 0.9, "waited as Retry-After asked"


def test_connector_github_timeout(app_ctx, world, httpserver):
    stall = Stall()
    httpserver.expect_request("/repos/acme/site/issues/7/comments").respond_with_handler(stall)
    _, conn = github_connection(app_ctx, world, httpserver)
    started = time.monotonic()
    with pytest.raises(ActionFailed) as failure:
        call(world, conn, "comment", {"owner": "acme", "repo": "site", "issue_number": 7,
                                      "body": "x"}, timeout=0.3)
    assert failure.value.reason == "timeout"
    assert time.monotonic() - started < 2
    stall.finish(httpserver)


# --------------------------------------------------------------------------- HTTP request


def test_connector_http_request_happy_path(app_ctx, world, httpserver):
    httpserver.expect_request("/api/hooks/order", method="POST").respond_with_json(
        {"accepted": True}, status=202, headers={"X-Request-Id": "r-1"})
    _, conn = http_connection(app_ctx, world, httpserver)
    out = call(world, conn, "request", {
        "method": "POST", "url": "hooks/order", "json": {"order": 1001},
        "query": {"source": "overture", "n": 2}, "headers": {"X-Trace": "t-9"}},
        idempotency_key="ovt-step-1")
    assert out["status"] == 202 and out["body"] == {"accepted": True}
    assert out["headers"]["x-request-id"] == "r-1"
    [(request, _)] = httpserver.log
    assert (request.method, request.path) == ("POST", "/api/hooks/order")
    assert request.args.to_dict() == {"source": "overture", "n": "2"}
    assert request.headers["Authorization"] == f"Bearer {HOOK_TOKEN}"
    assert request.headers["Idempotency-Key"] == "ovt-step-1"
    assert request.headers["X-Trace"] == "t-9"
    assert request.get_json() == {"order": 1001}


def test_connector_http_request_without_a_connection(app_ctx, world, httpserver):
    httpserver.expect_request("/public", method="GET").respond_with_data("plain")
    with scoped_to(world.tenants["a"].id):
        out = execute_unconnected("http", "request", {"url": httpserver.url_for("/public")})
    assert out["status"] == 200 and out["body"] == "plain"
    [(request, _)] = httpserver.log
    assert "Authorization" not in request.headers


def test_connector_http_request_auth_failure(app, world, httpserver):
    httpserver.expect_request("/api/private").respond_with_json({"error": "invalid_token"},
                                                                status=401)
    admin, conn = http_connection(app, world, httpserver)
    r = admin.post(f"/connections/{conn}/actions/request", json={"input": {"url": "private"}})
    assert r.status_code == 502
    assert r.get_json()["reason"] == "auth_failed"
    assert HOOK_TOKEN not in r.get_data(as_text=True)
    r = admin.post(f"/connections/{conn}/actions/request",
                   json={"input": {"url": "private", "allow_client_errors": True}})
    assert r.status_code == 200
    assert r.get_json()["output"]["status"] == 401
    assert r.get_json()["output"]["body"] == {"error": "invalid_token"}


def test_connector_http_request_validation_error_names_the_field(app, world, httpserver):
    admin, conn = http_connection(app, world, httpserver)
    for input, field in [({"method": "FETCH", "url": "x"}, "input.method"),
                         ({"method": "GET"}, "input.url"),
                         ({"url": "x", "headers": {"X-N": 1}}, "input.headers.X-N")]:
        r = admin.post(f"/connections/{conn}/actions/request", json={"input": input})
        assert r.status_code == 422, (input, r.get_json())
        assert r.get_json()["errors"][0]["field"] == field
    assert len(httpserver.log) == 0


def test_connector_http_request_429_with_retry_after_then_success(app_ctx, world, httpserver):
    throttle = ThrottledOnce({"error": "slow down"}, {"ok": True})
    httpserver.expect_request("/api/limited").respond_with_handler(throttle)
    _, conn = http_connection(app_ctx, world, httpserver)
    out = call(world, conn, "request", {"url": "limited"})
    assert out["body"] == {"ok": True}
    assert len(throttle.seen) == 2 and throttle.waited >= 0.9, "waited as Retry-After asked"


def test_connector_http_request_timeout(app_ctx, world, httpserver):
    stall = Stall()
    httpserver.expect_request("/api/slow").respond_with_handler(stall)
    _, conn = http_connection(app_ctx, world, httpserver)
    started = time.monotonic()
    with pytest.raises(ActionFailed) as failure:
        call(world, conn, "request", {"url": "slow"}, timeout=0.3)
    assert failure.value.reason == "timeout"
    assert time.monotonic() - started < 2
    stall.finish(httpserver)
