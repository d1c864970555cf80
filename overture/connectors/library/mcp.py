"""MCP: the tools of an outside Model Context Protocol server (Streamable HTTP), for
agents. The connection's base URL is the server's endpoint (`https://host/mcp`); an
optional bearer token (sealed in the vault) goes in `Authorization`, or in the header
the connection names (`header`, a public field), sent as is.

An agent's grant names one tool: `{"kind": "action", "ref": "<connection>/<tool>"}`
(`orchestration/agents/tools.py` reads the server's list for its schema); only the
tools its grants name are offered to it.

Outbound rules. The SDK's client speaks httpx2 asynchronously; it is given the
platform's guarded async client (`platform.http.async_client`): every connection it
opens is resolved and checked by the outbound guard, and the client is locked to the
server's origin, so the token goes nowhere else (redirects included). A call has the
action's timeout as a whole (`anyio.fail_after`), one SSE event at most MAX_EVENT
bytes, and what it returns at most MAX_OUTPUT characters. Each call of a tool is
audited with its input and a digest of its output (`connector.mcp_tool_called`);
`execute` adds `connector.action_called` and the `action_calls` usage, dimension `mcp`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from overture.connectors.context import ActionContext
from overture.connectors.errors import ActionFailed, DestinationBlocked
from overture.connectors.execute import digest
from overture.connectors.spec import Action, Auth, Connector, Field, obj
from overture.platform import audit, http

MAX_EVENT = 1_000_000
MAX_OUTPUT = 200_000
T = TypeVar("T")

if TYPE_CHECKING:
    from mcp import ClientSession


def _headers(values: dict[str, Any]) -> dict[str, str]:
    token = values.get("bearer_token")
    if not token:
        return {}
    header = values.get("header") or "Authorization"
    return {header: f"Bearer {token}" if header == "Authorization" else str(token)}


def _run(ctx: ActionContext, work: Callable[[ClientSession], Awaitable[T]]) -> T:
    """`work` in a session with the connection's server, from synchronous code."""
    # The SDK (with Starlette, uvicorn and pydantic, ~50 MiB) is imported by the first
    # MCP call a process makes, not by every process that could make one.
    from mcp import ClientSession, MCPError
    from mcp.client.streamable_http import streamable_http_client

    if ctx.client.base_url is None:
        raise ActionFailed("misconfigured", "the connection has no server URL")
    url = ctx.client.base_url.rstrip("/")

    async def main() -> T:
        with anyio.fail_after(ctx.timeout):
            async with http.async_client(url, headers=ctx.client.headers,
                                         timeout=ctx.timeout) as client, \
                    streamable_http_client(url, http_client=client,
                                           max_sse_event_size=MAX_EVENT) as (read, write), \
                    ClientSession(read, write) as session:
                await session.initialize()
                return await work(session)

    try:
        return _in_own_loop(main)
    except TimeoutError as exc:
        raise ActionFailed("timeout", f"the MCP server did not answer within "
                                      f"{ctx.timeout:g}s") from exc
    except http.BlockedDestination as blocked:
        raise DestinationBlocked(blocked.detail) from blocked
    except MCPError as error:
        raise ActionFailed("mcp_error", str(error)[:500]) from error
    except BaseExceptionGroup as group:  # the SDK's task groups wrap what failed
        raise _first_failure(group) from group


def _first_failure(group: BaseExceptionGroup) -> ActionFailed:
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup) and leaf.exceptions:
        leaf = leaf.exceptions[0]
    if isinstance(leaf, http.BlockedDestination):
        return DestinationBlocked(leaf.detail)
    if isinstance(leaf, http.HTTPError | OSError):
        return ActionFailed("connection", f"cannot reach the MCP server: {leaf}"[:500])
    return ActionFailed("mcp_error", f"the MCP server failed: {leaf}"[:500])


def _in_own_loop(main: Callable[[], Awaitable[T]]) -> T:
    """anyio.run here, or in a thread of its own when this thread already runs a loop
    (an agent behind our own MCP server calling another server's tool)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(main)
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = anyio.run(main)
        except BaseException as exc:  # handed to the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=run, name="mcp-client")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def list_tools(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    async def work(session: ClientSession) -> Any:
        return (await session.list_tools()).tools

    return {"tools": [{"name": t.name, "description": t.description or "",
                       "input_schema": t.input_schema} for t in _run(ctx, work)]}


def call_tool(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    async def work(session: ClientSession) -> Any:
        return await session.call_tool(data["tool"], data.get("arguments") or {})

    result = _run(ctx, work)
    text = "\n".join(getattr(block, "text", "") for block in result.content)
    output = {"is_error": bool(result.is_error), "text": text[:MAX_OUTPUT],
              "structured": result.structured_content}
    if len(json.dumps(output, default=str)) > MAX_OUTPUT:
        output["structured"] = None  # the text stays, cut; a huge object does not
    audit.record("connector.mcp_tool_called", target_type="connection",
                 target_id=ctx.connection_id,
                 details={"server": http.origin_of(ctx.client.base_url or ""),
                          "tool": data["tool"], "input": data.get("arguments") or {},
                          "output_digest": digest(output), "is_error": output["is_error"]})
    return output


def check(ctx: ActionContext) -> str:
    tools = list_tools(ctx, {})["tools"]
    return f"the MCP server offers {len(tools)} tools"


CONNECTOR = Connector(
    key="mcp", name="MCP server",
    description="The tools of a Model Context Protocol server (Streamable HTTP), for agents.",
    icon="mcp", base_url=None, test=check, tags=("ai", "tools"),
    auth=Auth(kind="custom", headers=_headers, fields=(
        Field("bearer_token", secret=True, required=False,
              description="sent as 'Authorization: Bearer <token>', or in `header`"),
        Field("header", required=False,
              description="a header for the token instead of Authorization (sent as is)"))),
    actions=(
        Action(key="list_tools", name="List tools", description="The server's tools.",
               input_schema=obj({}),
               output_schema=obj({"tools": {"type": "array"}}), run=list_tools),
        Action(key="call_tool", name="Call a tool",
               description="Call one of the server's tools with its arguments.",
               input_schema=obj({"tool": {"type": "string", "minLength": 1, "maxLength": 200},
                                 "arguments": {"type": "object"}}, ["tool"]),
               output_schema=obj({"is_error": {"type": "boolean"}, "text": {"type": "string"},
                                  "structured": {}}),
               run=call_tool, side_effects=True),
    ),
)
