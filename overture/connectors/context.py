"""What an action (or a polling trigger) gets: the connection's settings, its secret
values, and an HTTP client already pointed at the app with auth injected."""

from __future__ import annotations

import base64
import re
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from overture.connectors.client import ConnectionClient
from overture.connectors.errors import ActionFailed
from overture.connectors.spec import Connector
from overture.platform import audit, http
from overture.platform.db import db

ALLOWED_ORIGINS = "allowed_origins"  # the connection setting
MAX_ALLOWED_ORIGINS = 20
HOST_LABELS = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


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
    with `{setting}` placeholders filled from the connection's public values. A value
    fills a host name's labels and nothing else: `{site}` of
    `https://{site}.atlassian.net` cannot become `evil.example/#` and move the
    credentials' origin."""
    template = override or connector.base_url
    if template is None:
        return None
    for _, name, _, _ in string.Formatter().parse(template):
        value = values.get(name) if name else None
        if name and isinstance(value, str) and not HOST_LABELS.fullmatch(value):
            raise ActionFailed("misconfigured", f"{name!r} must be a host name's labels "
                                                "(letters, digits, '-' and '.')")
    try:
        return template.format(**{k: v for k, v in values.items() if isinstance(v, str)})
    except (KeyError, IndexError, ValueError) as exc:
        raise ActionFailed("misconfigured", f"the base URL needs {exc}") from exc


def holds_secrets(connector: Connector, values: dict[str, Any], headers: dict[str, str],
                  params: dict[str, str]) -> bool:
    """Whether the connection carries anything its origins must keep: auth the framework
    attaches, or secret values a connector may attach itself."""
    return bool(headers or params) or any(
        values.get(name) not in (None, "") for name in connector.auth.secret_fields())


def parse_origins(value: Any) -> list[str]:
    """The `allowed_origins` setting, normalised (`https://host:443`); ValueError says
    what is wrong. Origins only: http(s), a host, a port, nothing else."""
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of origins such as 'https://api.example.com'")
    if len(value) > MAX_ALLOWED_ORIGINS:
        raise ValueError(f"at most {MAX_ALLOWED_ORIGINS} origins")
    origins = []
    for raw in value:
        try:
            parts = urlsplit(raw.strip())
            valid = (parts.scheme in ("http", "https") and bool(parts.hostname)
                     and parts.username is None and parts.path in ("", "/")
                     and not parts.query and not parts.fragment and "#" not in raw
                     and "?" not in raw)
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            valid = False
        if not valid:
            raise ValueError(f"{raw!r} is not an origin: scheme://host[:port], http or "
                             "https, without a path")
        try:
            origins.append(http.origin_of(raw.strip()))
        except http.BlockedDestination as exc:
            raise ValueError(f"{raw!r} is not an origin: {exc.detail}") from exc
    return origins


def connection_origins(connection: Any, base_url: str | None) -> frozenset[str]:
    """Where the connection's credentials may go: its base URL's origin and the
    origins its `allowed_origins` setting lists."""
    try:
        listed = parse_origins((connection.settings or {}).get(ALLOWED_ORIGINS))
        own = [http.origin_of(base_url)] if base_url else []
    except (ValueError, http.BlockedDestination) as exc:
        detail = exc.detail if isinstance(exc, http.BlockedDestination) else str(exc)
        raise ActionFailed("misconfigured", f"the connection's origins: {detail}") from exc
    return frozenset(own + listed)


def record_refusal(connection_id: uuid.UUID, connector_key: str) -> Callable[[str], None]:
    """Audits a refused origin (`connection.origin_refused`: where, never what) and
    commits it at once: nothing else is pending while the app is called (`execute`
    and the poll commit before), and the refusal stays on record though the call fails."""
    def record(origin: str) -> None:
        audit.record("connection.origin_refused", target_type="connection",
                     target_id=connection_id,
                     details={"connector": connector_key, "origin": origin})
        db.session.commit()
    return record
