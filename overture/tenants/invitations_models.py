"""Invitations: a pending offer of a role in a tenant, to an email address.

No membership exists until the person behind the address accepts (consent): inviting
an existing user of another tenant adds nothing and reveals nothing. Tenant-owned and
under row-level security like `memberships`; the emailed token (`account_tokens`)
names the tenant, so acceptance can scope to it without the invitee being a member.
At most one pending invitation per address and tenant.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from overture.platform.db import TenantOwned, db
from overture.tenants.models import User


class InvitationStatus:
    PENDING = "pending"
    ACCEPTED = "accepted"
    REVOKED = "revoked"


class Invitation(TenantOwned, db.Model):
    __tablename__ = "invitations"
    __table_args__ = (
        Index("uq_invitations_pending_email", "tenant_id", "email", unique=True,
              postgresql_where=text("status = 'pending'"),
              sqlite_where=text("status = 'pending'")),
    )

    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=InvitationStatus.PENDING)
    invited_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime]
    last_sent_at: Mapped[datetime | None]
    send_count: Mapped[int] = mapped_column(default=0)
    accepted_at: Mapped[datetime | None]
    accepted_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None]

    invited_by: Mapped[User | None] = relationship(foreign_keys=[invited_by_id], lazy="joined")
