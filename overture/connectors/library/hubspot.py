"""HubSpot CRM: create, update and search contacts, create deals (CRM API v3).

Auth is a private app's access token (`pat-...`), sent as a Bearer token; give the
app the `crm.objects.contacts.read/write` and `crm.objects.deals.write` scopes.
Search follows `paging.next.after` until the caller's limit.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

from overture.connectors.context import ActionContext, PollContext
from overture.connectors.errors import ActionFailed
from overture.connectors.spec import Action, Auth, Connector, Trigger, obj
from overture.platform.errors import ValidationFailed

SEARCH_PAGE_MAX = 200  # HubSpot's largest search page
DEFAULT_PROPERTIES = ["email", "firstname", "lastname", "phone", "company"]
# HUBSPOT_DEFINED association type ids, from a deal
DEAL_TO_CONTACT, DEAL_TO_COMPANY = 3, 5
EXISTING_ID = re.compile(r"Existing ID:\s*([0-9]+)")

VALUE = {"type": ["string", "number", "boolean"]}
PROPERTIES = {"type": "object", "additionalProperties": VALUE,
              "description": "HubSpot properties by internal name, e.g. {\"jobtitle\": \"CTO\"}"}
OBJECT_ID = {"type": "string", "pattern": r"^[0-9]+$"}
CONTACT_FIELDS = {
    "email": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+$"},
    "firstname": {"type": "string"}, "lastname": {"type": "string"},
    "phone": {"type": "string"}, "company": {"type": "string"},
    "website": {"type": "string"}, "jobtitle": {"type": "string"},
    "lifecyclestage": {"type": "string",
                       "description": "subscriber, lead, marketingqualifiedlead, "
                                      "salesqualifiedlead, opportunity, customer, ..."},
}
OPERATORS = ["EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN",
             "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"]
FILTER = obj({"property": {"type": "string", "minLength": 1},
              "operator": {"enum": OPERATORS, "default": "EQ"},
              "value": VALUE,
              "values": {"type": "array", "items": VALUE, "description": "for IN, NOT_IN"},
              "high_value": {**VALUE, "description": "the upper bound, for BETWEEN"}},
             ["property"])
RECORD = obj({"id": {"type": "string"}, "properties": {"type": "object"},
              "created_at": {"type": ["string", "null"]},
              "updated_at": {"type": ["string", "null"]}})


def _record(made: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(made["id"]), "properties": made.get("properties") or {},
            "created_at": made.get("createdAt"), "updated_at": made.get("updatedAt")}


def _properties(data: dict[str, Any], named: tuple[str, ...]) -> dict[str, Any]:
    props = {k: data[k] for k in named if k in data}
    return {**props, **(data.get("properties") or {})}


def create_contact(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    response = ctx.client.request("POST", "crm/v3/objects/contacts",
                                  json={"properties": _properties(data, tuple(CONTACT_FIELDS))},
                                  ok=(409,))
    if response.status_code == 409:  # {"category": "CONFLICT", "message": "... Existing ID: 1"}
        body = response.json()
        found = EXISTING_ID.search(str(body.get("message", "")))
        raise ActionFailed("conflict", "HubSpot already has a contact with this email",
                           http_status=409, existing_id=found.group(1) if found else None)
    return _record(response.json())


def update_contact(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    params = {"idProperty": data["id_property"]} if data.get("id_property") else None
    props = _properties(data, tuple(CONTACT_FIELDS))
    if not props:
        raise ValidationFailed.field("input.properties", "give at least one property to change")
    path = f"crm/v3/objects/contacts/{quote(data['contact_id'], safe='')}"
    return _record(ctx.client.request("PATCH", path, params=params,
                                      json={"properties": props}).json())


def _filter(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"propertyName": spec["property"],
                           "operator": spec.get("operator", "EQ")}
    for ours, theirs in (("value", "value"), ("values", "values"), ("high_value", "highValue")):
        if ours in spec:
            out[theirs] = spec[ours]
    return out


def search_contacts(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    groups = [{"filters": [_filter(f) for f in group]} for group in data.get("filter_groups", [])]
    if data.get("filters"):
        groups.insert(0, {"filters": [_filter(f) for f in data["filters"]]})
    body: dict[str, Any] = {"filterGroups": groups,
                            "properties": data.get("properties", DEFAULT_PROPERTIES)}
    if data.get("query"):
        body["query"] = data["query"]
    if data.get("sort"):
        body["sorts"] = [{"propertyName": data["sort"]["property"],
                          "direction": data["sort"].get("direction", "ASCENDING")}]
    limit = data.get("limit", 100)
    results: list[dict[str, Any]] = []
    after: str | None = None
    total = 0
    while len(results) < limit:
        page_body = {**body, "limit": min(limit - len(results), SEARCH_PAGE_MAX)}
        if after is not None:
            page_body["after"] = after
        page = ctx.client.request("POST", "crm/v3/objects/contacts/search",
                                  json=page_body).json()
        total = int(page.get("total", 0))
        found = page.get("results") or []
        results.extend(_record(r) for r in found)
        after = ((page.get("paging") or {}).get("next") or {}).get("after")
        if after is None or not found:
            break
    return {"total": total, "results": results[:limit], "next_after": after}


def create_deal(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    props = _properties(data, ("dealname", "amount", "pipeline", "dealstage", "closedate",
                               "hubspot_owner_id"))
    props.setdefault("pipeline", "default")
    associations = [
        {"to": {"id": object_id},
         "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}
        for key, type_id in (("contact_ids", DEAL_TO_CONTACT), ("company_ids", DEAL_TO_COMPANY))
        for object_id in data.get(key, [])]
    body: dict[str, Any] = {"properties": props}
    if associations:
        body["associations"] = associations
    return _record(ctx.client.request("POST", "crm/v3/objects/deals", json=body).json())


# --------------------------------------------------------------------------- new contacts
# The fallback for a workspace without a HubSpot app's webhooks: poll the search API.

POLL_BATCH = 100
# HubSpot's search index trails a write by seconds: each poll looks this far back again
# (the engine's dedupe by contact id makes the overlap harmless).
LOOKBACK_MS = 5 * 60 * 1000
CONTACT_PROPERTIES = ["email", "firstname", "lastname", "company", "phone", "createdate"]


def _created_ms(record: dict[str, Any]) -> int:
    stamp = record.get("createdAt") or (record.get("properties") or {}).get("createdate")
    try:
        return int(datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return 0


def _search_created(ctx: PollContext, since_ms: int | None, direction: str,
                    limit: int) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"sorts": [{"propertyName": "createdate", "direction": direction}],
                            "properties": CONTACT_PROPERTIES, "limit": limit}
    if since_ms is not None:
        body["filterGroups"] = [{"filters": [{"propertyName": "createdate", "operator": "GTE",
                                              "value": str(since_ms)}]}]
    page = ctx.client.request("POST", "crm/v3/objects/contacts/search", json=body).json()
    return list(page.get("results") or [])


def poll_new_contacts(ctx: PollContext) -> list[dict[str, Any]]:
    """Contacts created since the last poll, oldest first. The first poll only notes
    the newest contact's time: contacts made before the trigger start nothing."""
    state = ctx.state
    if "floor_ms" not in state:
        newest = _search_created(ctx, None, "DESCENDING", 1)
        state["floor_ms"] = state["cursor_ms"] = (_created_ms(newest[0]) + 1 if newest else 0)
        return []
    since = max(int(state["floor_ms"]), int(state["cursor_ms"]) - LOOKBACK_MS)
    found = _search_created(ctx, since, "ASCENDING", POLL_BATCH)
    if found:
        state["cursor_ms"] = max(int(state["cursor_ms"]), *(_created_ms(r) for r in found))
    return [_record(r) for r in found]


