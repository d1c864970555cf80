"""Tables of outbound events (migration 0032): all tenant-owned, under row-level security.

A delivery belongs to the subscription's tenant (an agency's subscription to its clients'
events gets the clients' events as its own deliveries). Its id makes the `webhook-id`
(`msg_<hex>`), and its `body` is fixed when the event is written: every attempt, retry
or redelivery sends the same id and the same bytes, so a receiver can deduplicate.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform.db import TenantOwned, db


class DeliveryStatus:
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after a day of retries


class EventSubscription(TenantOwned, db.Model):
    __tablename__ = "event_subscriptions"

    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    # On an agency: also its client workspaces' events.
    include_clients: Mapped[bool] = mapped_column(default=False)
    # The vault credential holding `current` (and, during a rotation, `previous`).
    credential_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("credentials.id"))
    previous_expires_at: Mapped[datetime | None]  # the end of a rotation's overlap
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    disabled_at: Mapped[datetime | None]
    created_by_id: Mapped[uuid.UUID | None]

    def wants(self, event_type: str) -> bool:
        return "*" in self.event_types or event_type in self.event_types


class EventDelivery(TenantOwned, db.Model):
    __tablename__ = "event_deliveries"
    __table_args__ = (Index("ix_event_deliveries_due", "status", "next_attempt_at"),)

    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("event_subscriptions.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(60))
    source_tenant_id: Mapped[uuid.UUID]  # the workspace the event happened in
    body: Mapped[str] = mapped_column(Text)  # the exact JSON sent on every attempt
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.id.hex}"


class EventAttempt(TenantOwned, db.Model):
    """One POST of a delivery: the delivery log."""

    __tablename__ = "event_attempts"

    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("event_deliveries.id", ondelete="CASCADE"), index=True)
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None]
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    manual: Mapped[bool] = mapped_column(default=False)  # a redelivery or a test


def as_dict(subscription: EventSubscription) -> dict[str, Any]:
    return {"url": subscription.url, "event_types": list(subscription.event_types),
            "enabled": subscription.enabled, "description": subscription.description,
            "include_clients": subscription.include_clients}
