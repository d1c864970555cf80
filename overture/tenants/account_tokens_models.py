"""Account tokens: the secrets in emailed links (invitation, password reset, sign-in link).

Only the SHA-256 of a token is stored. A token is bound to one purpose and to a user
or, for an invitation to someone without an account yet, to an invitation; it is
single use (`used_at`), expires, and can be revoked. Platform-level like `users`: the
tenant an invitation token leads into is named in `scope_tenant_id`, which is not
ownership, so the table carries no tenant_id and no row-level security.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform.db import IdMixin, db


class TokenPurpose:
    INVITATION = "invitation"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose, not a secret
    SIGN_IN_LINK = "sign_in_link"


class AccountToken(IdMixin, db.Model):
    __tablename__ = "account_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(24))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True)
    invitation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("invitations.id", ondelete="CASCADE"), index=True)
    scope_tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