def check(ctx: ActionContext) -> str:
    ctx.client.request("GET", "crm/v3/objects/contacts", params={"limit": 1})
    return "HubSpot accepted the token"


CONNECTOR = Connector(
    key="hubspot",
    name="HubSpot",
    description="Create, update and search contacts and create deals in HubSpot CRM; "
                "run on each new contact.",
    icon="hubspot",
    auth=Auth(kind="api_key", header="Authorization", scheme="Bearer"),
    base_url="https://api.hubapi.com",
    docs_url="https://developers.hubspot.com/docs/api/crm/contacts",
    test=check,
    actions=(
        Action(key="create_contact", name="Create a contact",
               description="Create a contact. Fails with reason 'conflict' (and the "
                           "existing_id) when one with this email exists.",
               input_schema=obj({**CONTACT_FIELDS, "properties": PROPERTIES}, ["email"]),
               output_schema=RECORD, run=create_contact, side_effects=True),
        Action(key="update_contact", name="Update a contact",
               description="Change properties of a contact, found by ID (or by email with "
                           "id_property 'email').",
               input_schema=obj({
                   "contact_id": {"type": "string", "minLength": 1,
                                  "pattern": r"^(?!\.\.?$)[^/?#\s]+$",
                                  "description": "the contact's ID, or the value of "
                                                 "id_property"},
                   "id_property": {"type": "string", "pattern": r"^[a-z0-9_]+$",
                                   "description": "a unique property to find the contact "
                                                  "by, e.g. 'email'"},
                   **CONTACT_FIELDS, "properties": PROPERTIES,
               }, ["contact_id"]),
               output_schema=RECORD, run=update_contact, side_effects=True, idempotent=True),
        Action(key="search_contacts", name="Search contacts",
               description="Find contacts by filters (all must match), filter groups (any "
                           "group may match) and/or a free-text query.",
               input_schema=obj({
                   "query": {"type": "string", "description": "free text over names, "
                                                              "emails, phone, company"},
                   "filters": {"type": "array", "items": FILTER, "maxItems": 6},
                   "filter_groups": {"type": "array", "maxItems": 5,
                                     "items": {"type": "array", "items": FILTER,
                                               "minItems": 1, "maxItems": 6}},
                   "properties": {"type": "array", "items": {"type": "string"},
                                  "description": "properties to return"},
                   "sort": obj({"property": {"type": "string"},
                                "direction": {"enum": ["ASCENDING", "DESCENDING"]}},
                               ["property"]),
                   "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
               }),
               output_schema=obj({"total": {"type": "integer"},
                                  "results": {"type": "array", "items": RECORD},
                                  "next_after": {"type": ["string", "null"]}}),
               run=search_contacts),
        Action(key="create_deal", name="Create a deal",
               description="Create a deal, optionally associated with contacts and "
                           "companies.",
               input_schema=obj({
                   "dealname": {"type": "string", "minLength": 1},
                   "amount": {"type": ["number", "string"]},
                   "pipeline": {"type": "string", "default": "default"},
                   "dealstage": {"type": "string",
                                 "description": "a stage ID, e.g. appointmentscheduled"},
                   "closedate": {"type": "string", "description": "ISO 8601 date-time"},
                   "hubspot_owner_id": {"type": "string"},
                   "contact_ids": {"type": "array", "items": OBJECT_ID},
                   "company_ids": {"type": "array", "items": OBJECT_ID},
                   "properties": PROPERTIES,
               }, ["dealname"]),
               output_schema=RECORD, run=create_deal, side_effects=True),
    ),
    triggers=(Trigger(
        key="new_contact", name="New contact",
        description="A contact was created in HubSpot (polled; an app's contact.creation "
                    "webhook is faster: see the Triggers page's app events).",
        kind="polling", output_schema=RECORD,
        dedupe_key=lambda record: f"contact:{record['id']}", poll=poll_new_contacts),),
)
