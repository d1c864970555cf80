"""Notion against a local fake: Bearer secret and `Notion-Version`, page bodies with
rich text and paragraph blocks, database schemas, Notion's error objects."""

from __future__ import annotations

import time
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from overture.connectors.errors import ActionFailed
from overture.platform.errors import ValidationFailed
from tests.connector_library_support import (
    Stall,
    ThrottledOnce,
    call,
    connect,
    json_response,
    settle,
)

SECRET = "secret_8bYwKk3V0000000000000000000000000000000"
PARENT = "59833787-2cf9-4fdf-8782-e53db20768a5"
DATABASE = "d9824bdc84454327be8b5b47500af6ce"
PAGE_ID = "7f1f5a7e-3c3d-4b8e-9a2a-6c1f0b7a0d11"


@pytest.fixture(autouse=True)
def _local_fake(monkeypatch, httpserver):
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")
    settle(httpserver)


def notion_error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"object": "error", "status": status, "code": code, "message": message}


def page_created(request: Request) -> Response:
    if request.headers.get("Authorization") != f"Bearer {SECRET}":
        return json_response(notion_error(401, "unauthorized", "API token is invalid."), 401)
    if request.headers.get("Notion-Version") != "2022-06-28":
        return json_response(notion_error(400, "missing_version",
                                          "Notion-Version header failed validation"), 400)
    return json_response({"object": "page", "id": PAGE_ID,
                          "url": "https://www.notion.so/Launch-plan-7f1f5a7e3c3d",
                          "parent": request.get_json()["parent"]})


DATABASE_SCHEMA = {"object": "database", "id": DATABASE, "properties": {
    "Name": {"id": "title", "name": "Name", "type": "title", "title": {}},
    "Score": {"id": "a%3Ab", "name": "Score", "type": "number", "number": {"format": "number"}},
    "Done": {"id": "c%3Ad", "name": "Done", "type": "checkbox", "checkbox": {}},
    "Stage": {"id": "e%3Af", "name": "Stage", "type": "select", "select": {"options": []}},
    "Tags": {"id": "g%3Ah", "name": "Tags", "type": "multi_select",
             "multi_select": {"options": []}},
    "Due": {"id": "i%3Aj", "name": "Due", "type": "date", "date": {}},
    "Created": {"id": "k%3Al", "name": "Created", "type": "created_time", "created_time": {}},
}}


def notion_connection(app, world, httpserver, secret: str = SECRET):
    return connect(app, world, "notion", httpserver.url_for("/v1"), {"api_key": secret})


def text(content: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"content": content}}]


