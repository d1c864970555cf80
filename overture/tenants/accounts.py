"""Acts on a person's account: create a platform admin, change the password, end
sessions, disable and enable. Users are platform-level, so each act is audited in the
platform's log."""

from __future__ import annotations

import uuid

from overture.platform import audit
from overture.platform.db import PLATFORM_TENANT_ID
from overture.platform.errors import Conflict, NotFound, ValidationFailed
from overture.platform.ids import parse_id
from overture.platform.validation import clean_name
from overture.tenants import password_policy, sessions
from overture.tenants.models import User, UserStatus
from overture.tenants.passwords import hash_password, verify_password
from overture.tenants.sessions import RevokedBecause, UserSession
from overture.tenants.users import create_user, get_user


class WrongPassword(ValidationFailed):
    """The password given as the person's own is not. Audited before it is raised, so
    the caller commits before answering."""

    def __init__(self, field: str) -> None:
        super().__init__([{"field": field, "message": "is not your current password"}])


def _record(action: str, user: User, actor: audit.Actor | None = None,
            **details: object) -> None:
    audit.record(action, target_type="user", target_id=user.id, details=details or None,
                 tenant_id=PLATFORM_TENANT_ID, actor=actor)


def create_platform_admin(email: str, password: str, name: str = "",
                          actor: audit.Actor | None = None) -> User:
    user = create_user(email, password, name, is_platform_admin=True)
    _record("user.created", user, actor, email=user.email, platform_admin=True)
    return user


def change_password(user: User, current: str, new: str, keep_session: uuid.UUID) -> int:
    """Set a new password and end every other session of the user (the one making the
    change stays signed in, and counts as just authenticated); how many ended."""
    if not verify_password(user.password_hash, current):
        _record("auth.password_change_failed", user)
        raise WrongPassword("current_password")
    password_policy.check(new, user.email, user.name, field="new_password")
    user.password_hash = hash_password(new)
    ended = sessions.revoke_all(user.id, RevokedBecause.PASSWORD_CHANGED, keep=keep_session)
    sessions.mark_authenticated(keep_session)
    _record("auth.password_changed", user, other_sessions_ended=ended)
    return ended


def reauthenticate(user: User, password: str, session_id: uuid.UUID) -> None:
    """The person proves again who they are, for the sensitive acts that ask it."""
    if not verify_password(user.password_hash, password):
        _record("auth.reauthentication_failed", user)
        raise WrongPassword("password")
    sessions.mark_authenticated(session_id)
    _record("auth.reauthenticated", user)


def revoke_own_session(user: User, session_id: str) -> UserSession:
    ident = parse_id(session_id)
    record = sessions.live_session_of(user.id, ident) if ident else None
    if record is None:
        raise NotFound("session not found")
    sessions.revoke(record.id, RevokedBecause.REVOKED)
    audit.record("session.revoked", target_type="session", target_id=record.id,
                 details={"user_id": str(user.id)}, tenant_id=PLATFORM_TENANT_ID)
    return record


def user_or_404(user_id: str) -> User:
    user = get_user(user_id)
    if user is None:
        raise NotFound("user not found")
    return user


def sign_out_everywhere(user: User) -> int:
    ended = sessions.revoke_all(user.id, RevokedBecause.SIGNED_OUT_EVERYWHERE)
    _record("user.signed_out_everywhere", user, sessions_ended=ended)
    return ended


def disable(user: User, by: User) -> User:
    """Stop a user signing in or using their API keys, and end their sessions."""
    if user.id == by.id:
        raise Conflict("you cannot disable your own account")
    if user.status != UserStatus.DISABLED:
        user.status = UserStatus.DISABLED
        ended = sessions.revoke_all(user.id, RevokedBecause.USER_DISABLED)
        _record("user.disabled", user, sessions_ended=ended)
    return user


def enable(user: User) -> User:
    """Undo `disable`: active again, or still invited if no password was ever set."""
    if user.status == UserStatus.DISABLED:
        user.status = UserStatus.ACTIVE if user.password_hash else UserStatus.INVITED
        _record("user.enabled", user, status=user.status)
    return user


def rename(user: User, name: str) -> User:
    """The person's display name; empty lets their email stand in for it."""
    name = (name or "").strip()
    user.name = clean_name(name) if name else ""
    return user
