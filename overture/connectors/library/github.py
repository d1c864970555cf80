"""GitHub: open issues and comment on them (REST API v3, token auth).

The worked example of `connectors/README.md`.
"""

from __future__ import annotations

from typing import Any

from overture.connectors.context import ActionContext
from overture.connectors.spec import Action, Auth, Connector, obj

HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
REPO = {"owner": {"type": "string", "minLength": 1}, "repo": {"type": "string", "minLength": 1}}


def create_issue(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    body = {k: data[k] for k in ("title", "body", "labels", "assignees") if k in data}
    issue = ctx.client.request("POST", f"repos/{data['owner']}/{data['repo']}/issues",
                               json=body, headers=HEADERS).json()
    return {"number": issue["number"], "id": issue["id"], "url": issue["html_url"],
            "state": issue["state"]}


def comment(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    path = f"repos/{data['owner']}/{data['repo']}/issues/{data['issue_number']}/comments"
    made = ctx.client.request("POST", path, json={"body": data["body"]}, headers=HEADERS).json()
    return {"id": made["id"], "url": made["html_url"]}


def check(ctx: ActionContext) -> str:
    user = ctx.client.request("GET", "user", headers=HEADERS).json()
    return f"signed in to GitHub as {user.get('login')}"


CONNECTOR = Connector(
    key="github",
    name="GitHub",
    description="Open issues and comment on them in GitHub repositories.",
    icon="github",
    auth=Auth(kind="api_key", header="Authorization", scheme="Bearer"),
    base_url="https://api.github.com",
    docs_url="https://docs.github.com/en/rest/issues",
    test=check,
    actions=(
        Action(key="create_issue", name="Create an issue",
               description="Open an issue in a repository.",
               input_schema=obj({**REPO, "title": {"type": "string", "minLength": 1},
                                 "body": {"type": "string"},
                                 "labels": {"type": "array", "items": {"type": "string"}},
                                 "assignees": {"type": "array", "items": {"type": "string"}}},
                                ["owner", "repo", "title"]),
               output_schema=obj({"number": {"type": "integer"}, "id": {"type": "integer"},
                                  "url": {"type": "string"}, "state": {"type": "string"}}),
               run=create_issue, side_effects=True),
        Action(key="comment", name="Comment on an issue",
               description="Add a comment to an issue or pull request.",
               input_schema=obj({**REPO, "issue_number": {"type": "integer", "minimum": 1},
                                 "body": {"type": "string", "minLength": 1}},
                                ["owner", "repo", "issue_number", "body"]),
               output_schema=obj({"id": {"type": "integer"}, "url": {"type": "string"}}),
               run=comment, side_effects=True),
    ),
)
