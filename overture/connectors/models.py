"""Connections: a tenant's authorised use of one connector."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform.db import TenantOwned, db


class ConnectionStatus(StrEnum):
    ACTIVE = "active"
    PENDING = "pending"  # waiting for the OAuth2 authorisation to come back
    BROKEN = "broken"  # credentials stopped working (a refresh failed): re-authorise


class Connection(TenantOwned, db.Model):
    __tablename__ = "connections"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(120))
    connector_key: Mapped[str] = mapped_column(String(80), index=True)
    credential_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="SET NULL"))
    base_url: Mapped[str | None] = mapped_column(String(500))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=ConnectionStatus.ACTIVE)
    broken_reason: Mapped[str | None] = mapped_column(Text)
    rate_limit: Mapped[str | None] = mapped_column(String(40))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    last_used_at: Mapped[datetime | None]


class TriggerEvent(TenantOwned, db.Model):
    """An event a trigger saw: the unique dedupe key starts each event's run once."""

    __tablename__ = "trigger_events"
    __table_args__ = (UniqueConstraint("tenant_id", "source", "dedupe_key"),)

    source: Mapped[str] = mapped_column(String(200))  # e.g. "<connection id>:<trigger key>"
    dedupe_key: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[uuid.UUID | None]
