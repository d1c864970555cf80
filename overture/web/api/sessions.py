"""The caller's own sign-in sessions and password.

Only a person signed in with a session may use these: an API key acts for its creator
in a tenant, and must not be able to change their password or end their sessions.
"""

from __future__ import annotations

import uuid
from typing import Any

from apiflask import Schema
from apiflask.fields import UUID, Boolean, DateTime, Integer, List, Nested, String
from apiflask.validators import Length
from flask import current_app

from overture.platform.db import db
from overture.platform.errors import Forbidden
from overture.tenants import accounts
from overture.tenants import sessions as store
from overture.tenants.access import Principal
from overture.tenants.password_policy import MAX_LENGTH
from overture.web import sessions
from overture.web.api import api
from overture.web.api.schemas import Strict
from overture.web.auth import authenticated, current_principal
from overture.web.extensions import limiter

TAGS = ["Me"]


class SessionOut(Schema):
    id = UUID()
    current = Boolean(metadata={"description": "the session making this request"})
    auth_method = String(metadata={"description": "how it signed in: `password`"})
    created_at = DateTime()
    last_seen_at = DateTime(metadata={"description": "exact to within a minute"})
    idle_expires_at = DateTime(metadata={"description": "ends unless used before this"})
    expires_at = DateTime(metadata={"description": "ends at this time however active"})
    ip = String(allow_none=True, metadata={"description": "address it signed in from"})
    user_agent = String(allow_none=True)


class SessionList(Schema):
    items = List(Nested(SessionOut))


class PasswordChange(Strict):
    current_password = String(required=True, validate=Length(0, MAX_LENGTH))
    new_password = String(required=True, validate=Length(0, MAX_LENGTH),
                          metadata={"description": "at least 12 characters, not a common "
                                                   "password; no other rules"})


class PasswordChanged(Schema):
    other_sessions_ended = Integer()


class Reauthentication(Strict):
    password = String(required=True, validate=Length(0, MAX_LENGTH))


def _person() -> tuple[Principal, uuid.UUID]:
    """The signed-in person, and the id of the session they call from."""
    principal = current_principal()
    session_id = sessions.current_record_id()
    if principal.api_key is not None or session_id is None:
        raise Forbidden("only a person signed in with a session can manage their sessions "
                        "and password, not an API key")
    return principal, session_id


def _attempts_limit() -> str:
    return current_app.extensions["overture.settings"].login_rate_limit


def _attempts_key() -> str:
    return str(sessions.current_user_id())


# Guessing the password from a stolen session is limited per user, password changes
# and reauthentications together, at the rate of sign-in attempts; the API's own
# limits still apply.
password_checks = limiter.shared_limit(_attempts_limit, scope="password-check",
                                       key_func=_attempts_key, override_defaults=False)


@api.get("/me/sessions")
@authenticated
@api.output(SessionList)
@api.doc(tags=TAGS, summary="Your live sign-in sessions, the current one marked")
def list_my_sessions() -> dict[str, Any]:
    person, current = _person()
    records = store.live_sessions(person.user.id)
    return {"items": [{**_fields(r), "current": r.id == current} for r in records]}


SHOWN = ("id", "auth_method", "created_at", "last_seen_at", "idle_expires_at", "expires_at",
         "ip", "user_agent")


def _fields(record: store.UserSession) -> dict[str, Any]:
    return {name: getattr(record, name) for name in SHOWN}


@api.delete("/me/sessions/<session_id>")
@authenticated
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="End one of your sessions (the current one signs you out)",
         description="Needs a sign-in or reauthentication from the last 10 minutes "
                     "(403 `reauthentication-required` otherwise).")
def revoke_my_session(session_id: str) -> tuple[str, int]:
    person, _ = _person()
    sessions.require_recent_authentication()
    record = accounts.revoke_own_session(person.user, session_id)
    db.session.commit()
    sessions.forget_if_current(record.id)
    return "", 204


@api.post("/me/password")
@password_checks
@authenticated
@api.input(PasswordChange, arg_name="body")
@api.output(PasswordChanged)
@api.doc(tags=TAGS, summary="Change your password; your other sessions end")
def change_my_password(body: dict[str, Any]) -> dict[str, Any]:
    person, current = _person()
    try:
        ended = accounts.change_password(person.user, body["current_password"],
                                         body["new_password"], current)
    except accounts.WrongPassword:
        db.session.commit()  # the failed attempt is audited
        raise
    db.session.commit()
    sessions.mark_authenticated_now()
    return {"other_sessions_ended": ended}


@api.post("/me/reauthenticate")
@password_checks
@authenticated
@api.input(Reauthentication, arg_name="body")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Confirm your password, for acts that need a recent sign-in")
def reauthenticate(body: dict[str, Any]) -> tuple[str, int]:
    person, current = _person()
    try:
        accounts.reauthenticate(person.user, body["password"], current)
    except accounts.WrongPassword:
        db.session.commit()  # the failed attempt is audited
        raise
    db.session.commit()
    sessions.mark_authenticated_now()
    return "", 204
