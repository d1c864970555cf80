"""Jira Cloud: create issues and move them through their workflow (REST API v3).

Basic auth with the account's email as username and an API token as password; the
`site` setting names the cloud site (`acme` for acme.atlassian.net).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit

from overture.connectors.context import ActionContext
from overture.connectors.errors import ActionFailed
from overture.connectors.spec import Action, Auth, Connector, Field, obj

HEADERS = {"Accept": "application/json"}
ISSUE_KEY = {"type": "string", "pattern": r"^([A-Za-z][A-Za-z0-9_]*-[0-9]+|[0-9]+)$",
             "description": "an issue key (PROJ-123) or id"}


def adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document Format document: a paragraph per blank-line
    separated block, a hard break per line break (ADF has no empty text nodes)."""
    content: list[dict[str, Any]] = []
    for block in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n").strip()):
        nodes: list[dict[str, Any]] = []
        for line in block.split("\n"):
            if nodes:
                nodes.append({"type": "hardBreak"})
            if line:
                nodes.append({"type": "text", "text": line})
        if any(n["type"] == "text" for n in nodes):
            content.append({"type": "paragraph", "content": nodes})
    return {"type": "doc", "version": 1, "content": content}


def _issue(key: str) -> str:
    return f"issue/{quote(key, safe='')}"


def create_issue(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {"project": {"key": data["project_key"]},
                              "summary": data["summary"],
                              "issuetype": {"name": data.get("issue_type", "Task")}}
    if data.get("description"):
        fields["description"] = adf(data["description"])
    if data.get("labels"):
        fields["labels"] = data["labels"]
    if data.get("priority"):
        fields["priority"] = {"name": data["priority"]}
    if data.get("assignee_account_id"):
        fields["assignee"] = {"id": data["assignee_account_id"]}
    made = ctx.client.request("POST", "issue", json={"fields": fields}, headers=HEADERS).json()
    parts = urlsplit(made.get("self", ""))
    url = f"{parts.scheme}://{parts.netloc}/browse/{made['key']}" if parts.netloc else None
    return {"id": made["id"], "key": made["key"], "url": url}


def transition(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    """Find the transition by its name (or by the status it leads to), then take it."""
    path = f"{_issue(data['issue'])}/transitions"
    available = ctx.client.request("GET", path, headers=HEADERS).json().get("transitions", [])
    wanted = data["transition"].strip().casefold()
    chosen = next((t for t in available if str(t.get("name", "")).casefold() == wanted), None) \
        or next((t for t in available
                 if str((t.get("to") or {}).get("name", "")).casefold() == wanted), None)
    if chosen is None:
        names = ", ".join(repr(t.get("name")) for t in available) or "none"
        raise ActionFailed("not_found", f"issue {data['issue']} has no transition "
                                        f"{data['transition']!r} now; available: {names}")
    body: dict[str, Any] = {"transition": {"id": str(chosen["id"])}}
    if data.get("comment"):
        body["update"] = {"comment": [{"add": {"body": adf(data["comment"])}}]}
    if data.get("resolution"):
        body["fields"] = {"resolution": {"name": data["resolution"]}}
    ctx.client.request("POST", path, json=body, headers=HEADERS)  # 204 No Content
    return {"issue": data["issue"], "transition_id": str(chosen["id"]),
            "transition": chosen.get("name"), "status": (chosen.get("to") or {}).get("name")}


def check(ctx: ActionContext) -> str:
    me = ctx.client.request("GET", "myself", headers=HEADERS).json()
    return f"signed in to Jira as {me.get('displayName') or me.get('emailAddress')}"


CONNECTOR = Connector(
    key="jira",
    name="Jira",
    description="Create Jira Cloud issues and move them through their workflow. "
                "Sign in with the account's email and an API token.",
    icon="jira",
    # username: the Atlassian account's email; password: an API token
    # (id.atlassian.com/manage-profile/security/api-tokens)
    auth=Auth(kind="basic", fields=(
        Field("site", required=False,
              description="the cloud site: 'acme' for acme.atlassian.net (or set the "
                          "connection's base URL)"),)),
    base_url="https://{site}.atlassian.net/rest/api/3",
    docs_url="https://developer.atlassian.com/cloud/jira/platform/rest/v3/",
    test=check,
    actions=(
        Action(key="create_issue", name="Create an issue",
               description="Create an issue in a project. The description is plain text.",
               input_schema=obj({
                   "project_key": {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9_]*$",
                                   "description": "the project's key, like 'PROJ'"},
                   "summary": {"type": "string", "minLength": 1, "maxLength": 255},
                   "issue_type": {"type": "string", "minLength": 1, "default": "Task",
                                  "description": "Task, Bug, Story, ... as the project names it"},
                   "description": {"type": "string", "description": "plain text"},
                   "labels": {"type": "array",
                              "items": {"type": "string", "pattern": r"^\S+$"}},
                   "priority": {"type": "string", "minLength": 1},
                   "assignee_account_id": {"type": "string", "minLength": 1},
               }, ["project_key", "summary"]),
               output_schema=obj({"id": {"type": "string"}, "key": {"type": "string"},
                                  "url": {"type": ["string", "null"]}}),
               run=create_issue, side_effects=True),
        Action(key="transition", name="Transition an issue",
               description="Move an issue along its workflow by the transition's name "
                           "(or the name of the status it leads to).",
               input_schema=obj({
                   "issue": ISSUE_KEY,
                   "transition": {"type": "string", "minLength": 1,
                                  "description": "e.g. 'In Progress' or 'Done'"},
                   "comment": {"type": "string", "description": "plain text"},
                   "resolution": {"type": "string", "minLength": 1,
                                  "description": "when the transition screen asks for one"},
               }, ["issue", "transition"]),
               output_schema=obj({"issue": {"type": "string"},
                                  "transition_id": {"type": "string"},
                                  "transition": {"type": ["string", "null"]},
                                  "status": {"type": ["string", "null"]}}),
               run=transition, side_effects=True),
    ),
)
