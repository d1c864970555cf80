"""The OpenAPI importer: a tenant uploads an OpenAPI 3 document and gets a connector
whose operations are actions.

Each operation becomes an action keyed by its operationId; its input schema holds the
path, query and header parameters by name and the JSON request body as `body`, with
local `$ref`s inlined (so the schema also serves as an LLM tool schema); it calls the
API through the connection's client (auth, retries, SSRF checks) and returns
`{"status", "body"}`.

The connector exists only in the tenant that uploaded it: its key is
`openapi.<key>`, and the registry resolves such keys by reading the document through
the tenant scope (the ORM filter and row-level security), never from the global
registry. Another tenant asking for the same key finds its own document or nothing.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections import OrderedDict
from datetime import datetime
from typing import Any
from urllib.parse import quote

from flask import has_app_context
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from overture.connectors.context import ActionContext
from overture.connectors.models import Connection
from overture.connectors.openapi_models import OpenApiDocument
from overture.connectors.spec import Action, Auth, Connector, Field, obj
from overture.platform import audit
from overture.platform.db import current_tenant_id, db
from overture.platform.errors import Conflict, NotFound, ValidationFailed

PREFIX = "openapi."
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
MAX_DOCUMENT_BYTES = 2_000_000
MAX_OPERATIONS = 500
MAX_SCHEMA_NODES = 20_000  # per action, after inlining $refs (refs can multiply a schema)
MAX_REF_DEPTH = 32
# Chained references nest a schema far deeper than the document (each hop adds its own
# levels), and every walk over it (jsonschema's checks, this module) recurses: deeper is
# cut to {}. 48 keeps an action's schema, inside an API answer, within the 64 levels the
# API's own parser reads (platform/jsonbody.py).
MAX_SCHEMA_DEPTH = 48
RESERVED_HEADERS = {"authorization", "content-type", "accept", "content-length", "host",
                    "idempotency-key"}
_CACHE_SIZE = 256
_cache: OrderedDict[tuple[uuid.UUID, str], tuple[datetime, Connector]] = OrderedDict()
_cache_lock = threading.Lock()


class Invalid(Exception):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where, self.message = where, message


# --------------------------------------------------------------------------- building


class _Inliner:
    """Inlines local `$ref`s (`#/components/...`). A reference to itself (a recursive
    schema) becomes `{}` (anything) below its first appearance."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document, self.nodes = document, 0

    def pointer(self, ref: str, where: str) -> Any:
        if not ref.startswith("#/"):
            raise Invalid(where, f"only local references (#/...) are supported, not {ref!r}")
        node: Any = self.document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise Invalid(where, f"{ref!r} points at nothing")
            node = node[part]
        return node

    def inline(self, node: Any, where: str, refs: tuple[str, ...] = (), depth: int = 0) -> Any:
        self.nodes += 1
        if self.nodes > MAX_SCHEMA_NODES:
            raise Invalid(where, "the schema is too large once its references are inlined")
        if isinstance(node, dict | list) and depth >= MAX_SCHEMA_DEPTH:
            return {}  # as a recursive reference: anything, below a depth every walk survives
        if isinstance(node, list):
            return [self.inline(item, where, refs, depth + 1) for item in node]
        if not isinstance(node, dict):
            return node
        if isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in refs or len(refs) >= MAX_REF_DEPTH:
                return {}
            return self.inline(self.pointer(ref, where), where, (*refs, ref), depth)
        return {k: self.inline(v, where, refs, depth + 1) for k, v in node.items()}


def _schema_30_to_2020(node: Any) -> Any:
    """OpenAPI 3.0's dialect to JSON Schema 2020-12: `nullable`, boolean exclusive
    bounds; keywords only OpenAPI knows are harmless and kept."""
    if isinstance(node, list):
        return [_schema_30_to_2020(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _schema_30_to_2020(v) for k, v in node.items()}
    if out.pop("nullable", False) is True and "type" in out:
        kinds = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*kinds, "null"]
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(out.get(exclusive), bool) and out.pop(exclusive) and bound in out:
            out[exclusive] = out.pop(bound)
    return out


