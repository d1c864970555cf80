"""Acceptance 1 (issue 18): a workspace's published workflows and agents are MCP tools.

The SDK's own client (Streamable HTTP) talks to the real app on a real port: A's key
lists and calls A's tools; bad input is a tool error naming the field; B's key sees
none of A's tools and cannot call them; no key or a wrong one is refused; each call is
in A's audit log and usage.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx2
import pytest
from mcp import MCPError
from sqlalchemy import select

from overture.billing.usage import UsageEvent
from overture.orchestration import workflows
from overture.orchestration.portal import publishing
from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to
from tests.engine_support import publish, running_workers, start, wait_for
from tests.live_server import serve
from tests.mcp_support import with_session
from tests.portal_support import set_up
from tests.support import make_key

QUOTE = {
    "input_schema": {"type": "object", "required": ["items"],
                     "properties": {"items": {"type": "integer", "minimum": 1}}},
    "steps": [{"id": "price", "type": "transform",
               "output": {"total": "{{ input.items * 5 }}"}}],
    "output": {"total": "{{ steps.price.total }}", "currency": "EUR"},
}


def publish_quote(world: Any) -> None:
    builder = world.users["a_builder"].id
    with scoped_to(world.tenants["a"].id, user_id=builder):
        workflow = workflows.create_workflow("quote", draft=QUOTE)
        workflows.publish(workflow, builder)
        publishing.set_workflow(workflow, publishing.Settings(
            published=True, label="Get a quote", description="Prices an order."), builder)
        db.session.commit()


@pytest.fixture
def served(app: Any, world: Any) -> Any:
    set_up(world)  # A publishes a refund workflow (it waits for an approval) and an agent
    publish_quote(world)
    with serve(app) as base:
        yield base + "/mcp"


def warm_up(world: Any) -> None:
    """A first run through the new worker, so its start-up is not in the MCP call's
    short wait."""
    tenant = world.tenants["a"].id
    wait_for(tenant, start(tenant, publish(tenant, {"steps": [
        {"id": "x", "type": "transform", "output": 1}]}, "warm-up")), timeout=120)


def tools_of(url: str, token: str) -> dict[str, Any]:
    async def work(session: Any) -> Any:
        return (await session.list_tools()).tools
    return {t.name: t for t in with_session(url, token, work)}


def call(url: str, token: str, name: str, arguments: dict[str, Any]) -> Any:
    async def work(session: Any) -> Any:
        return await session.call_tool(name, arguments)
    return with_session(url, token, work)


def test_a_key_lists_and_calls_its_workspaces_tools(app, world, settings, served):
    a_key = world.keys["a_admin"][1]
    tools = tools_of(served, a_key)
    assert set(tools) == {"request_a_refund", "help_desk", "get_a_quote"}
    assert tools["get_a_quote"].input_schema == QUOTE["input_schema"]
    assert tools["help_desk"].input_schema["required"] == ["message"]

    with running_workers(settings, processes=1, threads=2):
        warm_up(world)
        quote = call(served, a_key, "get_a_quote", {"items": 3})
        assert not quote.is_error
        assert quote.structured_content["status"] == "succeeded"
        assert quote.structured_content["output"]["currency"] == "EUR"
        assert str(quote.structured_content["output"]["total"]) == "15"

        # A run that waits for an approval answers with a resource to follow.
        refund = call(served, a_key, "request_a_refund", {"order": "1042", "reason": "late"})
        assert not refund.is_error
        uri = refund.structured_content["resource"]
        assert uri.startswith("overture://runs/")

        async def read(session: Any) -> Any:
            return await session.read_resource(uri)
        state = json.loads(with_session(served, a_key, read).contents[0].text)
        assert state["waiting_on"] == ["confirm"] and state["finished"] is False

    reply = call(served, a_key, "help_desk", {"message": "Where is my refund?"})
    assert not reply.is_error
    assert "3 to 5 days" in reply.structured_content["reply"]

    with scoped_to(world.tenants["a"].id):
        audited = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "mcp.tool_called")).all()
        metered = db.session.scalars(select(UsageEvent).where(
            UsageEvent.metric == "mcp_calls")).all()
        assert sorted(e.details["tool"] for e in audited) == [
            "get_a_quote", "help_desk", "request_a_refund"]
        assert all(e.actor_type == "api_key" for e in audited)
        assert sorted(e.dimension for e in metered) == ["agent", "workflow", "workflow"]
        db.session.rollback()


def test_bad_input_is_a_tool_error_naming_the_field(world, served):
    result = call(served, world.keys["a_admin"][1], "get_a_quote", {"items": "many"})
    assert result.is_error
    assert "input.items" in result.content[0].text
    with scoped_to(world.tenants["a"].id):
        event = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "mcp.tool_called")).one()
        assert event.details["outcome"] == "error"
        db.session.rollback()


def test_another_workspaces_key_sees_and_calls_nothing_of_a(world, served):
    b_key = world.keys["b_admin"][1]
    assert tools_of(served, b_key) == {}
    refused = call(served, b_key, "get_a_quote", {"items": 3})
    assert refused.is_error and "no tool 'get_a_quote'" in refused.content[0].text
    with scoped_to(world.tenants["a"].id):
        assert db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "mcp.tool_called")).all() == []
        db.session.rollback()


def test_no_key_a_wrong_key_or_a_key_without_the_scope_is_refused(world, served):
    def post(token: str | None) -> httpx2.Response:
        headers = {"Accept": "application/json, text/event-stream"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx2.post(served, headers=headers, json={
            "jsonrpc": "2.0", "id": 1, "method": "tools/list"})

    assert post(None).status_code == 401
    assert post("ovt_abcdefghijkm_wrong").status_code == 401
    _, no_mcp = make_key(world, "a_admin", "a", ["run.start", "workflow.read"])
    assert post(no_mcp).status_code == 403
    with pytest.raises(ExceptionGroup) as refused:  # the SDK's client gives up too
        tools_of(served, "ovt_abcdefghijkm_wrong")
    assert refused.group_contains(MCPError, match="error response")


def test_calls_spend_the_keys_api_allowance(app, world, monkeypatch):
    settings = app.extensions["overture.settings"]
    monkeypatch.setitem(app.extensions, "overture.settings",
                        dataclasses.replace(settings, api_rate_limit="2 per minute"))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {world.keys['a_admin'][1]}",
               "Accept": "application/json, text/event-stream"}
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    answers = [client.post("/mcp", headers=headers, json=ping).status_code for _ in range(3)]
    assert answers == [200, 200, 429]
    other = {**headers, "Authorization": f"Bearer {world.keys['b_admin'][1]}"}
    assert client.post("/mcp", headers=other, json=ping).status_code == 200
