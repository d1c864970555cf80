"""Mark a plan or a billed tenant's subscription as to be synced with Stripe, in the
transaction that changed it; the scheduler's billing pass (and `overture billing
sync-plans`) does the syncing (stripe_plans). So Stripe being down never fails the
request that changed a plan or an assignment."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from overture.billing.plan_models import Plan
from overture.billing.stripe_models import StripePlan, StripeSubscription, SyncStatus
from overture.platform.db import db, in_tenant


def plan_changed(plan: Plan) -> None:
    """The plan (in its owner's scope) was created or edited."""
    with db.session.no_autoflush:
        row = db.session.scalars(select(StripePlan).where(
            StripePlan.plan_id == plan.id)).one_or_none()
    if row is None:
        row = StripePlan(plan_id=plan.id, prices={}, building={})
        db.session.add(row)
    if row.wanted_version == plan.version and row.status != SyncStatus.PENDING:
        return  # a rename only: the prices stay
    row.wanted_version, row.status = plan.version, SyncStatus.PENDING
    row.attempts, row.next_attempt_at, row.last_error = 0, None, None


def plan_deleted(plan: Plan) -> None:
    """The plan is being deleted: its row stays, unlinked and pending, until the billing
    pass has archived the product and its prices (nothing is left for sale)."""
    with db.session.no_autoflush:
        row = db.session.scalars(select(StripePlan).where(
            StripePlan.plan_id == plan.id)).one_or_none()
    if row is None:
        return
    if row.product_id is None and not (row.building or {}).get("prices"):
        db.session.delete(row)  # nothing was made in Stripe
        return
    row.plan_id, row.status = None, SyncStatus.PENDING
    row.attempts, row.next_attempt_at, row.last_error = 0, None, None


def subscription_changed(tenant_id: uuid.UUID) -> None:
    """The tenant's plan (or its version) changed: its subscription is to follow."""
    with in_tenant(tenant_id), db.session.no_autoflush:
        row = db.session.scalars(select(StripeSubscription).where(
            StripeSubscription.tenant_id == tenant_id)).one_or_none()
        if row is None:
            row = StripeSubscription(tenant_id=tenant_id, prices={})
            db.session.add(row)
        row.status, row.attempts, row.next_attempt_at, row.last_error = (
            SyncStatus.PENDING, 0, None, None)
        db.session.flush()
