"""A tenant's billing standing: in good standing, or past due since an invoice's
payment failed.

A past-due tenant keeps working for a grace period (`OVERTURE_PAYMENT_GRACE_DAYS`,
7 by default); after it the tenant is *restricted*: new runs are refused with a 402
`past-due` problem and the console says why. Nothing is deleted. A successful payment
lifts the restriction at once.

The Stripe webhook handler calls `payment_failed` and `payment_succeeded`; they write
in the session's transaction (the caller commits, with the webhook's own bookkeeping)
and audit each change of standing in the tenant's chain. Events can arrive out of
order: one older than the last change is ignored, so a late `payment_failed` never
undoes a newer `payment_succeeded`.

    standing.payment_failed(tenant_id, at=event_time, invoice_id="in_123")
    if standing.restricted(tenant_id, utcnow()): ...
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, has_app_context
from sqlalchemy import String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from overture.billing import policy_cache
from overture.platform import audit
from overture.platform.db import TenantOwned, db, in_tenant
from overture.tenants.models import Tenant

GOOD = "good"
PAST_DUE = "past_due"
DEFAULT_GRACE_DAYS = 7


class BillingStanding(TenantOwned, db.Model):
    """One row per tenant that ever had a payment event; no row: good standing."""

    __tablename__ = "billing_standings"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    status: Mapped[str] = mapped_column(String(16), default=GOOD)
    past_due_since: Mapped[datetime | None]
    invoice_id: Mapped[str | None] = mapped_column(String(255))  # the unpaid (or paid) one
    changed_at: Mapped[datetime]  # when the event behind the status happened


@dataclass(frozen=True)
class Standing:
    """What the console and the API show."""

    status: str  # GOOD or PAST_DUE
    past_due_since: datetime | None
    restricted_from: datetime | None  # the end of the grace period, when past due
    restricted: bool
    invoice_id: str | None

    def to_json(self) -> dict[str, object]:
        return {"status": self.status, "restricted": self.restricted,
                "past_due_since": _iso(self.past_due_since),
                "restricted_from": _iso(self.restricted_from), "invoice_id": self.invoice_id}


def grace() -> timedelta:
    """How long a past-due tenant keeps running (the installation's setting)."""
    days = DEFAULT_GRACE_DAYS
    if has_app_context():
        days = getattr(current_app.extensions.get("overture.settings"), "payment_grace_days",
                       DEFAULT_GRACE_DAYS)
    return timedelta(days=days)


def payment_failed(tenant_id: uuid.UUID, at: datetime, invoice_id: str | None = None) -> None:
    """An invoice's payment failed at `at`: the tenant becomes past due and its grace
    period starts, unless it is past due already (the grace period is not restarted)."""
    with in_tenant(tenant_id):
        row = _row(tenant_id)
        if row is not None and (row.changed_at > at or row.status == PAST_DUE):
            return
        if row is None:
            row = BillingStanding(tenant_id=tenant_id)
            db.session.add(row)
        row.status, row.past_due_since, row.invoice_id, row.changed_at = \
            PAST_DUE, at, invoice_id, at
        audit.record("billing.past_due", target_type="tenant", target_id=tenant_id,
                     tenant_id=tenant_id, details={
                         "invoice_id": invoice_id, "since": at.isoformat(),
                         "restricted_from": (at + grace()).isoformat()})
        db.session.flush()
        policy_cache.forget()  # its clients too (see `governing`)


def payment_succeeded(tenant_id: uuid.UUID, at: datetime, invoice_id: str | None = None) -> None:
    """An invoice was paid at `at`: back in good standing, any restriction lifted."""
    with in_tenant(tenant_id):
        row = _row(tenant_id)
        if row is None or row.changed_at > at:
            return
        was = row.status
        row.status, row.past_due_since, row.invoice_id, row.changed_at = \
            GOOD, None, invoice_id, at
        if was != GOOD:
            audit.record("billing.good_standing", target_type="tenant", target_id=tenant_id,
                         tenant_id=tenant_id, details={"invoice_id": invoice_id,
                                                       "at": at.isoformat()})
        db.session.flush()
        policy_cache.forget()  # its clients too (see `governing`)


def restricted(tenant_id: uuid.UUID, now: datetime) -> bool:
    """Past due, and the grace period over."""
    return standing(tenant_id, now).restricted


def standing(tenant_id: uuid.UUID, now: datetime) -> Standing:
    with in_tenant(tenant_id):
        row = _row(tenant_id)
    if row is None or row.status != PAST_DUE or row.past_due_since is None:
        return Standing(GOOD, None, None, False, row.invoice_id if row else None)
    ends = row.past_due_since + grace()
    return Standing(PAST_DUE, row.past_due_since, ends, now >= ends, row.invoice_id)


def governing(tenant_id: uuid.UUID, now: datetime) -> tuple[uuid.UUID, Standing] | None:
    """The past-due standing that holds for the tenant, if any, and whose it is: its
    own, else its agency's (the agency pays for its clients' work, so they stop with
    it)."""
    own = standing(tenant_id, now)
    if own.status == PAST_DUE:
        return tenant_id, own
    parent_id = db.session.scalar(select(Tenant.parent_id).where(Tenant.id == tenant_id))
    if parent_id is None:
        return None
    agency = standing(parent_id, now)
    return (parent_id, agency) if agency.status == PAST_DUE else None


def _row(tenant_id: uuid.UUID) -> BillingStanding | None:
    return db.session.scalar(select(BillingStanding).where(
        BillingStanding.tenant_id == tenant_id))


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None
