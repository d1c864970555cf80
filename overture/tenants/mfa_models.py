"""Second factors: a user's TOTP enrolment and the challenges of half-finished sign-ins.

Both are platform-level like `users` (no tenant_id, no row-level security). The TOTP
secret is stored sealed with the platform's master key, never in the clear; recovery
codes are argon2id hashes in a list where a used code becomes null (see
`recovery_codes.matches`). An enrolment is in force once `confirmed_at` is set (the
person typed a code from the authenticator). A challenge is the state between a proven
first factor and the second: found by the SHA-256 of a random id in the browser,
limited in attempts and time, and single use.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform.db import IdMixin, db


class UserMfa(IdMixin, db.Model):
    __tablename__ = "user_mfa"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    totp_secret_sealed: Mapped[str] = mapped_column(Text)
    confirmed_at: Mapped[datetime | None]
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)
    recovery_code_hashes: Mapped[list[str | None]] = mapped_column(JSON, default=list)


class MfaChallenge(IdMixin, db.Model):
    __tablename__ = "mfa_challenges"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True)
    auth_method: Mapped[str] = mapped_column(String(16))
    next_url: Mapped[str | None] = mapped_column(String(2000))
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    used_at: Mapped[datetime | None]
