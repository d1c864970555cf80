"""Custom domains: a tenant's claim on a host name, and whether DNS has proven it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from overture.platform.db import TenantOwned, db
from overture.tenants.models import Tenant


class CustomDomain(TenantOwned, db.Model):
    """A host name a tenant wants its pages served on.

    Several tenants may claim the same name while it is unverified (so nobody can
    block a domain by claiming it first), but only one can hold it verified: the
    partial unique index decides a race between two verifications in the database.
    """

    __tablename__ = "custom_domains"
    __table_args__ = (
        UniqueConstraint("tenant_id", "hostname"),
        Index("uq_custom_domains_verified_hostname", "hostname", unique=True,
              postgresql_where=text("verified_at IS NOT NULL"),
              sqlite_where=text("verified_at IS NOT NULL")),
    )

    # The ASCII (A-label, punycode) form, lower case, no trailing dot: as browsers send
    # it in the Host header.
    hostname: Mapped[str] = mapped_column(String(253))
    # What the TXT record must hold. Public by design (it is published in DNS); it only
    # ties the record to this claim, so it is stored as it is and shown again.
    token: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[datetime | None]
    last_checked_at: Mapped[datetime | None]
    # What the last check found wrong, in words (None after a successful check).
    last_check_error: Mapped[str | None] = mapped_column(String(1000))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))

    tenant: Mapped[Tenant] = relationship(lazy="joined")

    @property
    def verified(self) -> bool:
        return self.verified_at is not None
