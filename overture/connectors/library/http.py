"""HTTP request: any method to any public URL (or under the connection's base URL).

The bearer token, if the connection has one, is attached by the framework like any
connector's auth, so it goes only to the connection's own origins (its base URL's and
its `allowed_origins`): a connection without either sends it nowhere. A connection
without a token may call any public URL.
"""

from __future__ import annotations

from typing import Any

from overture.connectors.context import ActionContext
from overture.connectors.spec import Action, Auth, Connector, Field, obj

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]


def _bearer(values: dict[str, Any]) -> dict[str, str]:
    token = values.get("bearer_token")
    return {"Authorization": f"Bearer {token}"} if token else {}


def request(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    headers = {str(k): str(v) for k, v in (data.get("headers") or {}).items()}
    if ctx.idempotency_key and data.get("method", "GET") != "GET":
        headers.setdefault("Idempotency-Key", ctx.idempotency_key)
    response = ctx.client.request(
        data.get("method", "GET"), data["url"], json=data.get("json"),
        params=data.get("query"), headers=headers,
        content=data["body"].encode() if isinstance(data.get("body"), str) else None,
        ok=tuple(range(400, 500)) if data.get("allow_client_errors") else ())
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return {"status": response.status_code, "headers": dict(response.headers), "body": body}


CONNECTOR = Connector(
    key="http",
    name="HTTP request",
    description="Call any HTTP API. Private and internal addresses are refused.",
    icon="globe",
    auth=Auth(kind="custom", headers=_bearer,
              fields=(Field("bearer_token", secret=True, required=False,
                            description="sent as 'Authorization: Bearer', only to the "
                                        "connection's base URL and allowed_origins"),)),
    base_url=None,
    actions=(Action(
        key="request", name="Send a request",
        description="Send an HTTP request and return the status, headers and body.",
        input_schema=obj({
            "method": {"enum": METHODS, "default": "GET"},
            "url": {"type": "string", "minLength": 1,
                    "description": "absolute URL, or a path under the connection's base URL"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "query": {"type": "object", "additionalProperties": {"type": ["string", "number"]}},
            "json": {"description": "a JSON body"},
            "body": {"type": "string", "description": "a raw body"},
            "allow_client_errors": {"type": "boolean",
                                    "description": "return 4xx answers instead of failing"},
        }, ["url"]),
        output_schema=obj({"status": {"type": "integer"}, "headers": {"type": "object"},
                           "body": {}}),
        run=request, side_effects=True, idempotent=True),),
)
