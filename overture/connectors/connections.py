"""Connections: create (with credentials sealed in the vault), list, read, update,
delete, and test."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from limits import parse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from overture.connectors import registry
from overture.connectors.context import ALLOWED_ORIGINS, parse_origins
from overture.connectors.errors import ActionFailed
from overture.connectors.execute import context_for
from overture.connectors.models import Connection, ConnectionStatus
from overture.platform import audit
from overture.platform.db import db, get_or_404
from overture.platform.errors import Conflict, ValidationFailed
from overture.platform.pagination import Page, paginate
from overture.platform.validation import clean_name
from overture.tenants import credentials
from overture.tenants.access import Access


def _check_rate(rate: str | None) -> str | None:
    if rate is None:
        return None
    try:
        parse(rate)
    except ValueError as exc:
        raise ValidationFailed.field("rate_limit", "like '10 per second' or '100/minute'") \
            from exc
    return rate


def _check_settings(settings: dict[str, Any] | None) -> dict[str, Any]:
    """`allowed_origins`, if set, is stored normalised (and refused unless origins)."""
    settings = dict(settings or {})
    if ALLOWED_ORIGINS in settings:
        try:
            settings[ALLOWED_ORIGINS] = parse_origins(settings[ALLOWED_ORIGINS])
        except ValueError as exc:
            raise ValidationFailed.field(f"settings.{ALLOWED_ORIGINS}", str(exc)) from exc
    return settings


def _check_base_url(base_url: str | None) -> str | None:
    """An http(s) URL with a host ({setting} placeholders may fill its labels)."""
    if not base_url:
        return None
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationFailed.field("base_url", "must be an http(s) URL with a host")
    return base_url


def _origin_changes(connection: Connection, base_url: Any,
                    settings: dict[str, Any] | None) -> dict[str, Any]:
    """What the audit log keeps of a change to where the credentials may go."""
    changes: dict[str, Any] = {}
    if base_url is not None and (base_url or None) != connection.base_url:
        changes["base_url"] = base_url or None
    old = (connection.settings or {}).get(ALLOWED_ORIGINS) or []
    if settings is not None and (settings.get(ALLOWED_ORIGINS) or []) != old:
        changes[ALLOWED_ORIGINS] = settings.get(ALLOWED_ORIGINS) or []
    return changes


def create(access: Access, *, connector_key: str, name: str,
           credential_fields: dict[str, Any] | None = None,
           credential_id: uuid.UUID | None = None, base_url: str | None = None,
           settings: dict[str, Any] | None = None, rate_limit: str | None = None) -> Connection:
    """A connection; its credentials go into the vault (or reuse a stored credential)."""
    access.require("credential.manage")
    try:
        connector = registry.get(connector_key)
    except Exception as exc:
        raise ValidationFailed.field("connector_key", f"no connector {connector_key!r}") from exc
    name = clean_name(name)
    kind = connector.auth.kind
    # Custom auth whose every field is optional (an MCP server without a token), given
    # none: nothing to keep in the vault.
    optional_only = kind == "custom" and not credential_fields and not any(
        f.required for f in connector.auth.fields)
    if kind != "none" and credential_id is None and not optional_only:
        credential = credentials.create(
            access, name=f"{name} ({connector.key})", connector_key=connector.key,
            kind="custom" if kind == "custom" else kind, fields=credential_fields or {},
            secret_fields=connector.auth.secret_fields() if kind == "custom" else None)
        credential_id = credential.id
    elif credential_id is not None:
        credentials.get_credential(access, credential_id)
    status = ConnectionStatus.PENDING if kind == "oauth2" and not (
        credential_fields or {}).get("access_token") else ConnectionStatus.ACTIVE
    connection = Connection(name=name, connector_key=connector.key, credential_id=credential_id,
                            base_url=_check_base_url(base_url),
                            settings=_check_settings(settings), status=status,
                            rate_limit=_check_rate(rate_limit),
                            created_by_id=access.principal.user.id)
    _flush(connection)
    audit.record("connection.created", target_type="connection", target_id=connection.id,
                 details={"name": name, "connector": connector.key, "status": status,
                          "base_url": connection.base_url,
                          ALLOWED_ORIGINS: connection.settings.get(ALLOWED_ORIGINS, [])})
    return connection


def _flush(connection: Connection) -> None:
    try:
        with db.session.begin_nested():
            db.session.add(connection)
            db.session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a connection named {connection.name!r} exists") from exc


def list_connections(access: Access, cursor: str | None, limit: int | None,
                     connector_key: str | None = None) -> Page[Connection]:
    access.require("credential.read")
    stmt = select(Connection)
    if connector_key:
        stmt = stmt.where(Connection.connector_key == connector_key)
    return paginate(stmt, Connection.id, cursor, limit)


def get_connection(access: Access, connection_id: Any) -> Connection:
    access.require("credential.read")
    return get_or_404(Connection, connection_id, "connection")


def update(access: Access, connection: Connection, *, name: str | None = None,
           base_url: Any = None, settings: dict[str, Any] | None = None,
           rate_limit: Any = None) -> Connection:
    access.require("credential.manage")
    settings = _check_settings(settings) if settings is not None else None
    changes = _origin_changes(connection, base_url, settings)
    if name is not None:
        connection.name = clean_name(name)
    if base_url is not None:
        connection.base_url = _check_base_url(base_url)
    if settings is not None:
        connection.settings = settings
    if rate_limit is not None:
        connection.rate_limit = _check_rate(rate_limit or None)
    _flush(connection)
    audit.record("connection.updated", target_type="connection", target_id=connection.id,
                 details={"name": connection.name, **changes})
    return connection


def delete(access: Access, connection: Connection) -> None:
    access.require("credential.manage")
    audit.record("connection.deleted", target_type="connection", target_id=connection.id,
                 details={"name": connection.name, "connector": connection.connector_key})
    db.session.delete(connection)
    db.session.flush()


def test(access: Access, connection: Connection) -> dict[str, Any]:
    """Ask the app whether the connection works, with the connector's own check."""
    access.require("credential.read")
    connector = registry.get(connection.connector_key)
    if connector.test is None:
        return {"ok": True, "detail": f"{connector.name} has no check; nothing was called"}
    ctx = context_for(connection, connector, f"{connector.key}.test")
    connection_id = connection.id
    db.session.commit()
    try:
        detail = connector.test(ctx)
    except ActionFailed as failure:
        audit.record("connection.tested", target_type="connection", target_id=connection_id,
                     details={"ok": False, "reason": failure.reason})
        db.session.commit()
        return {"ok": False, "reason": failure.reason, "detail": failure.detail}
    audit.record("connection.tested", target_type="connection", target_id=connection_id,
                 details={"ok": True})
    db.session.commit()
    return {"ok": True, "detail": str(detail or "the app accepted the credentials")}