def test_connector_notion_create_page_happy_path(app, world, httpserver):
    httpserver.expect_request("/v1/pages", method="POST").respond_with_handler(page_created)
    admin, conn = notion_connection(app, world, httpserver)
    r = admin.post(f"/connections/{conn}/actions/create_page", json={"input": {
        "parent_page_id": PARENT, "title": "Launch plan",
        "content": "Goals for the launch.\n\nOwners: Ana, Ben."}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["output"] == {"id": PAGE_ID,
                                      "url": "https://www.notion.so/Launch-plan-7f1f5a7e3c3d"}
    [(request, _)] = httpserver.log
    assert (request.method, request.path) == ("POST", "/v1/pages")
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert request.headers["Notion-Version"] == "2022-06-28"
    assert request.get_json() == {
        "parent": {"page_id": PARENT},
        "properties": {"title": {"title": text("Launch plan")}},
        "children": [
            {"object": "block", "type": "paragraph",
             "paragraph": {"rich_text": text("Goals for the launch.")}},
            {"object": "block", "type": "paragraph",
             "paragraph": {"rich_text": text("Owners: Ana, Ben.")}}]}


def test_connector_notion_long_content_is_appended_in_batches(app_ctx, world, httpserver):
    httpserver.expect_request("/v1/pages", method="POST").respond_with_handler(page_created)
    httpserver.expect_request(f"/v1/blocks/{PAGE_ID}/children", method="PATCH"
                              ).respond_with_json({"object": "list", "results": []})
    _, conn = notion_connection(app_ctx, world, httpserver)
    long_paragraph = "x" * 2500
    content = "\n\n".join([long_paragraph] + [f"line {n}" for n in range(1, 150)])
    call(world, conn, "create_page", {"parent_page_id": PARENT, "title": "Log",
                                      "content": content})
    (made, _), (appended, _) = httpserver.log
    children = made.get_json()["children"]
    assert len(children) == 100
    assert children[0]["paragraph"]["rich_text"] == text("x" * 2000) + text("x" * 500)
    rest = appended.get_json()["children"]
    assert [b["paragraph"]["rich_text"][0]["text"]["content"] for b in rest] == \
        [f"line {n}" for n in range(100, 150)]
    assert appended.headers["Notion-Version"] == "2022-06-28"


def test_connector_notion_add_database_row_types_values_by_schema(app_ctx, world, httpserver):
    httpserver.expect_request(f"/v1/databases/{DATABASE}", method="GET"
                              ).respond_with_json(DATABASE_SCHEMA)
    httpserver.expect_request("/v1/pages", method="POST").respond_with_handler(page_created)
    _, conn = notion_connection(app_ctx, world, httpserver)
    out = call(world, conn, "add_database_row", {
        "database_id": DATABASE,
        "values": {"Name": "Acme renewal", "Score": 8.5, "Done": False, "Stage": "Proposal",
                   "Tags": "enterprise, q3", "Due": "2025-09-30"},
        "properties": {"Owner": {"people": [{"id": "u-1"}]}}})
    assert out["id"] == PAGE_ID
    (schema, _), (row, _) = httpserver.log
    assert (schema.method, schema.path) == ("GET", f"/v1/databases/{DATABASE}")
    assert schema.headers["Authorization"] == f"Bearer {SECRET}"
    assert row.get_json() == {"parent": {"database_id": DATABASE}, "properties": {
        "Name": {"title": text("Acme renewal")}, "Score": {"number": 8.5},
        "Done": {"checkbox": False}, "Stage": {"select": {"name": "Proposal"}},
        "Tags": {"multi_select": [{"name": "enterprise"}, {"name": "q3"}]},
        "Due": {"date": {"start": "2025-09-30"}}, "Owner": {"people": [{"id": "u-1"}]}}}

    httpserver.clear_log()
    fields = []
    for values in ({"Nope": 1}, {"Score": "high"}, {"Created": "2025-01-01"}):
        with pytest.raises(ValidationFailed) as invalid:
            call(world, conn, "add_database_row", {"database_id": DATABASE, "values": values})
        fields.append(invalid.value.errors[0]["field"])
    assert fields == ["input.values.Nope", "input.values.Score", "input.values.Created"]
    assert all(r.method == "GET" for r, _ in httpserver.log), "no row was added"


def test_connector_notion_auth_failure(app, world, httpserver):
    httpserver.expect_request("/v1/pages", method="POST").respond_with_handler(page_created)
    httpserver.expect_request("/v1/users/me").respond_with_json(
        notion_error(401, "unauthorized", "API token is invalid."), status=401)
    admin, conn = notion_connection(app, world, httpserver, secret="secret_revoked")
    r = admin.post(f"/connections/{conn}/actions/create_page",
                   json={"input": {"parent_page_id": PARENT, "title": "x"}})
    assert r.status_code == 502
    problem = r.get_json()
    assert problem["reason"] == "auth_failed"
    assert problem["body"] == notion_error(401, "unauthorized", "API token is invalid.")
    assert admin.post(f"/connections/{conn}/test").get_json()["reason"] == "auth_failed"


def test_connector_notion_validation_error_names_the_field(app, world, httpserver):
    admin, conn = notion_connection(app, world, httpserver)
    for action, input, field in [
        ("create_page", {"parent_page_id": "not-an-id", "title": "x"}, "input.parent_page_id"),
        ("create_page", {"parent_page_id": PARENT}, "input.title"),
        ("add_database_row", {"values": {"Name": "x"}}, "input.database_id"),
        ("add_database_row", {"database_id": DATABASE}, "input.values"),
    ]:
        r = admin.post(f"/connections/{conn}/actions/{action}", json={"input": input})
        assert r.status_code == 422, (input, r.get_json())
        assert r.get_json()["errors"][0]["field"] == field
    assert len(httpserver.log) == 0


def test_connector_notion_429_with_retry_after_then_success(app_ctx, world, httpserver):
    throttle = ThrottledOnce(notion_error(429, "rate_limited", "You have been rate limited. "
                                          "Please try again in a few minutes."), page_created)
    httpserver.expect_request("/v1/pages", method="POST").respond_with_handler(throttle)
    _, conn = notion_connection(app_ctx, world, httpserver)
    out = call(world, conn, "create_page", {"parent_page_id": PARENT, "title": "Retry"})
    assert out["id"] == PAGE_ID
    assert len(throttle.seen) == 2 and throttle.waited >= 0.9, "waited as Retry-After asked"


def test_connector_notion_timeout(app_ctx, world, httpserver):
    stall = Stall()
    httpserver.expect_request("/v1/pages").respond_with_handler(stall)
    _, conn = notion_connection(app_ctx, world, httpserver)
    started = time.monotonic()
    with pytest.raises(ActionFailed) as failure:
        call(world, conn, "create_page", {"parent_page_id": PARENT, "title": "x"}, timeout=0.3)
    assert failure.value.reason == "timeout"
    assert time.monotonic() - started < 2
    stall.finish(httpserver)
