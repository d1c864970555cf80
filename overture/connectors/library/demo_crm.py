"""Demo CRM: the workspace's sample customer accounts, kept on the connection itself.

A built-in app for demos and for trying workflows offline; it calls no outside service.
Its records are the `accounts` list in the connection's settings (each an object with at
least an `email`), which the seeded demo fills with made-up customers and a builder may
edit with `PATCH /api/v1/connections/{id}`. Its actions read them the way a CRM connector
reads HubSpot, through the same framework: input validated, `connector.action_called`
audited, `action_calls` metered. It is not HubSpot and never pretends to be: to use a
real CRM, point the step at a `hubspot` connection instead.
"""

from __future__ import annotations

from typing import Any

from overture.connectors.context import ActionContext
from overture.connectors.errors import ActionFailed
from overture.connectors.spec import Action, Auth, Connector, obj

EMAIL = {"type": "string", "minLength": 3, "maxLength": 254, "pattern": r"^[^@\s]+@[^@\s]+$"}
ACCOUNT = {"type": "object", "description": "the account as stored on the connection",
           "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                          "email": {"type": "string"}, "company": {"type": "string"},
                          "plan": {"type": "string"}}}


def accounts(ctx: ActionContext) -> list[dict[str, Any]]:
    """The connection's accounts; a misshapen list is the builder's to fix."""
    stored = ctx.settings.get("accounts")
    if stored is None:
        raise ActionFailed("misconfigured", "the connection has no sample accounts: set "
                                            "settings.accounts to a list of accounts")
    if not isinstance(stored, list) or not all(
            isinstance(a, dict) and isinstance(a.get("email"), str) for a in stored):
        raise ActionFailed("misconfigured", "settings.accounts must be a list of objects, "
                                            "each with an email")
    return stored


def find_account(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    wanted = data["email"].strip().lower()
    found = next((a for a in accounts(ctx) if a["email"].strip().lower() == wanted), None)
    return {"found": found is not None, "account": found}


def list_accounts(ctx: ActionContext, data: dict[str, Any]) -> dict[str, Any]:
    stored = accounts(ctx)
    limit = int(data.get("limit", 50))
    return {"accounts": stored[:limit], "total": len(stored)}


def check(ctx: ActionContext) -> str:
    return f"{len(accounts(ctx))} sample account(s) on this connection; nothing is called"


CONNECTOR = Connector(
    key="demo_crm",
    name="Demo CRM (sample accounts)",
    description="Built in, for demos and offline tests: looks up the made-up customer "
                "accounts stored on this connection (settings.accounts). Calls no outside "
                "service.",
    icon="database",
    auth=Auth(kind="none"),
    base_url=None,
    tags=("demo", "crm"),
    test=check,
    actions=(
        Action(key="find_account", name="Find an account by email",
               description="The sample account whose email matches (case-insensitive), "
                           "with its plan, seats and billing history; found is false when "
                           "there is none.",
               input_schema=obj({"email": {**EMAIL, "description": "the customer's email"}},
                                ["email"]),
               output_schema=obj({"found": {"type": "boolean"},
                                  "account": {"anyOf": [ACCOUNT, {"type": "null"}]}}),
               run=find_account),
        Action(key="list_accounts", name="List accounts",
               description="The sample accounts, in stored order.",
               input_schema=obj({"limit": {"type": "integer", "minimum": 1,
                                           "maximum": 500}}),
               output_schema=obj({"accounts": {"type": "array", "items": ACCOUNT},
                                  "total": {"type": "integer"}}),
               run=list_accounts),
    ),
)
