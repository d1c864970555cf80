"""Billing accounts: the plan a tenant is billed at, and who bills it.

The platform assigns one of its (wholesale) plans to an agency; an agency one of its
(retail) plans to a client workspace. The account row is the billed tenant's (see
`plan_models`); the plan is read in the scope of its owner, the account's `billed_by`.
Assignments are audited in both chains (`billing_account.assigned`, `.removed`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from overture.billing import pricebook, stripe_pending
from overture.billing.plan_models import BillingAccount, Plan
from overture.billing.plans import get_plan, require_plan_owner
from overture.platform import audit
from overture.platform.db import db, in_tenant, utcnow
from overture.platform.errors import Conflict, NotFound
from overture.platform.ids import parse_id
from overture.tenants.access import Access
from overture.tenants.models import Tenant, TenantKind, TenantStatus


@dataclass(frozen=True)
class Terms:
    """A plan as pricing reads it: plain values, safe to keep across scopes."""

    plan_id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    currency: str
    base_fee: Decimal
    book: pricebook.PriceBook
    version: int


def terms(plan: Plan) -> Terms:
    # Kept with four decimals; checked to the currency's minor unit when written.
    base_fee = Decimal(plan.base_fee).quantize(Decimal(1).scaleb(-pricebook.minor_unit(
        plan.currency)))
    return Terms(plan.id, plan.tenant_id, plan.name, plan.currency, base_fee,
                 pricebook.parse(plan.price_book, plan.currency), plan.version)


@dataclass(frozen=True)
class Account:
    tenant_id: uuid.UUID
    billed_by_id: uuid.UUID
    since: datetime
    terms: Terms


def account_of(tenant_id: uuid.UUID) -> Account | None:
    """The tenant's account and its plan, or None when it is billed at no plan."""
    with in_tenant(tenant_id):
        row = db.session.scalars(select(BillingAccount).where(
            BillingAccount.tenant_id == tenant_id)).one_or_none()
        if row is None:
            return None
        found = (row.plan_id, row.billed_by_id, row.since)
    plan_id, billed_by, since = found
    with in_tenant(billed_by):
        plan = db.session.scalars(select(Plan).where(Plan.id == plan_id)).one()
        return Account(tenant_id, billed_by, since, terms(plan))


def webhook_rate_ceiling(tenant_id: uuid.UUID) -> int | None:
    """The ceiling the tenant's plan puts on its webhooks' calls a minute (None: none)."""
    with in_tenant(tenant_id):
        row = db.session.execute(select(BillingAccount.plan_id, BillingAccount.billed_by_id)
                                 .where(BillingAccount.tenant_id == tenant_id)).one_or_none()
    if row is None:
        return None
    with in_tenant(row.billed_by_id):
        return db.session.scalar(select(Plan.webhook_rate_ceiling).where(Plan.id == row.plan_id))


def plans_by_id(plan_ids: set[uuid.UUID]) -> dict[uuid.UUID, Terms]:
    """The scope tenant's plans among `plan_ids`."""
    if not plan_ids:
        return {}
    return {p.id: terms(p) for p in db.session.scalars(select(Plan).where(Plan.id.in_(plan_ids)))}


def billed_tenant(access: Access, tenant_id: object) -> Tenant:
    """A tenant the caller's tenant bills: the platform's agencies, an agency's
    workspaces. Any other is not found."""
    ident = parse_id(tenant_id)
    tenant = db.session.get(Tenant, ident) if ident else None
    if tenant is None or tenant.status == TenantStatus.DELETED:
        raise NotFound("tenant not found")
    billed = tenant.kind == TenantKind.AGENCY if access.is_platform \
        else tenant.parent_id == access.tenant.id
    if not billed:
        raise NotFound("tenant not found: the platform bills agencies, an agency its "
                       "client workspaces")
    return tenant


def assign(access: Access, tenant_id: object, plan_id: object | None) -> Account | None:
    """Bill `tenant_id` at the caller's plan `plan_id` from now on (None: at no plan).
    The caller commits."""
    require_plan_owner(access)
    tenant = billed_tenant(access, tenant_id)
    owner = access.tenant.id
    plan = terms(get_plan(plan_id)) if plan_id is not None else None
    with in_tenant(tenant.id):
        before = _write(tenant.id, owner, plan)
    after = str(plan.plan_id) if plan is not None else None
    if before != after:
        stripe_pending.subscription_changed(tenant.id)
        details = {"tenant_id": str(tenant.id), "before": before, "after": after,
                   "plan": plan.name if plan else None}
        action = "billing_account.assigned" if plan else "billing_account.removed"
        for chain in dict.fromkeys((owner, tenant.id)):
            audit.record(action, target_type="tenant", target_id=tenant.id, tenant_id=chain,
                         details=details)
    return account_of(tenant.id)


def _write(tenant_id: uuid.UUID, owner: uuid.UUID, plan: Terms | None) -> str | None:
    """Point the tenant's account at `plan` (in its scope); the plan it named before.
    Two assignments racing for a new account meet at its unique key: one is a 409."""
    try:
        with db.session.begin_nested():
            row = db.session.scalars(select(BillingAccount).where(
                BillingAccount.tenant_id == tenant_id).with_for_update()).one_or_none()
            before = str(row.plan_id) if row is not None else None
            if plan is None:
                if row is not None:
                    db.session.delete(row)
            elif row is None:
                db.session.add(BillingAccount(plan_id=plan.plan_id, billed_by_id=owner))
            elif row.plan_id != plan.plan_id:
                row.plan_id, row.billed_by_id, row.since = plan.plan_id, owner, utcnow()
            db.session.flush()
    except IntegrityError:
        raise Conflict("the plan of this tenant changed meanwhile: try again") from None
    return before
