"""The MCP SDK's side of `POST /mcp` (web/mcp_server.py says how it is served): an SDK
server whose handlers call the service, and one request run through the SDK's
Streamable HTTP handling inside `anyio.run`. Imported at a process's first MCP call."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import mcp_types as types
from flask import request
from mcp.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from overture.orchestration.mcp import exposed
from overture.platform.errors import NotFound

Message = dict[str, Any]


def server(user_id: Any) -> Server[Any]:
    """An SDK server for this request, its handlers bound to the caller's workspace (the
    request's tenant scope, which the event loop's tasks inherit)."""

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[
            types.Tool(name=t.name, title=t.title, description=t.description,
                       input_schema=t.input_schema) for t in exposed.tools()])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            outcome = exposed.call(params.name, params.arguments, user_id)
        except NotFound as missing:
            return _result({"error": missing.detail}, error=True)
        if outcome.error is not None:
            return _result({"error": outcome.error, **outcome.details}, error=True)
        return _result(outcome.value, error=False)

    async def list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[])  # runs are read by the URI a call gave

    async def read_resource(ctx: Any, params: types.ReadResourceRequestParams
                            ) -> types.ReadResourceResult:
        state = exposed.run_of_uri(str(params.uri))
        return types.ReadResourceResult(contents=[types.TextResourceContents(
            uri=str(params.uri), mime_type="application/json", text=json.dumps(state,
                                                                              default=str))])

    return Server("overture", version="1", on_list_tools=list_tools, on_call_tool=call_tool,
                  on_list_resources=list_resources, on_read_resource=read_resource)


def _result(value: Any, error: bool) -> types.CallToolResult:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    structured = value if isinstance(value, dict) else {"result": value}
    return types.CallToolResult(content=[types.TextContent(text=text)],
                                structured_content=structured, is_error=error)


def serve_once(server: Server[Any], body: bytes, max_body: int
               ) -> tuple[int, list[tuple[str, str]], bytes]:
    """The SDK's Streamable HTTP handling of this one request, as status, headers and
    body (see the module's docstring)."""
    answer: dict[str, Any] = {"status": 500, "headers": [], "body": b""}

    async def main() -> None:
        manager = StreamableHTTPSessionManager(
            server, json_response=True, stateless=True, max_request_body_size=max_body,
            # The key authenticates every call; Host is checked by the app's own rules.
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        async with manager.run():
            await manager.handle_request(_scope(), _receiver(body), _sender(answer))

    anyio.run(main)
    return answer["status"], answer["headers"], answer["body"]


def _scope() -> Message:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": request.method, "scheme": request.scheme, "path": request.path,
            "raw_path": request.path.encode(), "query_string": request.query_string,
            "root_path": "", "server": (request.host, None), "client": (request.remote_addr, 0),
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in request.headers.items()]}


def _receiver(body: bytes) -> Callable[[], Awaitable[Message]]:
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()  # the client stays connected until we answer
        raise AssertionError("unreachable")

    return receive


def _sender(answer: dict[str, Any]) -> Callable[[Message], Awaitable[None]]:
    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = [(k.decode("latin-1"), v.decode("latin-1"))
                                 for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    return send
