"""Polling trigger subscriptions: a workflow asks a connection's app for new events on
an interval; each new event starts one run."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform.db import TenantOwned, db


class TriggerSubscription(TenantOwned, db.Model):
    __tablename__ = "trigger_subscriptions"
    __table_args__ = (UniqueConstraint("tenant_id", "workflow_id", "connection_id",
                                       "trigger_key", name="uq_trigger_subscriptions_target"),)

    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"),
                                                   index=True)
    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), index=True)
    trigger_key: Mapped[str] = mapped_column(String(80))
    interval_seconds: Mapped[int] = mapped_column(Integer, default=300)
    enabled: Mapped[bool] = mapped_column(default=True)
    next_poll_at: Mapped[datetime] = mapped_column(index=True)
    # The trigger's cursor (e.g. the last IMAP UID seen), stored with the events it saw.
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_polled_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))


class VendorTrigger(TenantOwned, db.Model):
    """A vendor's signed event feed (Slack, HubSpot, Zendesk, Jira, Typeform) into a
    workflow: the vendor posts to a secret URL and signs each call with the secret
    sealed in the vault credential; each event it names starts one run."""

    __tablename__ = "vendor_triggers"

    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"),
                                                   index=True)
    source: Mapped[str] = mapped_column(String(16))  # also the runs' `trigger`
    token: Mapped[str] = mapped_column(String(64), unique=True)
    credential_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="SET NULL"))
    # The vendor's connection this feed belongs to (for the console; optional).
    connection_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL"))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(default=True)
    last_event_at: Mapped[datetime | None]
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))


class FormTrigger(TenantOwned, db.Model):
    """A hosted form that starts a workflow: the portal serves it at a secret URL
    (`/portal/<slug>/forms/<token>`, on the tenant's domain too), its fields made from
    the published version's input schema; each submission starts one run."""

    __tablename__ = "form_triggers"

    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"),
                                                   index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    success_message: Mapped[str] = mapped_column(Text, default="")
    honeypot: Mapped[bool] = mapped_column(default=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    # Counted as they happen: runs started, and submissions the honeypot caught.
    submissions: Mapped[int] = mapped_column(Integer, default=0)
    honeypot_hits: Mapped[int] = mapped_column(Integer, default=0)
    last_submission_at: Mapped[datetime | None]
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
