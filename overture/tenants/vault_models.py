"""Vault tables: per-tenant data keys, master-key probes, and credentials.

Envelope encryption: a master key (outside the database) wraps each tenant's data
key; the data key seals the tenant's credential secrets. The database alone can
decrypt nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform.db import Base, TenantOwned, db, utcnow

# What a masked read shows in place of every secret value. Sent back on update it
# means "keep the stored value", so a form can round-trip a masked credential.
PLACEHOLDER = "********"


class TenantKey(TenantOwned, db.Model):
    """One version of a tenant's data key, wrapped by a master key.

    The highest version seals new secrets; older versions live only until
    `overture keys rotate-tenant` has re-sealed everything they sealed.
    """

    __tablename__ = "tenant_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "version"),)

    version: Mapped[int] = mapped_column(Integer)
    master_kid: Mapped[str] = mapped_column(String(64))
    wrapped_key: Mapped[str] = mapped_column(Text)
    rewrapped_at: Mapped[datetime | None]


class MasterKeyProbe(Base):
    """A constant wrapped under each master key that has wrapped a data key.

    Not tenant-owned, so start-up can check, without entering any tenant (data keys
    sit behind RLS), that this process holds every master key the data needs and that
    each is the right one. It holds no secret: the probe's plaintext is a constant.
    """

    __tablename__ = "master_key_probes"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    wrapped: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Credential(TenantOwned, db.Model):
    """A connection's credentials. Only the fields declared secret are sealed (one
    ciphertext, `sealed`, over a JSON object of them); the rest stay in `public`,
    readable and queryable."""

    __tablename__ = "credentials"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        # The data key version a credential is sealed under cannot be deleted while in use.
        ForeignKeyConstraint(["tenant_id", "key_version"],
                             ["tenant_keys.tenant_id", "tenant_keys.version"]),
    )

    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    connector_key: Mapped[str | None] = mapped_column(String(80), index=True)
    public: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secret_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    sealed: Mapped[str] = mapped_column(Text)
    key_version: Mapped[int] = mapped_column(Integer)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    updated_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    rotated_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime | None]
    rotated_at: Mapped[datetime | None]  # when a person last replaced a secret value
    last_used_at: Mapped[datetime | None]

    @property
    def masked_fields(self) -> dict[str, Any]:
        """Every field, secrets replaced by the placeholder: what any read shows."""
        return {**self.public, **dict.fromkeys(self.secret_fields, PLACEHOLDER)}
