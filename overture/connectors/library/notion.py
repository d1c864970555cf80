"""Notion: create pages and add rows to databases (API version 2022-06-28).

An internal integration's secret, sent as a Bearer token; the integration must be
shared with the parent page or database.
"""

from __future__ import annotations

import re
from typing import Any

from overture.connectors.context import ActionContext
from overture.connectors.spec import Action, Auth, Connector, obj
from overture.platform.errors import ValidationFailed

VERSION = "2022-06-28"
HEADERS = {"Notion-Version": VERSION}
TEXT_LIMIT = 2000  # characters per rich-text object
BLOCKS_PER_REQUEST = 100
NOTION_ID = {"type": "string", "pattern": r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$",
             "description": "a Notion id (32 hex digits, dashes optional)"}
PAGE_OUT = obj({"id": {"type": "string"}, "url": {"type": ["string", "null"]}})


def rich_text(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"content": text[i:i + TEXT_LIMIT]}}
            for i in range(0, len(text), TEXT_LIMIT)]


def paragraphs(text: str) -> list[dict[str, Any]]:
    blocks = [b.strip() for b in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n"))]
    return [{"object": "block", "type": "paragraph", "paragraph": {"rich_text": rich_text(b)}}
            for b in blocks if b]


def create_page(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    children = paragraphs(data.get("content") or "")
    body: dict[str, Any] = {"parent": {"page_id": data["parent_page_id"]},
                            "properties": {"title": {"title": rich_text(data["title"])}}}
    if data.get("icon_emoji"):
        body["icon"] = {"type": "emoji", "emoji": data["icon_emoji"]}
    if children:
        body["children"] = children[:BLOCKS_PER_REQUEST]
    page = ctx.client.request("POST", "pages", json=body, headers=HEADERS).json()
    # A request takes at most 100 blocks; the rest are appended to the new page.
    for start in range(BLOCKS_PER_REQUEST, len(children), BLOCKS_PER_REQUEST):
        ctx.client.request("PATCH", f"blocks/{page['id']}/children", headers=HEADERS,
                           json={"children": children[start:start + BLOCKS_PER_REQUEST]})
    return {"id": page["id"], "url": page.get("url")}


def _names(value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise TypeError("a list of names, or names separated by commas")
    return [i.strip() for i in items if i.strip()]


def _ids(value: Any) -> list[dict[str, str]]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise TypeError("an id or a list of ids")
    return [{"id": i} for i in items]


def property_value(kind: str, value: Any) -> Any:
    """A plain value as the Notion property value of this type."""
    if kind in ("title", "rich_text"):
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise TypeError("text")
        return {kind: rich_text(str(value))}
    if kind == "number":
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise TypeError("a number")
        return {"number": value}
    if kind == "checkbox":
        if not isinstance(value, bool):
            raise TypeError("true or false")
        return {"checkbox": value}
    if kind in ("select", "status"):
        if not isinstance(value, str) or not value:
            raise TypeError("an option's name")
        return {kind: {"name": value}}
    if kind == "multi_select":
        return {"multi_select": [{"name": n} for n in _names(value)]}
    if kind == "date":
        if isinstance(value, str):
            return {"date": {"start": value}}
        if isinstance(value, dict) and isinstance(value.get("start"), str):
            return {"date": {k: value[k] for k in ("start", "end", "time_zone") if k in value}}
        raise TypeError("an ISO 8601 date, or {start, end}")
    if kind in ("url", "email", "phone_number"):
        if value is not None and not isinstance(value, str):
            raise TypeError("text")
        return {kind: value}
    if kind in ("people", "relation"):
        return {kind: _ids(value)}
    raise TypeError(f"a {kind} property cannot be written")


def add_database_row(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    values = data.get("values") or {}
    if not values and not data.get("properties"):
        raise ValidationFailed.field("input.values", "give the row's values (or properties)")
    if values:
        # The database's schema says each property's type; plain values are typed by it.
        database = ctx.client.request("GET", f"databases/{data['database_id']}",
                                      headers=HEADERS).json()
        schema = database.get("properties", {})
        errors = []
        for name, value in values.items():
            if name not in schema:
                errors.append({"field": f"input.values.{name}", "message": "the database "
                               f"has no such property; it has {', '.join(sorted(schema))}"})
                continue
            try:
                properties[name] = property_value(schema[name]["type"], value)
            except TypeError as exc:
                errors.append({"field": f"input.values.{name}",
                               "message": f"must be {exc} ({schema[name]['type']})"})
        if errors:
            raise ValidationFailed(errors)
    properties.update(data.get("properties") or {})
    body = {"parent": {"database_id": data["database_id"]}, "properties": properties}
    page = ctx.client.request("POST", "pages", json=body, headers=HEADERS).json()
    return {"id": page["id"], "url": page.get("url")}


def check(ctx: ActionContext) -> str:
    me = ctx.client.request("GET", "users/me", headers=HEADERS).json()
    return f"signed in to Notion as {me.get('name') or me.get('id')}"


CONNECTOR = Connector(
    key="notion",
    name="Notion",
    description="Create Notion pages and add rows to Notion databases, with an internal "
                "integration's secret. Share the pages and databases with the integration.",
    icon="notion",
    auth=Auth(kind="api_key", header="Authorization", scheme="Bearer"),
    base_url="https://api.notion.com/v1",
    docs_url="https://developers.notion.com/reference/post-page",
    test=check,
    actions=(
        Action(key="create_page", name="Create a page",
               description="Create a page under a parent page, with a title and plain-text "
                           "content (a paragraph per blank-line separated block).",
               input_schema=obj({
                   "parent_page_id": NOTION_ID,
                   "title": {"type": "string", "minLength": 1},
                   "content": {"type": "string", "description": "plain text"},
                   "icon_emoji": {"type": "string", "minLength": 1, "maxLength": 8},
               }, ["parent_page_id", "title"]),
               output_schema=PAGE_OUT, run=create_page, side_effects=True),
        Action(key="add_database_row", name="Add a database row",
               description="Add a row (a page) to a database. `values` maps property names "
                           "to plain values (text, number, true/false, option names, ISO "
                           "dates), typed by the database's schema; `properties` takes "
                           "Notion property values as they are.",
               input_schema=obj({
                   "database_id": NOTION_ID,
                   "values": {"type": "object", "minProperties": 1},
                   "properties": {"type": "object", "minProperties": 1,
                                  "additionalProperties": {"type": "object"}},
               }, ["database_id"]),
               output_schema=PAGE_OUT, run=add_database_row, side_effects=True),
    ),
)
