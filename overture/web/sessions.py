"""Flask sessions kept server-side once someone signs in.

Before sign-in a session is Flask's signed cookie: it only carries the CSRF token of
the sign-in form, and there is nothing in it to revoke. Signing in (`begin`) makes it
server-side: a fresh random id goes into the cookie, the contents move into a
`user_sessions` row (`overture.tenants.sessions`), and the anonymous contents,
CSRF token included, are dropped, so nothing planted before sign-in survives it
(session fixation). From then on the row is the session: revoking it ends the session
on the next request, whatever the browser kept.

The two kinds share the cookie. The id is 43 URL-safe characters with no dot, while a
signed cookie always has one before its signature, so each value is read one way only.

Flask-Login still keeps its keys in the session, but its user loader trusts only the
row's user: a signed cookie naming a user (from before this scheme, or forged with a
leaked key) signs no one in.

The cookie is host-only (no `Domain` attribute), and the row records the host the
session was signed in on: a cookie presented on any other host (copied to another
tenant's custom domain, say) is refused, and the request is anonymous there. The
session itself is left alone: it still works where it was made.

The row is read by the first `before_request` hook, inside request handling (so a
database failure is answered like any other) and not for static files. Changes to the
contents are written on their own connection, so they never carry a failed request's
half-done work into a commit.
"""

from __future__ import annotations

import copy
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app, g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import login_user, logout_user
from flask_wtf.csrf import generate_csrf
from sqlalchemy import update
from werkzeug.wrappers import Response

from overture.platform.db import db, utcnow
from overture.platform.errors import ReauthenticationRequired
from overture.platform.logging import get_logger
from overture.tenants import sessions as store
from overture.tenants.models import User
from overture.tenants.users import get_active_user
from overture.web.extensions import client_address
from overture.web.hosts import request_hostname

log = get_logger(__name__)
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")


class ServerSession(SecureCookieSession):
    """Anonymous (`token` None: a signed cookie, as Flask's own) or signed in."""

    def __init__(self, initial: Any = None, token: str | None = None) -> None:
        super().__init__(initial)
        self.token = token
        self.pending = token is not None  # the row is read by `resolve`
        self.record_id: uuid.UUID | None = None
        self.user_id: uuid.UUID | None = None
        self.authenticated_at: datetime | None = None
        self.stored: dict[str, Any] | None = None  # the contents as the row holds them
        self.issue_cookie = False
        self.ended = False

    def attach(self, record: store.UserSession, token: str, contents: dict[str, Any]) -> None:
        super().clear()
        super().update(contents)
        self.token, self.pending, self.ended = token, False, False
        self.record_id, self.user_id = record.id, record.user_id
        self.stored = copy.deepcopy(contents)
        self.authenticated_at = record.authenticated_at
        self.modified = False

    def detach(self) -> None:
        """Anonymous from here on; the browser's cookie is replaced or dropped."""
        self.clear()
        self.token, self.pending, self.ended, self.issue_cookie = None, False, True, False
        self.record_id = self.user_id = self.stored = self.authenticated_at = None


class ServerSessionInterface(SecureCookieSessionInterface):
    session_class = ServerSession

    def open_session(self, app: Flask, request: Any) -> ServerSession | None:
        value = request.cookies.get(self.get_cookie_name(app))
        if value and SESSION_ID.fullmatch(value):
            return ServerSession(token=value)
        return super().open_session(app, request)  # type: ignore[return-value]

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        if session.pending:
            return  # never read (a static file): leave the cookie as it is
        if session.token is None:
            if session.ended:
                session.modified = True  # replace or drop the ended session's cookie
            super().save_session(app, session, response)
            return
        response.vary.add("Cookie")
        if dict(session) != session.stored:
            _store_contents(session.record_id, self.serializer.dumps(dict(session)))
        if session.issue_cookie:
            # No `domain`: host-only, so no other host (a sibling subdomain, another
            # tenant's domain under the same parent) is ever sent it.
            response.set_cookie(
                self.get_cookie_name(app), session.token, httponly=self.get_cookie_httponly(app),
                path=self.get_cookie_path(app),
                secure=self.get_cookie_secure(app), samesite=self.get_cookie_samesite(app),
                partitioned=self.get_cookie_partitioned(app))


