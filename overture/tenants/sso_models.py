"""Single sign-on: a tenant's OpenID Connect provider, and who signed in through which.

`sso_providers` is tenant-owned (row-level security): an agency or a workspace
configures its own identity provider; the client secret is stored sealed. The
sign-in page reaches it by the tenant's slug, scoped to that tenant.
`user_identities` links a user to an issuer's subject (`sub`), platform-level like
`users`: a subject signs in as the same user however many tenants trust its issuer.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform.db import IdMixin, TenantOwned, db


class SsoProvider(TenantOwned, db.Model):
    __tablename__ = "sso_providers"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    issuer: Mapped[str] = mapped_column(String(400))
    client_id: Mapped[str] = mapped_column(String(200))
    client_secret_sealed: Mapped[str | None] = mapped_column(Text)
    allowed_domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    default_role: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))


class UserIdentity(IdMixin, db.Model):
    __tablename__ = "user_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(400))
    subject: Mapped[str] = mapped_column(String(255))
    last_used_at: Mapped[datetime | None]
