"""Acceptance 2 (issue 18): an agent uses a tool of an outside MCP server through an
`mcp` connection.

A real MCP server (the SDK's MCPServer over Streamable HTTP, under uvicorn on a free
loopback port) offers `add` and `wipe`; the agent's grants name only `add`. The agent
(scripted model) calls both: `add` runs on the server with the connection's token and
is audited with its input and a digest of its output, and metered as a connector call;
`wipe` is refused and never reaches the server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer
from sqlalchemy import select

from overture.billing.usage import UsageEvent
from overture.orchestration.agents import chat
from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to
from tests.agent_fakes import answer, create_agent, make_connection, scripted
from tests.connector_support import allow_loopback, free_port  # noqa: F401 (a fixture)

TOKEN = "mcp-token-7d1f"


class ToolServer:
    """An MCP server with two tools, which notes each call and each bearer it saw."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.bearers: set[str] = set()
        server = MCPServer("tools")

        @server.tool()
        def add(a: int, b: int) -> int:
            """Add two numbers."""
            self.calls.append(("add", {"a": a, "b": b}))
            return a + b

        @server.tool()
        def wipe(table: str) -> str:
            """Delete every row of a table."""
            self.calls.append(("wipe", {"table": table}))
            return "wiped"

        self.app = server.streamable_http_app(json_response=True, stateless_http=True)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.bearers.update(v.decode() for k, v in scope["headers"]
                                if k == b"authorization")
        await self.app(scope, receive, send)


@pytest.fixture
def tool_server(allow_loopback: None) -> Iterator[tuple[ToolServer, str]]:  # noqa: F811
    tools = ToolServer()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(tools, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    while not started.wait(0.05):
        if server.started:
            started.set()
    try:
        yield tools, f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_an_agent_calls_a_granted_mcp_tool_and_is_refused_another(world, tool_server):
    tools, url = tool_server
    make_connection(world, "mcp", "toolbox", {"bearer_token": TOKEN}, base_url=url)
    agent_id = create_agent(world, scripted(
        "calculator",
        {"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}},
                        {"name": "wipe", "arguments": {"table": "orders"}}]},
        {"answer": answer("2 + 3 = 5")},
        tools=[{"kind": "action", "ref": "toolbox/add"}]))

    with scoped_to(world.tenants["a"].id):
        reply = chat.send(chat.start(agent_id), "What is 2 + 3?")
        db.session.commit()
    assert reply.answer.output == "2 + 3 = 5"
    assert tools.calls == [("add", {"a": 2, "b": 3})]  # wipe never reached the server
    assert tools.bearers == {f"Bearer {TOKEN}"}

    with scoped_to(world.tenants["a"].id):
        called = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "connector.mcp_tool_called")).one()
        assert called.details["tool"] == "add"
        assert called.details["input"] == {"a": 2, "b": 3}
        assert called.details["output_digest"].startswith("sha256:")
        assert TOKEN not in str(called.details)
        refused = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "agent.tool_refused")).one()
        assert refused.details["tool"] == "wipe"
        metered = db.session.scalars(select(UsageEvent).where(
            UsageEvent.metric == "action_calls")).all()
        assert {e.dimension for e in metered} == {"mcp"}
        db.session.rollback()


def test_a_grant_naming_a_tool_the_server_lacks_is_a_setup_error(world, tool_server):
    _, url = tool_server
    make_connection(world, "mcp", "toolbox", {}, base_url=url)
    agent_id = create_agent(world, scripted("lost", {"answer": answer("x")},
                                            tools=[{"kind": "action", "ref": "toolbox/nope"}]))
    with scoped_to(world.tenants["a"].id), pytest.raises(Exception) as failed:
        chat.send(chat.start(agent_id), "hello")
    assert "has no tool 'nope'" in str(failed.value)


def test_the_outbound_guard_refuses_a_loopback_mcp_server(world, tool_server, monkeypatch):
    tools, url = tool_server
    make_connection(world, "mcp", "toolbox", {}, base_url=url)
    monkeypatch.delenv("OVERTURE_OUTBOUND_ALLOWLIST")
    agent_id = create_agent(world, scripted("blocked", {"answer": answer("x")},
                                            tools=[{"kind": "action", "ref": "toolbox/add"}]))
    with scoped_to(world.tenants["a"].id), pytest.raises(Exception) as failed:
        chat.send(chat.start(agent_id), "hello")
    assert "not allowed" in str(failed.value) or "blocked" in str(failed.value)
    assert tools.calls == [] and tools.bearers == set()
