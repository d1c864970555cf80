"""Tenancy tables. `tenants` and `users` are the directory; the rest is tenant-owned."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from overture.platform.db import IdMixin, TenantOwned, db


class TenantKind(StrEnum):
    PLATFORM = "platform"  # the installation itself: one row, holds platform-level audit
    AGENCY = "agency"
    WORKSPACE = "workspace"


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"


class Tenant(IdMixin, db.Model):
    __tablename__ = "tenants"

    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=TenantStatus.ACTIVE)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    suspended_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    # Staff (owner, admin, builder) must have a second factor to act here.
    mfa_required: Mapped[bool] = mapped_column(default=False, server_default=false())

    parent: Mapped[Tenant | None] = relationship(remote_side="Tenant.id", lazy="joined")

    @property
    def is_agency(self) -> bool:
        return self.kind == TenantKind.AGENCY

    @property
    def usable(self) -> bool:
        """Active, and so is the agency above it: suspending an agency pauses its clients."""
        if self.status != TenantStatus.ACTIVE:
            return False
        return self.parent is None or self.parent.status == TenantStatus.ACTIVE


class UserStatus(StrEnum):
    ACTIVE = "active"
    INVITED = "invited"
    DISABLED = "disabled"


class User(IdMixin, db.Model):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=UserStatus.ACTIVE)
    is_platform_admin: Mapped[bool] = mapped_column(default=False)
    last_login_at: Mapped[datetime | None]

    # Flask-Login's protocol, kept here so the web layer needs no wrapper class.
    @property
    def is_active(self) -> bool:
        return self.status == UserStatus.ACTIVE

    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)


class Membership(TenantOwned, db.Model):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                               index=True)
    role: Mapped[str] = mapped_column(String(16))
    invited_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")
    tenant: Mapped[Tenant] = relationship(lazy="joined")


class ApiKey(TenantOwned, db.Model):
    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "prefix"),)

    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(24), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    last_used_ip: Mapped[str | None] = mapped_column(String(64))
    seen_ips: Mapped[list[str]] = mapped_column(JSON, default=list)
    revoked_at: Mapped[datetime | None]

    created_by: Mapped[User] = relationship(lazy="joined")
