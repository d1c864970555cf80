"""The API v1 document (/api/v1/openapi.json) and the page that shows it (/api/v1/docs).

The document is OpenAPI 3.1. Two things are settled here for every operation at
once, rather than by each endpoint: the errors it can answer (RFC 9457 problem
documents, `application/problem+json`, see web/problems.py) and the numbers in its
schemas (a `Decimal` bound is written as a JSON number, not a string).

The page is Swagger UI 5 (reads 3.1), vendored in overture/web/static/swagger-ui/
(see VERSION there): nothing comes from a CDN, and its start-up code is a static file,
so the page runs under the Content-Security-Policy of web/headers.py.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from apiflask import APIFlask
from apispec import APISpec
from apispec.ext.marshmallow.common import make_schema_key, resolve_schema_instance
from flask import Blueprint, render_template
from marshmallow import Schema

bp = Blueprint("docs", __name__)

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
WRITES = ("put", "post", "delete", "patch")
PROBLEM_TYPE = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem document: every error answer has this shape.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "`urn:overture:problem:<code>`: stable, "
                                                  "match on it rather than on the text"},
        "title": {"type": "string"},
        "status": {"type": "integer", "description": "the HTTP status code"},
        "detail": {"type": "string", "description": "what went wrong, for a person"},
        "request_id": {"type": "string", "description": "quote it to support"},
        "errors": {"type": "array", "description": "on 422: each field that failed",
                   "items": {"type": "object", "required": ["field", "message"],
                             "properties": {"field": {"type": "string"},
                                            "message": {"type": "string"}}}},
    },
    "additionalProperties": True,
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again",
                               "schema": {"type": "integer"}}}

# The errors an operation can answer: every operation (an API call authenticates,
# enters the tenant of X-Overture-Tenant, checks a permission, is rate limited), those
# that change something, and those that take a body.
EVERY: dict[int, str] = {
    400: "Bad request: a malformed body or query, no tenant named where one is needed, "
         "or (with a session) a failed CSRF check",
    401: "Not authenticated: no valid API key or session",
    403: "Forbidden: the caller lacks the permission, or the tenant is suspended",
    404: "Not found, or not visible to the caller (this includes the tenant named in "
         "X-Overture-Tenant)",
    422: "Validation failed: `errors` names each field",
    429: "Too many requests: wait `Retry-After` seconds",
    503: "Temporarily unavailable (the database or the queue cannot be reached): wait "
         "`Retry-After` seconds",
}
ON_WRITE: dict[int, str] = {409: "Conflict with the current state (a duplicate name, an "
                                 "ended run, a decided approval)"}
ON_BODY: dict[int, str] = {413: "The request body is too large",
                           415: "Unsupported media type: send `application/json`"}
WITH_RETRY_AFTER = (429, 503)


class DocumentedApp(APIFlask):
    """APIFlask, registering each response schema once in the document.

    APIFlask names a schema it meets in `@output` without asking the marshmallow
    plugin, which may already have registered it as the target of a `Nested` field:
    the schema then appears twice (`AgentOut`, `AgentOut1`) and apispec warns that
    references may not resolve. Reuse the plugin's registration instead.
    """

    def _register_schema_and_get_ref(self, spec: APISpec, registered: dict[int, str],
                                     schema_obj: Any) -> dict[str, str]:
        known = self._plugin_name_of(schema_obj)
        if known is not None:
            cls = schema_obj if isinstance(schema_obj, type) else type(schema_obj)
            registered.setdefault(id(cls), known)
            return {"$ref": f"#/components/schemas/{known}"}
        return super()._register_schema_and_get_ref(spec, registered, schema_obj)

    def _plugin_name_of(self, schema_obj: Any) -> str | None:
        plugin = getattr(self, "_ma_plugin", None)
        is_schema = isinstance(schema_obj, Schema) or (
            isinstance(schema_obj, type) and issubclass(schema_obj, Schema))
        if plugin is None or plugin.converter is None or not is_schema:
            return None
        name: str | None = plugin.converter.refs.get(
            make_schema_key(resolve_schema_instance(schema_obj)))
        return name


@bp.get("/api/v1/docs")
def swagger_ui() -> str:
    return render_template("swagger.html")


def finish_document(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec processor: what holds for every operation, applied to each."""
    spec = _as_numbers(spec)
    # Every API operation takes an API key or a session unless it says otherwise.
    spec["security"] = [{"ApiKey": []}, {"Session": []}]
    components = spec.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path_item in spec.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in HTTP_METHODS:
                _document_successes(operation)
                _document_problems(method, operation)
    _drop_unused_schemas(spec, ("HTTPError", "ValidationError"))
    _drop_unused_tags(spec)
    return spec


def _document_problems(method: str, operation: dict[str, Any]) -> None:
    statuses = dict(EVERY)
    if method in WRITES:
        statuses.update(ON_WRITE)
    if "requestBody" in operation:
        statuses.update(ON_BODY)
    responses = operation.setdefault("responses", {})
    for status, description in statuses.items():
        responses.setdefault(str(status), {"description": description})
    for status, response in responses.items():
        if status[0] in "45":  # whatever an endpoint declared, errors are problems
            response["content"] = {PROBLEM_TYPE: {"schema": PROBLEM_REF}}
            if int(status) in WITH_RETRY_AFTER:
                response.setdefault("headers", {}).update(RETRY_AFTER)
    operation["responses"] = dict(sorted(responses.items()))


def _document_successes(operation: dict[str, Any]) -> None:
    """A 204 has no body; another success status an endpoint declares without a body
    (`@doc(responses={200: "..."})` beside `@output(X, status_code=201)`) answers the
    same body as the main one."""
    responses = operation.get("responses", {})
    successes = {s: r for s, r in responses.items() if s.startswith("2")}
    bodies = [r["content"] for s, r in successes.items() if s != "204" and _has_body(r)]
    for status, response in successes.items():
        if status == "204":
            response.pop("content", None)
        elif not _has_body(response) and bodies:
            response["content"] = bodies[0]


def _has_body(response: dict[str, Any]) -> bool:
    return any(media.get("schema") for media in response.get("content", {}).values())


def _as_numbers(node: Any) -> Any:
    """JSON numbers for Decimal values (a `Range` over a `Decimal` field gives them):
    left alone, the JSON encoder would write them as strings, which no validator reads
    as a bound."""
    if isinstance(node, Decimal):
        return int(node) if node == node.to_integral_value() else float(node)
    if isinstance(node, dict):
        return {key: _as_numbers(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_as_numbers(value) for value in node]
    return node


def _drop_unused_schemas(spec: dict[str, Any], names: tuple[str, ...]) -> None:
    """APIFlask's own error schemas, replaced by Problem everywhere."""
    text = json.dumps(spec.get("paths", {}), default=str)
    schemas = spec["components"]["schemas"]
    for name in names:
        if f'"#/components/schemas/{name}"' not in text:
            schemas.pop(name, None)


def _drop_unused_tags(spec: dict[str, Any]) -> None:
    """APIFlask adds the blueprint's name as a tag; no operation uses it, and Swagger UI
    would show it as an empty section."""
    used = {tag for item in spec.get("paths", {}).values() for method, operation in item.items()
            if method in HTTP_METHODS for tag in operation.get("tags", [])}
    spec["tags"] = [tag for tag in spec.get("tags", []) if tag["name"] in used]
    if not spec["tags"]:
        del spec["tags"]