def _store_contents(record_id: uuid.UUID, contents: str) -> None:
    try:
        with db.engine.begin() as connection:
            connection.execute(update(store.UserSession)
                               .where(store.UserSession.id == record_id,
                                      store.UserSession.revoked_at.is_(None))
                               .values(data=contents))
    except Exception:  # the response is already made; the change is lost, not the request
        log.exception("session.save_failed", session_id=str(record_id))


def lifetimes() -> store.Lifetimes:
    settings = current_app.extensions["overture.settings"]
    return store.Lifetimes(idle=timedelta(minutes=settings.session_idle_minutes),
                           absolute=timedelta(hours=settings.session_max_hours))


def _current() -> ServerSession:
    return session._get_current_object()  # type: ignore[attr-defined, no-any-return]


def resolve() -> None:
    """Read the signed-in session's row (the first `before_request` hook)."""
    current = _current()
    if not getattr(current, "pending", False) or request.endpoint == "static":
        return
    token = current.token or ""
    record = store.find_live(token)
    if record is None or not record.valid_on(request_hostname()):
        current.detach()
        return
    serializer = current_app.session_interface.serializer  # type: ignore[attr-defined]
    current.attach(record, token, serializer.loads(record.data))
    if store.touch_if_due(record, lifetimes()):
        db.session.commit()  # nothing else has happened in this request yet


def begin(user: User, method: str = "password") -> store.UserSession:
    """Sign `user` in on a new server-side session; the caller commits."""
    current = _current()
    if current.record_id is not None:  # signing in again over a live session ends it
        store.revoke(current.record_id, store.RevokedBecause.REPLACED)
    current.detach()
    g.pop("csrf_token", None)  # Flask-WTF caches the token per request
    login_user(user)
    generate_csrf()  # a fresh CSRF token, bound to the new session
    contents = current_app.session_interface.serializer.dumps(dict(current))  # type: ignore[attr-defined]
    record, token = store.start(user.id, lifetimes(), data=contents, ip=client_address(),
                                user_agent=request.headers.get("User-Agent"),
                                host=request_hostname(), method=method)
    current.attach(record, token, dict(current))
    current.issue_cookie = True
    return record


def end(reason: str = store.RevokedBecause.SIGNED_OUT) -> None:
    """Sign out: revoke this session's row; the caller commits."""
    current = _current()
    if current.record_id is not None:
        store.revoke(current.record_id, reason)
    logout_user()
    current.detach()


def forget_if_current(record_id: uuid.UUID) -> None:
    """The current session was revoked elsewhere in this request: drop its cookie."""
    current = _current()
    if current.record_id == record_id:
        logout_user()
        current.detach()


def require_recent_authentication() -> None:
    """For sensitive acts (ASVS V7.5.2): the password must have been proven lately."""
    proven = _current().authenticated_at
    if proven is None or utcnow() - proven > store.RECENT_AUTHENTICATION:
        minutes = int(store.RECENT_AUTHENTICATION.total_seconds() // 60)
        raise ReauthenticationRequired(
            f"confirm your password first (POST /api/v1/me/reauthenticate): this needs a "
            f"sign-in from the last {minutes} minutes")


def mark_authenticated_now() -> None:
    _current().authenticated_at = utcnow()


def current_record_id() -> uuid.UUID | None:
    return _current().record_id


def current_user_id() -> uuid.UUID | None:
    return _current().user_id


def load_user(user_id: str) -> User | None:
    """Flask-Login's user loader: only the user of a live server-side session."""
    current = _current()
    session_user = getattr(current, "user_id", None)
    if session_user is None or str(session_user) != user_id:
        return None
    return get_active_user(current.user_id)


def install(app: Flask) -> None:
    app.session_interface = ServerSessionInterface()
    # First of all hooks: CSRF checks and rate-limit keys read the session.
    app.before_request_funcs.setdefault(None, []).insert(0, resolve)