def _auth(document: dict[str, Any], inliner: _Inliner) -> Auth:
    schemes = (document.get("components") or {}).get("securitySchemes") or {}
    if not isinstance(schemes, dict) or not schemes:
        return Auth(kind="none")
    names = [name for requirement in document.get("security") or []
             if isinstance(requirement, dict) for name in requirement]
    name = next((n for n in names if n in schemes), next(iter(schemes)))
    scheme = inliner.inline(schemes[name], f"components.securitySchemes.{name}")
    if not isinstance(scheme, dict):
        return Auth(kind="none")
    kind, http_scheme = scheme.get("type"), str(scheme.get("scheme", "")).lower()
    if kind == "http" and http_scheme == "basic":
        return Auth(kind="basic", fields=(Field("username"),))
    if kind == "apiKey" and scheme.get("in") == "header" and scheme.get("name"):
        return Auth(kind="api_key", header=str(scheme["name"]), scheme=None)
    if kind == "apiKey" and scheme.get("in") == "query" and scheme.get("name"):
        return Auth(kind="api_key", query_param=str(scheme["name"]))
    if kind in ("http", "oauth2", "openIdConnect"):
        # a bearer token (for OAuth2 APIs: a token obtained elsewhere, pasted as api_key)
        return Auth(kind="api_key", header="Authorization", scheme="Bearer")
    return Auth(kind="none")


def _base_url(document: dict[str, Any]) -> str | None:
    servers = document.get("servers") or []
    if not servers or not isinstance(servers[0], dict) or not servers[0].get("url"):
        return None
    server = servers[0]
    url = str(server["url"])
    for name, variable in (server.get("variables") or {}).items():
        if isinstance(variable, dict) and "default" in variable:
            url = url.replace("{" + name + "}", str(variable["default"]))
    if not url.startswith(("http://", "https://")):
        return None  # relative: each connection names its base URL
    return url


def _action_key(raw: str, taken: set[str]) -> str:
    key = re.sub(r"[^A-Za-z0-9_-]", "_", raw)[:80] or "operation"
    candidate, n = key, 2
    while candidate in taken:
        candidate, n = f"{key[:76]}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _json_media(content: Any) -> tuple[str, dict[str, Any]] | None:
    if not isinstance(content, dict):
        return None
    for media, spec in content.items():
        base = media.split(";")[0].strip().lower()
        if base == "application/json" or base.endswith("+json"):
            return media, spec if isinstance(spec, dict) else {}
    return None


def _operation(path: str, method: str, op: dict[str, Any], shared: list[Any],
               inliner: _Inliner, taken: set[str], dialect30: bool) -> Action:
    where = f"paths.{path}.{method}"
    raw_key = op.get("operationId") or f"{method}_{path.strip('/')}"
    key = _action_key(str(raw_key), taken)
    params: dict[tuple[str, str], dict[str, Any]] = {}
    for raw in [*shared, *(op.get("parameters") or [])]:
        param = inliner.inline(raw, where)
        if not isinstance(param, dict) or not param.get("name") or not param.get("in"):
            raise Invalid(where, "a parameter needs a name and an `in`")
        params[(str(param["in"]), str(param["name"]))] = param
    properties: dict[str, Any] = {}
    required: list[str] = []
    plan: list[tuple[str, str, str]] = []  # (input property, location, name)
    for (location, name), param in params.items():
        if location == "cookie" or (location == "header" and name.lower() in RESERVED_HEADERS):
            continue
        if location not in ("path", "query", "header"):
            raise Invalid(where, f"parameter {name!r} is in {location!r}")
        prop = name if name not in properties else f"{location}_{name}"
        schema = dict(param.get("schema") or {"type": "string"})
        if param.get("description") and "description" not in schema:
            schema["description"] = str(param["description"])
        properties[prop] = schema
        if location == "path" or param.get("required"):
            required.append(prop)
        plan.append((prop, location, name))
    body_prop, body_media = None, None
    body = inliner.inline(op.get("requestBody"), where) if op.get("requestBody") else None
    if isinstance(body, dict):
        media = _json_media(body.get("content"))
        body_prop = "body" if "body" not in properties else "request_body"
        if media is not None:
            body_media = media[0]
            properties[body_prop] = media[1].get("schema") or {}
        else:
            content = body.get("content") or {}
            body_media = next(iter(content), "text/plain") if isinstance(content, dict) \
                else "text/plain"
            properties[body_prop] = {"type": "string",
                                     "description": f"the raw body ({body_media})"}
        if body.get("required"):
            required.append(body_prop)
    output: dict[str, Any] = {}
    for status, response in (op.get("responses") or {}).items():
        if str(status).startswith("2"):
            resolved = inliner.inline(response, where)
            media = _json_media(resolved.get("content") if isinstance(resolved, dict) else None)
            output = (media[1].get("schema") or {}) if media else {}
            break
    input_schema = obj(properties, required)
    if dialect30:
        input_schema, output = _schema_30_to_2020(input_schema), _schema_30_to_2020(output)
    try:
        Draft202012Validator.check_schema(input_schema)
    except SchemaError as exc:
        raise Invalid(where, f"the parameters make no valid JSON Schema: {exc.message}") from exc
    description = str(op.get("summary") or op.get("description") or f"{method.upper()} {path}")
    return Action(
        key=key, name=str(op.get("summary") or key)[:120], description=description[:2000],
        input_schema=input_schema,
        output_schema=obj({"status": {"type": "integer"}, "body": output}),
        run=_caller(method.upper(), path, plan, body_prop, body_media),
        side_effects=method not in ("get", "head", "options"),
        idempotent=method in ("get", "head", "options", "put", "delete"))


