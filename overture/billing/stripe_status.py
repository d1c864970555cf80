"""What Overture has (not yet) told Stripe, for the agency's Stripe page: each plan's
product and prices, each client's subscription, and the hourly usage reports waiting
in the meter-event outbox. Read-only, in the owner's and each client's own scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from overture.billing.plan_models import Plan
from overture.billing.plans import billed_tenants
from overture.billing.stripe_models import (
    MeterEventRow,
    OutboxStatus,
    StripePlan,
    StripeSubscription,
)
from overture.platform.db import db, in_tenant
from overture.tenants.access import Access


@dataclass(frozen=True)
class PlanSync:
    name: str
    status: str  # pending | synced | unsupported | retiring
    version: int | None
    wanted_version: int
    product_id: str | None
    last_error: str | None
    next_attempt_at: datetime | None
    synced_at: datetime | None


@dataclass(frozen=True)
class ClientSync:
    name: str
    subscription_status: str | None  # None: not billed at a plan in Stripe
    subscription_id: str | None
    subscription_error: str | None
    reports_sent: int
    reports_waiting: int
    oldest_waiting_hour: datetime | None
    last_sent_at: datetime | None
    report_error: str | None

    @property
    def healthy(self) -> bool:
        return not (self.subscription_error or self.report_error)


def overview(access: Access) -> dict[str, Any]:
    """The agency's plans and clients as Stripe knows them (needs `billing.read`)."""
    access.require("billing.read")
    owner = access.require_tenant()
    clients = [_client(t.id, t.name, owner.id) for t in billed_tenants(owner)]
    plans = _plans()
    return {"plans": plans, "clients": clients,
            "waiting": sum(c.reports_waiting for c in clients),
            "problems": sum(1 for c in clients if not c.healthy)
            + sum(1 for p in plans if p.last_error and p.status != "unsupported")}


def _plans() -> list[PlanSync]:
    rows = db.session.execute(select(StripePlan, Plan.name)
                              .outerjoin(Plan, Plan.id == StripePlan.plan_id)
                              .order_by(Plan.name, StripePlan.created_at))
    return [PlanSync(name=name or "Deleted plan",
                     status="retiring" if row.plan_id is None else row.status,
                     version=row.version, wanted_version=row.wanted_version,
                     product_id=row.product_id, last_error=row.last_error,
                     next_attempt_at=row.next_attempt_at, synced_at=row.synced_at)
            for row, name in rows]


def _client(tenant_id: Any, name: str, owner_id: Any) -> ClientSync:
    mine = MeterEventRow.owner_id == owner_id
    with in_tenant(tenant_id):
        sub = db.session.scalars(select(StripeSubscription)).one_or_none()
        by_status = {status: (count, oldest, last_sent) for status, count, oldest, last_sent
                     in db.session.execute(
                         select(MeterEventRow.status, func.count(), func.min(MeterEventRow.hour),
                                func.max(MeterEventRow.sent_at))
                         .where(mine).group_by(MeterEventRow.status))}
        error = db.session.scalar(select(MeterEventRow.last_error).where(
            mine, MeterEventRow.status == OutboxStatus.PENDING,
            MeterEventRow.last_error.is_not(None))
            .order_by(MeterEventRow.next_attempt_at.desc()).limit(1))
    sent = by_status.get(OutboxStatus.SENT, (0, None, None))
    waiting = by_status.get(OutboxStatus.PENDING, (0, None, None))
    return ClientSync(
        name=name, subscription_status=sub.status if sub is not None else None,
        subscription_id=sub.subscription_id if sub is not None else None,
        subscription_error=sub.last_error if sub is not None else None,
        reports_sent=sent[0], reports_waiting=waiting[0], oldest_waiting_hour=waiting[1],
        last_sent_at=sent[2], report_error=error)
