"""The workspace's MCP server: `POST /mcp` (Streamable HTTP), authenticated with a
workspace API key (Bearer) holding the `mcp` scope; the key names the workspace.

How it is served. The SDK's server machinery is ASGI (Starlette); this app is WSGI,
run by gunicorn's sync workers. Each WSGI request is handed, whole, to the SDK's own
`StreamableHTTPSessionManager` in stateless mode with JSON responses, inside
`anyio.run` on the request's thread: one short event loop per request, nothing shared
between requests or workers, no session to route back to the same worker (stateless),
no stream held open (JSON, not SSE). The SDK does the protocol (initialize, version
negotiation, JSON-RPC framing, validation through its types); the handlers below are
the only part of ours, and they call the service (`orchestration.mcp.exposed`).
A bridging package (a2wsgi) would also need a loop thread per worker for no gain here.
The SDK side lives in web/mcp_bridge.py, imported at the first call.

Authentication, the per-key rate limit and the audit actor happen before the bridge,
as for every API call (`web.auth.current_access`): no key or a bad one is a 401
problem, a key without the `mcp` scope a 403.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from overture.platform.errors import Unauthenticated
from overture.web.auth import bearer_token, current_access
from overture.web.extensions import csrf

bp = Blueprint("mcp", __name__)
csrf.exempt(bp)  # bearer keys only: no session, so nothing to forge
MAX_BODY = 1_000_000


@bp.route("/mcp", methods=["POST", "GET", "DELETE"])
def endpoint() -> Response:
    if bearer_token() is None:
        raise Unauthenticated("send a workspace API key as 'Authorization: Bearer ovt_...'")
    access = current_access()
    access.require("mcp")
    access.require_tenant()
    # The SDK (Starlette, uvicorn, pydantic: ~50 MiB) is imported by the first MCP call
    # a web process takes, not by every web process.
    from overture.web import mcp_bridge

    server = mcp_bridge.server(access.principal.user.id)
    status, headers, body = mcp_bridge.serve_once(server, request.get_data()[:MAX_BODY + 1],
                                                  MAX_BODY)
    return Response(body, status=status, headers=headers)


