"""Zendesk Support: create and update tickets, add comments (API v2).

Auth is an agent's email and an API token, sent the way Zendesk wants it: HTTP Basic
with `{email}/token` as the username and the token as the password. The base URL is
`https://{subdomain}.zendesk.com/api/v2`, the subdomain a public field of the
connection. Ticket creation honours an Idempotency-Key, so a retried step cannot open
the same ticket twice.
"""

from __future__ import annotations

import base64
from typing import Any

from overture.connectors.context import ActionContext
from overture.connectors.errors import ActionFailed
from overture.connectors.spec import Action, Auth, Connector, Field, obj
from overture.platform.errors import ValidationFailed

STATUSES = ["new", "open", "pending", "hold", "solved", "closed"]
PRIORITIES = ["urgent", "high", "normal", "low"]
TYPES = ["problem", "incident", "question", "task"]
ID = {"type": "integer", "minimum": 1}
TAGS = {"type": "array", "items": {"type": "string", "pattern": r"^\S+$"}}
CUSTOM_FIELDS = {"type": "array", "items": obj({"id": ID, "value": {}}, ["id", "value"]),
                 "description": "ticket fields by id: [{\"id\": 123, \"value\": \"x\"}]"}
COMMON = {
    "subject": {"type": "string", "minLength": 1, "maxLength": 150},
    "status": {"enum": STATUSES}, "priority": {"enum": PRIORITIES}, "type": {"enum": TYPES},
    "assignee_id": ID, "assignee_email": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+$"},
    "group_id": ID, "custom_fields": CUSTOM_FIELDS,
}
TICKET = obj({"id": {"type": "integer"}, "url": {"type": ["string", "null"]},
              "agent_url": {"type": ["string", "null"]}, "status": {"type": ["string", "null"]},
              "subject": {"type": ["string", "null"]},
              "updated_at": {"type": ["string", "null"]},
              "comment_id": {"type": ["integer", "null"]}})


def token_headers(values: dict[str, Any]) -> dict[str, str]:
    """`Authorization: Basic base64("{email}/token:{api_token}")`."""
    email, token = values.get("email"), values.get("api_token")
    if not email or not token:
        raise ActionFailed("misconfigured", "a Zendesk connection needs an email and an "
                                            "api_token")
    pair = f"{email}/token:{token}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k in ("subject", "status", "priority", "type", "assignee_id",
                                 "assignee_email", "group_id", "custom_fields", "tags",
                                 "external_id", "due_at") if k in data}


def _comment(body: str, public: bool, html: bool) -> dict[str, Any]:
    return {"html_body" if html else "body": body, "public": public}


def _ticket(answer: dict[str, Any]) -> dict[str, Any]:
    ticket = answer["ticket"]
    api_url = ticket.get("url")
    agent_url = (api_url.split("/api/v2/")[0] + f"/agent/tickets/{ticket['id']}"
                 if api_url and "/api/v2/" in api_url else None)
    events = (answer.get("audit") or {}).get("events") or []
    comment = next((e for e in events if e.get("type") == "Comment"), None)
    return {"id": ticket["id"], "url": api_url, "agent_url": agent_url,
            "status": ticket.get("status"), "subject": ticket.get("subject"),
            "updated_at": ticket.get("updated_at"),
            "comment_id": comment.get("id") if comment else None}


