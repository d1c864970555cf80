"""What Overture keeps about Stripe: the agencies' own accounts, the customers and
meters it made there, the meter-event outbox, the invoices Stripe finalized, and the
webhook events already processed.

An *account* is the platform's (`STRIPE_API_KEY`; it bills the agencies) or an
agency's own (it bills the agency's clients). Rows that belong to an account are kept
under its owner tenant: the platform tenant (`PLATFORM_TENANT_ID`) or the agency.

`stripe_links` is the one table that is not tenant-owned: it routes a Stripe object id
(a customer, a connected account) to the tenant it stands for, so that a webhook, which
arrives with no tenant, finds its tenant before entering its scope. It holds ids only.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform.db import Base, TenantOwned, db, utcnow


class StripeAccount(TenantOwned, db.Model):
    """An agency's own Stripe account: a restricted key sealed in the vault (`key`), or
    a Stripe Connect account of the platform, reached with `Stripe-Account` (`connect`)."""

    __tablename__ = "stripe_accounts"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    mode: Mapped[str] = mapped_column(String(16))  # key | connect
    credential_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="SET NULL"))
    connect_account_id: Mapped[str | None] = mapped_column(String(255))
    key_hint: Mapped[str | None] = mapped_column(String(40))  # "rk_live_…a1b2"
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_tested_at: Mapped[datetime | None]
    last_test_error: Mapped[str | None] = mapped_column(Text)


class StripeLink(Base):
    """A Stripe object id and the tenant it stands for (see the module's docstring)."""

    __tablename__ = "stripe_links"

    stripe_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # customer | account
    routes_to: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    owner_id: Mapped[uuid.UUID]  # the account's owner tenant
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StripeCustomer(TenantOwned, db.Model):
    """The billed tenant as a customer of one account, and its subscription's state."""

    __tablename__ = "stripe_customers"
    __table_args__ = (UniqueConstraint("tenant_id", "owner_id"),)

    owner_id: Mapped[uuid.UUID]
    customer_id: Mapped[str] = mapped_column(String(255))
    subscription_id: Mapped[str | None] = mapped_column(String(255))
    subscription_status: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StripeMeter(TenantOwned, db.Model):
    """A Billing Meter made in an account (kept under the account's owner)."""

    __tablename__ = "stripe_meters"
    __table_args__ = (UniqueConstraint("tenant_id", "meter"),)

    meter: Mapped[str] = mapped_column(String(40))
    event_name: Mapped[str] = mapped_column(String(100))
    stripe_meter_id: Mapped[str] = mapped_column(String(255))


class OutboxStatus:
    PENDING = "pending"
    SENT = "sent"
    EXPIRED = "expired"  # older than Stripe takes meter events (35 days): never sent


class MeterEventRow(TenantOwned, db.Model):
    """One meter event to send: a tenant's quantity of one meter in one closed UTC hour,
    for one account (the platform's, the agency's). `identifier` is derived from those,
    so the same hour is never sent under another identifier."""

    __tablename__ = "meter_event_outbox"
    __tenant_fk__ = False  # outlives its tenant, like the usage it reports
    __table_args__ = (
        UniqueConstraint("identifier"),
        Index("ix_meter_event_outbox_due", "tenant_id", "status", "next_attempt_at"),
    )

    owner_id: Mapped[uuid.UUID]  # whose account
    billed_id: Mapped[uuid.UUID]  # whose customer in it
    meter: Mapped[str] = mapped_column(String(40))
    hour: Mapped[datetime]
    quantity: Mapped[Decimal] = mapped_column(Numeric(20, 6))
    identifier: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]


class SyncStatus:
    PENDING = "pending"  # to do (again): due at next_attempt_at
    SYNCED = "synced"
    UNSUPPORTED = "unsupported"  # the plan cannot be priced by Stripe exactly: not sent


class StripePlan(TenantOwned, db.Model):
    """A plan as a Stripe product and its prices (kept under the plan's owner, whose
    account bills it). `prices` are those of the version synced (`version`); `building`
    those of `wanted_version` made so far, so a sync resumed later makes none twice."""

    __tablename__ = "stripe_plans"
    __table_args__ = (UniqueConstraint("plan_id"),)

    # NULL once the plan is deleted: the row stays until its product is archived
    plan_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("plans.id", ondelete="SET NULL"))
    wanted_version: Mapped[int] = mapped_column(Integer)
    version: Mapped[int | None] = mapped_column(Integer)
    product_id: Mapped[str | None] = mapped_column(String(255))
    prices: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # item -> price id
    building: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=SyncStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    synced_at: Mapped[datetime | None]


class StripeSubscription(TenantOwned, db.Model):
    """The billed tenant's subscription to its plan in the account that bills it (kept
    under the billed tenant). `prices` are the prices it is (or, from its next period,
    will be) billed at: those of `plan_id` at `plan_version`."""

    __tablename__ = "stripe_subscriptions"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    owner_id: Mapped[uuid.UUID | None]
    plan_id: Mapped[uuid.UUID | None]
    plan_version: Mapped[int | None] = mapped_column(Integer)
    subscription_id: Mapped[str | None] = mapped_column(String(255))
    schedule_id: Mapped[str | None] = mapped_column(String(255))
    prices: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=SyncStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    synced_at: Mapped[datetime | None]


class StripeInvoice(TenantOwned, db.Model):
    """An invoice Stripe finalized for the tenant, as its invoice list shows it."""

    __tablename__ = "stripe_invoices"
    __table_args__ = (UniqueConstraint("invoice_id"),)

    owner_id: Mapped[uuid.UUID]
    invoice_id: Mapped[str] = mapped_column(String(255))
    number: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(Numeric(20, 2))
    period_start: Mapped[datetime | None]
    period_end: Mapped[datetime | None]
    hosted_url: Mapped[str | None] = mapped_column(String(2000))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StripeWebhookEvent(Base):
    """A webhook event processed: its id, so a replay changes nothing."""

    __tablename__ = "stripe_webhook_events"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    account: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
