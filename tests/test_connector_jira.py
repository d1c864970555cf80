"""Jira Cloud REST v3 against a local fake: basic auth with email and API token,
Atlassian Document Format bodies, transitions looked up by name, Jira error bodies."""

from __future__ import annotations

import json
import time

import pytest
from werkzeug.wrappers import Request, Response

from overture.connectors.context import base_url_for
from overture.connectors.errors import ActionFailed
from overture.connectors.library.jira import CONNECTOR, adf
from tests.connector_library_support import (
    Stall,
    ThrottledOnce,
    basic,
    call,
    connect,
    json_response,
    settle,
)

EMAIL, TOKEN = "ops@acme.example", "ATATT3xFfGF0-jira-api-token"
API = "/rest/api/3"
TRANSITIONS = {"expand": "transitions", "transitions": [
    {"id": "11", "name": "To Do", "to": {"id": "10000", "name": "To Do"}},
    {"id": "21", "name": "Start work", "to": {"id": "3", "name": "In Progress"}},
    {"id": "31", "name": "Done", "to": {"id": "10001", "name": "Done"}},
]}


@pytest.fixture(autouse=True)
def _local_fake(monkeypatch, httpserver):
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")
    settle(httpserver)


def jira_connection(app, world, httpserver, token: str = TOKEN):
    return connect(app, world, "jira", httpserver.url_for(API),
                   {"username": EMAIL, "password": token}, settings={"site": "acme"})


def created(request: Request) -> Response:
    if request.headers.get("Authorization") != basic(EMAIL, TOKEN):
        return Response("Client must be authenticated to access this resource.", status=401,
                        content_type="text/plain")
    return json_response({"id": "10000", "key": "OPS-24",
                          "self": "https://acme.atlassian.net/rest/api/3/issue/10000"}, 201)


def test_connector_jira_create_issue_happy_path(app, world, httpserver):
    httpserver.expect_request(f"{API}/issue", method="POST").respond_with_handler(created)
    admin, conn = jira_connection(app, world, httpserver)
    r = admin.post(f"/connections/{conn}/actions/create_issue", json={"input": {
        "project_key": "OPS", "summary": "Checkout is down", "issue_type": "Bug",
        "description": "Customers see a 500.\nSince 09:00.\n\nSee the status page.",
        "labels": ["incident"], "priority": "High"}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["output"] == {"id": "10000", "key": "OPS-24",
                                      "url": "https://acme.atlassian.net/browse/OPS-24"}
    [(request, _)] = httpserver.log
    assert (request.method, request.path) == ("POST", f"{API}/issue")
    assert request.headers["Authorization"] == basic(EMAIL, TOKEN)
    assert request.get_json() == {"fields": {
        "project": {"key": "OPS"}, "summary": "Checkout is down", "issuetype": {"name": "Bug"},
        "labels": ["incident"], "priority": {"name": "High"},
        "description": {"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [
                {"type": "text", "text": "Customers see a 500."}, {"type": "hardBreak"},
                {"type": "text", "text": "Since 09:00."}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "See the status page."}]},
        ]}}}


def test_connector_jira_transition_by_name(app_ctx, world, httpserver):
    httpserver.expect_request(f"{API}/issue/OPS-24/transitions", method="GET"
                              ).respond_with_json(TRANSITIONS)
    httpserver.expect_request(f"{API}/issue/OPS-24/transitions", method="POST"
                              ).respond_with_data("", status=204)
    _, conn = jira_connection(app_ctx, world, httpserver)
    out = call(world, conn, "transition", {"issue": "OPS-24", "transition": "in progress",
                                           "comment": "Picked up by the on-call agent."})
    assert out == {"issue": "OPS-24", "transition_id": "21", "transition": "Start work",
                   "status": "In Progress"}
    (looked, _), (moved, _) = httpserver.log
    assert (looked.method, moved.method) == ("GET", "POST")
    assert moved.headers["Authorization"] == basic(EMAIL, TOKEN)
    assert moved.get_json() == {"transition": {"id": "21"}, "update": {"comment": [
        {"add": {"body": adf("Picked up by the on-call agent.")}}]}}

    with pytest.raises(ActionFailed) as failure:
        call(world, conn, "transition", {"issue": "OPS-24", "transition": "Reopen"})
    assert failure.value.reason == "not_found"
    assert "'To Do', 'Start work', 'Done'" in failure.value.detail
    assert [r.method for r, _ in httpserver.log] == ["GET", "POST", "GET"]