def create_placeholder(access: Access, *, connector_key: str, name: str,
                       base_url: str | None = None, settings: dict[str, Any] | None = None,
                       rate_limit: str | None = None) -> Connection:
    """A connection without credentials yet (made from a template): `pending` until the
    workspace authorises it (OAuth2) or gives it credentials (`fill_placeholder`)."""
    access.require("credential.manage")
    connector = registry.find(connector_key)
    if connector is None:
        raise ValidationFailed.field("connector_key", f"no connector {connector_key!r}")
    needs_credentials = connector.auth.kind != "none"
    connection = Connection(
        name=clean_name(name), connector_key=connector.key, credential_id=None,
        base_url=_check_base_url(base_url), settings=_check_settings(settings),
        status=ConnectionStatus.PENDING if needs_credentials else ConnectionStatus.ACTIVE,
        rate_limit=_check_rate(rate_limit), created_by_id=access.principal.user.id)
    _flush(connection)
    audit.record("connection.created", target_type="connection", target_id=connection.id,
                 details={"name": connection.name, "connector": connector.key,
                          "status": connection.status, "placeholder": True,
                          "base_url": connection.base_url,
                          ALLOWED_ORIGINS: connection.settings.get(ALLOWED_ORIGINS, [])})
    return connection


def fill_placeholder(access: Access, connection: Connection, *,
                     credential_fields: dict[str, Any] | None = None,
                     credential_id: uuid.UUID | None = None) -> Connection:
    """Give a connection made without credentials its own (sealed in the vault)."""
    access.require("credential.manage")
    if connection.credential_id is not None:
        raise Conflict("this connection has its credentials; change them in the vault")
    connector = registry.get(connection.connector_key)
    kind = connector.auth.kind
    if kind == "none":
        raise ValidationFailed.field("credentials", f"{connector.name} takes no credentials")
    if credential_id is None:
        credential_id = credentials.create(
            access, name=f"{connection.name} ({connector.key})", connector_key=connector.key,
            kind="custom" if kind == "custom" else kind, fields=credential_fields or {},
            secret_fields=connector.auth.secret_fields() if kind == "custom" else None).id
    else:
        credentials.get_credential(access, credential_id)
    connection.credential_id = credential_id
    if kind != "oauth2" or (credential_fields or {}).get("access_token"):
        connection.status = ConnectionStatus.ACTIVE
    _flush(connection)
    audit.record("connection.credentials_set", target_type="connection",
                 target_id=connection.id, details={"name": connection.name})
    return connection
