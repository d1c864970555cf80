"""What an action (or a polling trigger) gets: the connection's settings, its secret
values, and an HTTP client already pointed at the app with auth injected."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import Any

from overture.connectors.client import ConnectionClient
from overture.connectors.errors import ActionFailed
from overture.connectors.spec import Connector


@dataclass
class ActionContext:
    connector: Connector
    connection_id: uuid.UUID
    settings: dict[str, Any]
    values: dict[str, Any] = field(repr=False)  # public and secret credential values
    client: ConnectionClient
    idempotency_key: str | None = None
    timeout: float = 30.0

    def value(self, name: str, default: Any = None) -> Any:
        """A credential or connection setting (settings win: they are per connection)."""
        if name in self.settings:
            return self.settings[name]
        return self.values.get(name, default)

    def require(self, name: str) -> Any:
        value = self.value(name)
        if value in (None, ""):
            raise ActionFailed("misconfigured", f"the connection has no {name!r}")
        return value


@dataclass
class PollContext(ActionContext):
    """A polling trigger asks the app with the same means, and keeps a cursor: `state`
    is what the previous poll left (empty the first time); change it in place and the
    engine stores it with the events this poll returned, in one commit."""

    state: dict[str, Any] = field(default_factory=dict)


def auth_headers(connector: Connector, values: dict[str, Any]) -> tuple[dict[str, str],
                                                                        dict[str, str]]:
    """(headers, query params) that carry the connection's credentials. A connector
    whose `Auth.headers` builds them (custom schemes) decides alone."""
    auth = connector.auth
    if auth.headers is not None:
        return dict(auth.headers(values)), {}
    if auth.kind == "api_key":
        key = str(values.get("api_key", ""))
        if auth.query_param:
            return {}, {auth.query_param: key}
        return {auth.header: f"{auth.scheme} {key}" if auth.scheme else key}, {}
    if auth.kind == "basic":
        pair = f"{values.get('username', '')}:{values.get('password', '')}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}, {}
    if auth.kind == "oauth2":
        return {"Authorization": f"Bearer {values.get('access_token', '')}"}, {}
    return {}, {}


def base_url_for(connector: Connector, override: str | None, values: dict[str, Any]) -> str | None:
    """The connection's base URL (self-hosted apps, regions, tests) or the connector's,
    with `{setting}` placeholders filled from the connection's public values."""
    template = override or connector.base_url
    if template is None:
        return None
    try:
        return template.format(**{k: v for k, v in values.items() if isinstance(v, str)})
    except (KeyError, IndexError) as exc:
        raise ActionFailed("misconfigured", f"the base URL needs {exc}") from exc
