"""What a connector declares: its auth, base URL, actions and triggers.

A connector is one module in `connectors/library/` with a module-level `CONNECTOR`.
An action's input JSON Schema validates calls and doubles as the LLM tool schema.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from overture.connectors.context import ActionContext, PollContext

AuthKind = Literal["none", "api_key", "basic", "oauth2", "custom"]


@dataclass(frozen=True)
class Field:
    """A credential field a connection needs (custom auth, or extras like a domain)."""

    name: str
    secret: bool = False
    required: bool = True
    description: str = ""


@dataclass(frozen=True)
class Auth:
    kind: AuthKind = "none"
    # api_key: where the key goes
    header: str = "Authorization"
    scheme: str | None = "Bearer"  # "Bearer <key>"; None sends the bare key
    query_param: str | None = None
    # oauth2 (authorization code)
    authorize_url: str | None = None
    token_url: str | None = None
    scopes: tuple[str, ...] = ()
    scope_separator: str = " "  # RFC 6749 says space; some apps (Slack) want ","
    # extra query parameters of the authorize URL, e.g. Google's access_type=offline
    authorize_params: tuple[tuple[str, str], ...] = ()
    # custom fields (and extra public settings for any kind)
    fields: tuple[Field, ...] = ()
    # custom: builds the auth headers from the connection's values (public and secret),
    # for schemes the kinds above do not spell (Zendesk's "{email}/token:{api_token}").
    # Raise ActionFailed("misconfigured", ...) when a value it needs is missing.
    headers: Callable[[dict[str, Any]], dict[str, str]] | None = None

    def secret_fields(self) -> list[str]:
        base = {"api_key": ["api_key"], "basic": ["password"],
                "oauth2": ["access_token", "refresh_token", "client_secret"]}.get(self.kind, [])
        return base + [f.name for f in self.fields if f.secret]


@dataclass(frozen=True)
class Action:
    key: str
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    run: Callable[[ActionContext, dict[str, Any]], Any]
    side_effects: bool = False
    idempotent: bool = False  # honours an idempotency key, so retries cannot double an effect


@dataclass(frozen=True)
class Trigger:
    """A webhook (the app calls us) or a polling trigger (we ask the app). Each event
    carries a dedupe key, so an event never starts two runs."""

    key: str
    name: str
    description: str
    kind: Literal["webhook", "polling"]
    output_schema: dict[str, Any]
    dedupe_key: Callable[[dict[str, Any]], str]
    poll: Callable[[PollContext], list[dict[str, Any]]] | None = None


@dataclass(frozen=True)
class Connector:
    key: str
    name: str
    description: str
    icon: str
    auth: Auth
    base_url: str | None
    actions: tuple[Action, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    docs_url: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    # A cheap call that proves the credentials work (`POST /connections/{id}/test`).
    test: Callable[[ActionContext], Any] | None = None

    def action(self, key: str) -> Action | None:
        return next((a for a in self.actions if a.key == key), None)

    def trigger(self, key: str) -> Trigger | None:
        return next((t for t in self.triggers if t.key == key), None)


def obj(properties: dict[str, Any], required: list[str] | None = None,
        additional: bool = False) -> dict[str, Any]:
    """A JSON Schema object, the way every action spells its input and output."""
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "additionalProperties": additional}
    if required:
        schema["required"] = required
    return schema
