"""OAuth2 authorization code for connections, through Authlib.

The authorize URL carries a `state` bound to the signed-in user's session; the
callback checks it, exchanges the code and seals the token set in the vault. Tokens
are refreshed shortly before they expire, under a lock on the connection row, so
when many calls race only one refreshes and the rest use its token. A refresh the
app refuses marks the connection broken, audits it, and fails the call clearly.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.httpx_client import OAuth2Client
from sqlalchemy import select

from overture.connectors.context import base_url_for, connection_origins, record_refusal
from overture.connectors.errors import (
    ActionFailed,
    ConnectionBroken,
    DestinationBlocked,
    OriginRefused,
)
from overture.connectors.models import Connection, ConnectionStatus
from overture.connectors.spec import Connector
from overture.platform import audit, http
from overture.platform.db import db
from overture.tenants import vault
from overture.tenants.vault import use_credential
from overture.tenants.vault_models import Credential

# Authlib's client speaks httpx2, as `platform.http` does.
HTTP_ERRORS = (http.HTTPError,)
TIMEOUTS = (http.TimeoutException,)
STATUS_ERRORS = (http.HTTPStatusError,)

REFRESH_MARGIN = timedelta(seconds=60)
STATE_TTL = 600.0
_local_locks: dict[uuid.UUID, threading.Lock] = {}
_locks_guard = threading.Lock()


def _endpoint(connection: Connection, connector: Connector, name: str) -> str:
    """A connector's OAuth endpoint, or the connection's override (self-hosted, tests).
    An override is a place the client secret and tokens go, so it must be on the
    connection's own origins (its base URL's or its `allowed_origins`), like any
    request with its credentials."""
    declared = getattr(connector.auth, name)
    url = str((connection.settings or {}).get(name) or declared or "")
    if not url:
        raise ActionFailed("misconfigured", f"{connector.key} has no {name}")
    if url != declared:
        try:
            origin = http.origin_of(url)
        except http.BlockedDestination as exc:
            raise DestinationBlocked(exc.detail) from exc
        base_url = base_url_for(connector, connection.base_url,
                                {**(connection.settings or {})})
        allowed = connection_origins(connection, base_url)
        if origin not in allowed:
            record_refusal(connection.id, connector.key)(origin)
            raise OriginRefused(origin, f"the connection's {name} must be on its own "
                                        f"origins ({', '.join(sorted(allowed)) or 'none'}), "
                                        f"not {origin}")
    return url


def _client(values: dict[str, Any], connector: Connector, redirect_uri: str | None = None,
            token: dict[str, Any] | None = None) -> OAuth2Client:
    """Authlib's client on the guarded transport: the token endpoint is checked where
    the connection is made, like every outbound request."""
    return OAuth2Client(client_id=values.get("client_id"),
                        client_secret=values.get("client_secret"),
                        scope=connector.auth.scope_separator.join(connector.auth.scopes) or None,
                        redirect_uri=redirect_uri, token=token, timeout=30.0,
                        follow_redirects=False, transport=http.transport(), trust_env=False)


def authorization_url(connection: Connection, connector: Connector, redirect_uri: str,
                      session: dict[str, Any], return_to: str | None = None) -> str:
    """Where to send the user; the state is remembered in their session only, with the
    local page (`return_to`, a path) the callback sends them back to."""
    values = use_credential(connection.credential_id, f"{connector.key}.authorize")
    state = secrets.token_urlsafe(24)
    url, _ = _client(values, connector, redirect_uri).create_authorization_url(
        _endpoint(connection, connector, "authorize_url"), state=state,
        **dict(connector.auth.authorize_params))
    pending = {k: v for k, v in session.get("oauth_states", {}).items()
               if v["at"] > time.time() - STATE_TTL}
    pending[state] = {"connection": str(connection.id), "tenant": str(connection.tenant_id),
                      "at": time.time(),
                      "return_to": return_to if _local_path(return_to) else None}
    session["oauth_states"] = pending
    return url


def _local_path(path: str | None) -> bool:
    """A path on this site ("/x"), never another host ("//x", "/\\x", "http:...")."""
    return path is not None and path.startswith("/") and not path.startswith(("//", "/\\"))


def pop_state(session: dict[str, Any], state: str | None) -> dict[str, Any] | None:
    """The pending authorisation this state belongs to, once, from this session only."""
    pending = dict(session.get("oauth_states", {}))
    found = pending.pop(state or "", None)
    session["oauth_states"] = pending
    if found is None or found["at"] <= time.time() - STATE_TTL:
        return None
    return found


def complete(connection: Connection, connector: Connector, code: str, redirect_uri: str) -> None:
    """Exchange the code for a token set and seal it; the connection becomes active."""
    values = use_credential(connection.credential_id, f"{connector.key}.authorize")
    try:
        token = _client(values, connector, redirect_uri).fetch_token(
            _endpoint(connection, connector, "token_url"), code=code,
            grant_type="authorization_code")
    except http.BlockedDestination as exc:
        raise DestinationBlocked(exc.detail) from exc
    except (AuthlibBaseError, ValueError, *HTTP_ERRORS) as exc:
        transient = _transient(exc)
        if transient is not None:
            raise transient from exc
        raise ActionFailed("auth_failed", f"the app refused the authorisation code: {exc}") from exc
    _store(connection, token)
    connection.status, connection.broken_reason = ConnectionStatus.ACTIVE, None
    audit.record("connection.authorized", target_type="connection", target_id=connection.id,
                 details={"connector": connector.key, "scope": token.get("scope")})


TRANSIENT_OAUTH_ERRORS = frozenset({"temporarily_unavailable", "server_error", "ratelimited"})


def _transient(exc: Exception) -> ActionFailed | None:
    """A token endpoint that is slow, down or busy (a retryable failure), or None when
    the app refused (invalid_grant, invalid_client, a 4xx page)."""
    if isinstance(exc, TIMEOUTS):
        return ActionFailed("timeout", "the app's token endpoint did not answer in time")
    if isinstance(exc, STATUS_ERRORS):
        status = exc.response.status_code
        if status == 429:
            return ActionFailed("rate_limited", "the app's token endpoint is rate limited",
                                http_status=status)
        if status >= 500:
            return ActionFailed("http_5xx", f"the app's token endpoint failed ({status})",
                                http_status=status)
        return None
    if isinstance(exc, HTTP_ERRORS):
        return ActionFailed("connection", f"cannot reach the app's token endpoint: {exc}")
    error = getattr(exc, "error", None)
    if error in TRANSIENT_OAUTH_ERRORS:
        reason = "rate_limited" if error == "ratelimited" else "http_5xx"
        return ActionFailed(reason, f"the app's token endpoint is unavailable ({error})")
    return None


def _store(connection: Connection, token: dict[str, Any]) -> None:
    credential = db.session.get(Credential, connection.credential_id)
    new = {k: str(token[k]) for k in ("access_token", "refresh_token") if token.get(k)}
    keep = {"client_secret"} & set(credential.secret_fields)
    if "refresh_token" not in new and "refresh_token" in credential.secret_fields:
        keep.add("refresh_token")
    vault.replace_secrets(credential, new, keep)
    credential.secret_fields = sorted(set(credential.secret_fields) | set(new))
    expires_at = token.get("expires_at") or (time.time() + float(token["expires_in"])
                                             if token.get("expires_in") else None)
    public = {**credential.public, "token_type": token.get("token_type", "Bearer"),
              "scope": token.get("scope") or credential.public.get("scope")}
    public["expires_at"] = (datetime.fromtimestamp(float(expires_at), UTC).isoformat()
                            if expires_at else None)
    credential.public = public


def _expiring(credential: Credential) -> bool:
    raw = (credential.public or {}).get("expires_at")
    if not raw:
        return False
    return datetime.fromisoformat(raw) - datetime.now(UTC) <= REFRESH_MARGIN


def _local_lock(connection_id: uuid.UUID) -> threading.Lock:
    with _locks_guard:
        return _local_locks.setdefault(connection_id, threading.Lock())


def ensure_fresh(connection: Connection, connector: Connector) -> None:
    """Refresh the token set if it is about to expire; exactly one caller refreshes."""
    credential = db.session.get(Credential, connection.credential_id)
    if credential is None or not _expiring(credential):
        return
    with _local_lock(connection.id):  # threads of this process; the row lock covers others
        db.session.commit()
        locked = db.session.scalars(select(Connection).where(Connection.id == connection.id)
                                    .with_for_update()).one()
        credential = db.session.scalars(select(Credential).where(
            Credential.id == locked.credential_id).execution_options(populate_existing=True)
        ).one()
        if locked.status == ConnectionStatus.BROKEN:
            db.session.commit()
            raise ConnectionBroken("broken", f"connection {locked.name!r} needs "
                                   f"re-authorisation: {locked.broken_reason}")
        if not _expiring(credential):
            db.session.commit()  # someone refreshed while we waited
            return
        _refresh(locked, connector, credential)


def _refresh(connection: Connection, connector: Connector, credential: Credential) -> None:
    values = vault.use_in_transaction(credential, f"{connector.key}.refresh")
    try:
        token = _client(values, connector).refresh_token(
            _endpoint(connection, connector, "token_url"),
            refresh_token=values.get("refresh_token"))
    except http.BlockedDestination as exc:
        db.session.commit()  # releases the row lock; the connection stays as it is
        raise DestinationBlocked(exc.detail) from exc
    except (AuthlibBaseError, ValueError, *HTTP_ERRORS) as exc:
        transient = _transient(exc)
        if transient is not None:  # down or busy is not a refusal: the connection stays
            db.session.commit()  # releases the row lock, keeps `credential.used`
            raise transient from exc
        connection.status = ConnectionStatus.BROKEN
        connection.broken_reason = f"token refresh refused: {exc}"[:500]
        audit.record("connection.broken", target_type="connection", target_id=connection.id,
                     details={"connector": connector.key, "reason": "refresh refused"})
        db.session.commit()
        raise ConnectionBroken("refresh_failed", f"connection {connection.name!r} could not "
                               "refresh its token; re-authorise it") from exc
    _store(connection, token)
    audit.record("connection.token_refreshed", target_type="connection",
                 target_id=connection.id, details={"connector": connector.key})
    db.session.commit()