def create_ticket(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    ticket = _fields(data)
    ticket["comment"] = _comment(data["body"], data.get("public", True), data.get("html", False))
    if data.get("requester_email"):
        ticket["requester"] = {"email": data["requester_email"],
                               **({"name": data["requester_name"]}
                                  if data.get("requester_name") else {})}
    elif data.get("requester_id"):
        ticket["requester_id"] = data["requester_id"]
    headers = {"Idempotency-Key": ctx.idempotency_key} if ctx.idempotency_key else None
    answer = ctx.client.request("POST", "tickets.json", json={"ticket": ticket},
                                headers=headers).json()
    return _ticket(answer)


def update_ticket(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    ticket = _fields(data)
    for ours, theirs in (("add_tags", "additional_tags"), ("remove_tags", "remove_tags")):
        if data.get(ours):
            ticket[theirs] = data[ours]
    if data.get("comment"):
        ticket["comment"] = _comment(data["comment"], data.get("public", True),
                                     data.get("html", False))
    if not ticket:
        raise ValidationFailed.field("input", "give at least one field to change")
    answer = ctx.client.request("PUT", f"tickets/{data['ticket_id']}.json",
                                json={"ticket": ticket}).json()
    return _ticket(answer)


def add_comment(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    comment = _comment(data["body"], data.get("public", True), data.get("html", False))
    if data.get("author_id"):
        comment["author_id"] = data["author_id"]
    answer = ctx.client.request("PUT", f"tickets/{data['ticket_id']}.json",
                                json={"ticket": {"comment": comment}}).json()
    return _ticket(answer)


def check(ctx: ActionContext) -> str:
    user = ctx.client.request("GET", "users/me.json").json().get("user") or {}
    if user.get("id") is None:  # Zendesk answers unknown callers as the anonymous user
        raise ActionFailed("auth_failed", "Zendesk did not recognise the email and token")
    return f"signed in to Zendesk as {user.get('email')} ({user.get('role')})"


CONNECTOR = Connector(
    key="zendesk",
    name="Zendesk",
    description="Create and update Zendesk Support tickets and comment on them.",
    icon="zendesk",
    auth=Auth(kind="custom", headers=token_headers, fields=(
        Field("subdomain", description="the part before .zendesk.com: 'acme' for "
                                       "acme.zendesk.com"),
        Field("email", description="the agent the API token acts as"),
        Field("api_token", secret=True, description="Admin Center > Apps and integrations "
                                                    "> Zendesk API > API tokens"),
    )),
    base_url="https://{subdomain}.zendesk.com/api/v2",
    docs_url="https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/",
    test=check,
    actions=(
        Action(key="create_ticket", name="Create a ticket",
               description="Open a ticket; the body is its first comment (the description). "
                           "Give requester_email to open it on someone's behalf.",
               input_schema=obj({
                   **COMMON, "body": {"type": "string", "minLength": 1},
                   "html": {"type": "boolean", "description": "the body is HTML"},
                   "public": {"type": "boolean", "default": True},
                   "requester_email": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+$"},
                   "requester_name": {"type": "string"}, "requester_id": ID,
                   "tags": TAGS, "external_id": {"type": "string"},
                   "due_at": {"type": "string", "description": "ISO 8601, for tasks"},
               }, ["subject", "body"]),
               output_schema=TICKET, run=create_ticket, side_effects=True, idempotent=True),
        Action(key="update_ticket", name="Update a ticket",
               description="Change a ticket's status, priority, assignee, tags or fields, "
                           "optionally with a comment.",
               input_schema=obj({
                   "ticket_id": ID, **COMMON,
                   "tags": {**TAGS, "description": "replaces all tags"},
                   "add_tags": TAGS, "remove_tags": TAGS,
                   "comment": {"type": "string", "minLength": 1},
                   "public": {"type": "boolean", "default": True},
                   "html": {"type": "boolean"},
               }, ["ticket_id"]),
               output_schema=TICKET, run=update_ticket, side_effects=True),
        Action(key="add_comment", name="Add a comment",
               description="Add a public reply or an internal note (public: false).",
               input_schema=obj({
                   "ticket_id": ID, "body": {"type": "string", "minLength": 1},
                   "public": {"type": "boolean", "default": True},
                   "html": {"type": "boolean"}, "author_id": ID,
               }, ["ticket_id", "body"]),
               output_schema=TICKET, run=add_comment, side_effects=True),
    ),
)
