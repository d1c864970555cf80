"""Issue and redeem the tokens in emailed links (see `account_tokens_models`).

A token is 256 bits from the OS's CSPRNG, shown once (in the email); only its SHA-256
is stored, so the lookup by hash is the comparison and leaks no timing about the
secret. Redeeming checks purpose first (a reset token never opens an invitation), then
revocation, use and expiry, and says which one failed: the person holding the link
already knows it exists, so naming the reason reveals nothing and saves a support call.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import select, update

from overture.platform.db import db, utcnow
from overture.platform.errors import LinkNotUsable
from overture.tenants.account_tokens_models import AccountToken, TokenPurpose

__all__ = [
    "AccountToken",
    "TokenPurpose",
    "issue",
    "peek",
    "redeem",
    "revoke_for_invitation",
    "revoke_for_user",
]

LIFETIMES = {
    TokenPurpose.INVITATION: timedelta(days=7),
    TokenPurpose.PASSWORD_RESET: timedelta(minutes=15),
    TokenPurpose.SIGN_IN_LINK: timedelta(minutes=15),
}
WHAT = {
    TokenPurpose.INVITATION: "invitation",
    TokenPurpose.PASSWORD_RESET: "password reset link",
    TokenPurpose.SIGN_IN_LINK: "sign-in link",
}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(purpose: str, *, user_id: uuid.UUID | None = None,
          invitation_id: uuid.UUID | None = None, scope_tenant_id: uuid.UUID | None = None,
          lifetime: timedelta | None = None) -> tuple[AccountToken, str]:
    """A new token row in the caller's transaction and the secret for the link."""
    if user_id is None and invitation_id is None:
        raise ValueError("a token is bound to a user or to an invitation")
    secret = secrets.token_urlsafe(32)
    record = AccountToken(token_hash=hash_token(secret), purpose=purpose, user_id=user_id,
                          invitation_id=invitation_id, scope_tenant_id=scope_tenant_id,
                          expires_at=utcnow() + (lifetime or LIFETIMES[purpose]))
    db.session.add(record)
    db.session.flush()
    return record, secret


def peek(secret: str, purpose: str) -> AccountToken:
    """The usable token behind `secret`, without using it up (to show a form first)."""
    what = WHAT.get(purpose, "link")
    record = db.session.scalars(
        select(AccountToken).where(AccountToken.token_hash == hash_token(secret or ""))
    ).one_or_none() if secret else None
    if record is None or record.purpose != purpose:
        raise LinkNotUsable("unknown", f"This {what} is not valid. Check that the whole "
                            "link was copied, or ask for a new one.")
    if record.revoked_at is not None:
        raise LinkNotUsable("revoked", f"This {what} was withdrawn. Ask for a new one.")
    if record.used_at is not None:
        raise LinkNotUsable("used", f"This {what} has already been used. Ask for a new one "
                            "if you still need it.")
    if record.expires_at <= utcnow():
        raise LinkNotUsable("expired", f"This {what} has expired. Ask for a new one.")
    return record


def redeem(secret: str, purpose: str) -> AccountToken:
    """Use the token up, once: of two concurrent redemptions only one succeeds."""
    record = peek(secret, purpose)
    claimed = db.session.execute(
        update(AccountToken)
        .where(AccountToken.id == record.id, AccountToken.used_at.is_(None),
               AccountToken.revoked_at.is_(None))
        .values(used_at=utcnow()).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise LinkNotUsable("used", f"This {WHAT.get(purpose, 'link')} has already been used.")
    db.session.refresh(record)
    return record


def revoke_for_user(user_id: uuid.UUID, purpose: str) -> int:
    """Withdraw the user's live tokens of one purpose (a new reset link replaces the old)."""
    result = db.session.execute(
        update(AccountToken)
        .where(AccountToken.user_id == user_id, AccountToken.purpose == purpose,
               AccountToken.used_at.is_(None), AccountToken.revoked_at.is_(None),
               AccountToken.expires_at > utcnow())
        .values(revoked_at=utcnow()).execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


def revoke_for_invitation(invitation_id: uuid.UUID) -> int:
    result = db.session.execute(
        update(AccountToken)
        .where(AccountToken.invitation_id == invitation_id, AccountToken.used_at.is_(None),
               AccountToken.revoked_at.is_(None))
        .values(revoked_at=utcnow()).execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]