def _caller(method: str, path: str, plan: list[tuple[str, str, str]], body_prop: str | None,
            body_media: str | None) -> Any:
    def run(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
        url, query, headers = path, {}, {}
        for prop, location, name in plan:
            if prop not in data:
                continue
            value = data[prop]
            if location == "path":
                segment = quote(_plain(value), safe="")
                if segment in (".", ".."):  # a value never walks up the API's path
                    segment = segment.replace(".", "%2E")
                url = url.replace("{" + name + "}", segment)
            elif location == "query":
                query[name] = [_plain(v) for v in value] if isinstance(value, list) \
                    else _plain(value)
            else:
                headers[name] = _plain(value)
        json_body, content = None, None
        if body_prop and body_prop in data:
            if body_media and _json_media({body_media: {}}):
                json_body = data[body_prop]
                headers["Content-Type"] = body_media
            else:
                content = str(data[body_prop]).encode()
                headers["Content-Type"] = body_media or "text/plain"
        if ctx.idempotency_key and method not in ("GET", "HEAD", "OPTIONS"):
            headers["Idempotency-Key"] = ctx.idempotency_key
        response = ctx.client.request(method, url, params=query or None, headers=headers,
                                      json=json_body, content=content)
        try:
            answer: Any = response.json() if response.content else None
        except ValueError:
            answer = response.text
        return {"status": response.status_code, "body": answer}

    return run


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def build(key: str, name: str, description: str, document: Any) -> Connector:
    """The connector of an OpenAPI document; ValidationFailed names what is wrong."""
    try:
        return _build(key, name, description, document)
    except Invalid as invalid:
        raise ValidationFailed.field(f"document.{invalid.where}", invalid.message) from None


def _build(key: str, name: str, description: str, document: Any) -> Connector:
    if not isinstance(document, dict):
        raise Invalid("", "must be a JSON object")
    version = str(document.get("openapi", ""))
    if not re.match(r"^3\.[01]\.\d+$", version):
        raise Invalid("openapi", "an OpenAPI 3.0 or 3.1 document (`openapi: 3.x.y`)")
    paths = document.get("paths")
    if not isinstance(paths, dict) or not paths:
        raise Invalid("paths", "needs at least one path")
    inliner = _Inliner(document)
    actions: list[Action] = []
    taken: set[str] = set()
    for path, item in paths.items():
        if not isinstance(item, dict) or not str(path).startswith("/"):
            raise Invalid(f"paths.{path}", "a path starts with '/' and maps methods")
        if isinstance(item.get("$ref"), str):
            item = inliner.pointer(item["$ref"], f"paths.{path}")
            if not isinstance(item, dict):
                raise Invalid(f"paths.{path}", "the reference is no path item")
        shared = item.get("parameters") or []
        if not isinstance(shared, list):
            raise Invalid(f"paths.{path}.parameters", "must be a list")
        for method in METHODS:
            if isinstance(item.get(method), dict):
                inliner.nodes = 0
                actions.append(_operation(str(path), method, item[method], shared, inliner,
                                          taken, version.startswith("3.0")))
                if len(actions) > MAX_OPERATIONS:
                    raise Invalid("paths", f"at most {MAX_OPERATIONS} operations")
    if not actions:
        raise Invalid("paths", "defines no operations")
    info = document.get("info") if isinstance(document.get("info"), dict) else {}
    return Connector(
        key=PREFIX + key, name=name or str(info.get("title") or key)[:120],
        description=description or str(info.get("description") or "")[:2000]
        or f"Imported from an OpenAPI {version} document.",
        icon="plug", auth=_auth(document, inliner), base_url=_base_url(document),
        actions=tuple(actions), docs_url=None, tags=("openapi",))


# --------------------------------------------------------------------------- storage


def _clean_key(key: str) -> str:
    key = (key or "").strip().lower()
    if not KEY_RE.match(key):
        raise ValidationFailed.field("key", "lower-case letters, digits, '_' or '-', at most 60, "
                                            "starting with a letter or digit")
    return key


def import_document(key: str, document: Any, name: str | None = None,
                    description: str | None = None,
                    created_by: uuid.UUID | None = None) -> OpenApiDocument:
    """Store a tenant's OpenAPI document; its connector is `openapi.<key>`."""
    key = _clean_key(key)
    if len(json.dumps(document, default=str)) > MAX_DOCUMENT_BYTES:
        raise ValidationFailed.field("document", f"at most {MAX_DOCUMENT_BYTES} bytes")
    connector = build(key, (name or "").strip()[:120], (description or "").strip(), document)
    row = OpenApiDocument(key=key, name=connector.name, description=connector.description,
                          document=copy.deepcopy(document), created_by_id=created_by)
    try:
        with db.session.begin_nested():
            db.session.add(row)
            db.session.flush()
    except IntegrityError as exc:
        raise Conflict(f"an OpenAPI connector {key!r} exists; delete it first") from exc
    audit.record("openapi_connector.imported", target_type="openapi_document",
                 target_id=row.id, details={"key": key, "actions": len(connector.actions)})
    return row


def list_documents() -> list[OpenApiDocument]:
    return list(db.session.scalars(select(OpenApiDocument).order_by(OpenApiDocument.key)))


def get_document(key: str) -> OpenApiDocument:
    row = db.session.scalars(select(OpenApiDocument).where(
        OpenApiDocument.key == (key or "").lower())).one_or_none()
    if row is None:
        raise NotFound(f"no OpenAPI connector {key!r}")
    return row


def delete_document(row: OpenApiDocument) -> None:
    used = db.session.scalar(select(func.count(Connection.id)).where(
        Connection.connector_key == PREFIX + row.key))
    if used:
        raise Conflict(f"{used} connection(s) use this connector; delete them first")
    audit.record("openapi_connector.deleted", target_type="openapi_document", target_id=row.id,
                 details={"key": row.key})
    db.session.delete(row)
    with _cache_lock:
        _cache.pop((row.tenant_id, row.key), None)


def connector_of(row: OpenApiDocument) -> Connector:
    """The row's connector, built once per version of the document."""
    cache_key = (row.tenant_id, row.key)
    with _cache_lock:
        cached = _cache.get(cache_key)
        if cached is not None and cached[0] == row.updated_at:
            _cache.move_to_end(cache_key)
            return cached[1]
    connector = build(row.key, row.name, row.description, row.document)
    with _cache_lock:
        _cache[cache_key] = (row.updated_at, connector)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return connector


# --------------------------------------------------------------------------- the registry's door


def find_connector(key: str) -> Connector | None:
    """`openapi.<key>` of the scope tenant, or None (no scope, no such document)."""
    if not key.startswith(PREFIX) or not has_app_context() or current_tenant_id() is None:
        return None
    try:
        row = get_document(key[len(PREFIX):])
    except NotFound:
        return None
    return connector_of(row)


def tenant_connectors() -> list[Connector]:
    """The scope tenant's imported connectors (none without a tenant in scope)."""
    if not has_app_context() or current_tenant_id() is None:
        return []
    return [connector_of(row) for row in list_documents()]