def test_connector_jira_base_url_comes_from_the_site():
    assert base_url_for(CONNECTOR, None, {"site": "acme"}) == \
        "https://acme.atlassian.net/rest/api/3"
    with pytest.raises(ActionFailed) as failure:
        base_url_for(CONNECTOR, None, {})
    assert failure.value.reason == "misconfigured"


def test_connector_jira_auth_failure(app, world, httpserver):
    httpserver.expect_request(f"{API}/issue", method="POST").respond_with_handler(created)
    httpserver.expect_request(f"{API}/myself").respond_with_data(
        "Client must be authenticated to access this resource.", status=401)
    admin, conn = jira_connection(app, world, httpserver, token="revoked-token")
    r = admin.post(f"/connections/{conn}/actions/create_issue",
                   json={"input": {"project_key": "OPS", "summary": "x"}})
    assert r.status_code == 502
    assert r.get_json()["reason"] == "auth_failed" and r.get_json()["http_status"] == 401
    assert "revoked-token" not in r.get_data(as_text=True)
    assert admin.post(f"/connections/{conn}/test").get_json() == {
        "ok": False, "reason": "auth_failed", "detail": "the app refused the credentials (401)"}


def test_connector_jira_field_errors_come_back(app_ctx, world, httpserver):
    httpserver.expect_request(f"{API}/issue", method="POST").respond_with_json(
        {"errorMessages": [], "errors": {"issuetype": "Specify a valid issue type"}},
        status=400)
    _, conn = jira_connection(app_ctx, world, httpserver)
    with pytest.raises(ActionFailed) as failure:
        call(world, conn, "create_issue", {"project_key": "OPS", "summary": "x",
                                           "issue_type": "Epic story"})
    assert failure.value.reason == "http_4xx"
    assert failure.value.extra["body"]["errors"] == {"issuetype": "Specify a valid issue type"}
    assert len(httpserver.log) == 1, "a 400 is not retried"


def test_connector_jira_validation_error_names_the_field(app, world, httpserver):
    admin, conn = jira_connection(app, world, httpserver)
    for action, input, field in [
        ("create_issue", {"project_key": "OPS"}, "input.summary"),
        ("create_issue", {"project_key": "not a key", "summary": "x"}, "input.project_key"),
        ("transition", {"issue": "OPS-24/../../x", "transition": "Done"}, "input.issue"),
        ("transition", {"issue": "OPS-24"}, "input.transition"),
    ]:
        r = admin.post(f"/connections/{conn}/actions/{action}", json={"input": input})
        assert r.status_code == 422, (input, r.get_json())
        assert r.get_json()["errors"][0]["field"] == field
    assert len(httpserver.log) == 0


def test_connector_jira_429_with_retry_after_then_success(app_ctx, world, httpserver):
    throttle = ThrottledOnce({"errorMessages": ["Rate limit exceeded."], "errors": {}}, created)
    httpserver.expect_request(f"{API}/issue", method="POST").respond_with_handler(throttle)
    _, conn = jira_connection(app_ctx, world, httpserver)
    out = call(world, conn, "create_issue", {"project_key": "OPS", "summary": "Retry me"})
    assert out["key"] == "OPS-24"
    assert len(throttle.seen) == 2 and throttle.waited >= 0.9, "waited as Retry-After asked"
    assert json.loads(throttle.seen[1][1].get_data())["fields"]["summary"] == "Retry me"


def test_connector_jira_timeout(app_ctx, world, httpserver):
    stall = Stall()
    httpserver.expect_request(f"{API}/issue/OPS-1/transitions").respond_with_handler(stall)
    _, conn = jira_connection(app_ctx, world, httpserver)
    started = time.monotonic()
    with pytest.raises(ActionFailed) as failure:
        call(world, conn, "transition", {"issue": "OPS-1", "transition": "Done"}, timeout=0.3)
    assert failure.value.reason == "timeout"
    assert time.monotonic() - started < 2
    stall.finish(httpserver)
