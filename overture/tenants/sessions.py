"""Signed-in sessions, kept server-side so that they can end.

The browser's cookie holds a random 256-bit id; this table holds only its SHA-256, so
a copy of the table cannot be replayed as cookies. A session is live until it is
revoked (sign-out, password change, an admin, the user being disabled), idle for too
long, or past its absolute lifetime. Sessions belong to users, who are platform-level,
so the table is not tenant-owned (like `users`): it is reached only by the token's
hash or by the user's id, never listed across users.

A session also records the host it was signed in on (`host`): its cookie is
host-only, and a copy of it presented on another host (another tenant's custom
domain) is refused (`web/sessions.py`). A session with no host (from before hosts
were recorded) is valid on none.

`last_seen_at` moves at most once a minute (`TOUCH_EVERY`), so a busy session does not
write on every request; the idle deadline is therefore exact to within that minute.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, Text, delete, or_, select, update
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform.db import IdMixin, db, utcnow

TOUCH_EVERY = timedelta(minutes=1)
# Ending sessions and other sensitive acts need a password proven this recently
# (at sign-in, or again through reauthentication).
RECENT_AUTHENTICATION = timedelta(minutes=10)


class RevokedBecause:
    """Why a session ended, as stored in `revoked_reason`."""

    SIGNED_OUT = "signed_out"
    REPLACED = "replaced"  # the same browser signed in again
    REVOKED = "revoked"  # by its user, from the list of their sessions
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a reason, not a secret
    PASSWORD_RESET = "password_reset"  # noqa: S105 - through an emailed link
    SIGNED_OUT_EVERYWHERE = "signed_out_everywhere"  # by an admin
    USER_DISABLED = "user_disabled"


class UserSession(IdMixin, db.Model):
    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                               index=True)
    auth_method: Mapped[str] = mapped_column(String(16), default="password")
    authenticated_at: Mapped[datetime]  # when the person last proved who they are
    last_seen_at: Mapped[datetime]
    idle_expires_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    # The host name (no port) the session was signed in on, as the Host header said.
    host: Mapped[str | None] = mapped_column(String(253))
    # The Flask session's contents (CSRF token, Flask-Login's keys), as Flask's
    # tagged JSON: it never leaves the server.
    data: Mapped[str] = mapped_column(Text, default="{}")
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(32))

    def is_live(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.idle_expires_at and now < self.expires_at

    def valid_on(self, host: str) -> bool:
        return self.host is not None and self.host == host


@dataclass(frozen=True)
class Lifetimes:
    idle: timedelta
    absolute: timedelta


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _dead(now: datetime) -> object:
    return or_(UserSession.revoked_at.is_not(None), UserSession.idle_expires_at <= now,
               UserSession.expires_at <= now)


def start(user_id: uuid.UUID, lifetimes: Lifetimes, *, data: str, ip: str | None,
          user_agent: str | None, host: str, method: str = "password"
          ) -> tuple[UserSession, str]:
    """A new live session and the token for its cookie (shown only here). The user's
    sessions that already ended are deleted: their history is in the audit log."""
    now = utcnow()
    db.session.execute(delete(UserSession).where(UserSession.user_id == user_id, _dead(now)))
    token = secrets.token_urlsafe(32)  # 256 bits from the OS's CSPRNG
    expires = now + lifetimes.absolute
    record = UserSession(token_hash=hash_token(token), user_id=user_id, auth_method=method,
                         authenticated_at=now, last_seen_at=now,
                         idle_expires_at=min(now + lifetimes.idle, expires), expires_at=expires,
                         ip=ip, user_agent=(user_agent or "")[:400] or None, host=host[:253],
                         data=data)
    db.session.add(record)
    db.session.flush()
    return record, token


def find_live(token: str) -> UserSession | None:
    record = db.session.scalars(
        select(UserSession).where(UserSession.token_hash == hash_token(token))
    ).one_or_none()
    return record if record is not None and record.is_live(utcnow()) else None


def touch_if_due(record: UserSession, lifetimes: Lifetimes) -> bool:
    """Move the idle deadline on, at most once per `TOUCH_EVERY`; True when it did."""
    now = utcnow()
    if now - record.last_seen_at < TOUCH_EVERY:
        return False
    record.last_seen_at = now
    record.idle_expires_at = min(now + lifetimes.idle, record.expires_at)
    return True


def mark_authenticated(session_id: uuid.UUID) -> datetime:
    now = utcnow()
    db.session.execute(update(UserSession).where(UserSession.id == session_id)
                       .values(authenticated_at=now))
    return now


def live_sessions(user_id: uuid.UUID) -> list[UserSession]:
    now = utcnow()
    return list(db.session.scalars(
        select(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None),
               UserSession.idle_expires_at > now, UserSession.expires_at > now)
        .order_by(UserSession.last_seen_at.desc(), UserSession.id)))


def live_session_of(user_id: uuid.UUID, session_id: uuid.UUID) -> UserSession | None:
    record = db.session.get(UserSession, session_id)
    if record is None or record.user_id != user_id or not record.is_live(utcnow()):
        return None
    return record


def revoke(session_id: uuid.UUID, reason: str) -> bool:
    return _revoke_where(reason, UserSession.id == session_id) == 1


def revoke_all(user_id: uuid.UUID, reason: str, keep: uuid.UUID | None = None) -> int:
    """End every live session of a user (but `keep`); how many ended."""
    conditions = [UserSession.user_id == user_id]
    if keep is not None:
        conditions.append(UserSession.id != keep)
    return _revoke_where(reason, *conditions)


def _revoke_where(reason: str, *conditions: object) -> int:
    """Revoke the live sessions that match; how many."""
    now = utcnow()
    result = db.session.execute(
        update(UserSession)
        .where(UserSession.revoked_at.is_(None), UserSession.idle_expires_at > now,
               UserSession.expires_at > now, *conditions)
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session="fetch"))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
