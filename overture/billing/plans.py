"""Plans: defined by the platform (wholesale, for agencies) or by an agency (retail, for
its clients), in the defining tenant's scope. Every change is audited in that tenant's
chain with the plan before and after (`plan.created`, `plan.updated`, `plan.deleted`);
each edit raises the plan's version. A plan assigned to a tenant cannot be deleted.

The caller has checked `billing.read` (reads) or `billing.manage` (writes) and
commits.
"""

from __future__ import annotations

import unicodedata
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from overture.billing import pricebook, stripe_pending
from overture.billing.plan_models import BillingAccount, Plan
from overture.platform import audit
from overture.platform.db import db, get_or_404, save_named, utcnow
from overture.platform.errors import Conflict, Forbidden, ValidationFailed
from overture.platform.tenant_reads import TENANT, rows_per_tenant
from overture.tenants.access import Access
from overture.tenants.models import Tenant, TenantKind, TenantStatus

NAME_MAX = 120
MAX_PLANS = 200


def require_plan_owner(access: Access) -> None:
    """Only the platform and agencies define plans."""
    if access.tenant.kind not in (TenantKind.PLATFORM, TenantKind.AGENCY):
        raise Forbidden("plans are defined by an agency for its clients, or by the "
                        "platform for agencies")


def list_plans() -> list[Plan]:
    """The scope tenant's plans, by name."""
    return list(db.session.scalars(select(Plan).order_by(Plan.name).limit(MAX_PLANS)))


def get_plan(plan_id: object) -> Plan:
    return get_or_404(Plan, plan_id, "plan")


def snapshot(plan: Plan) -> dict[str, Any]:
    """The plan as audit events keep it, exact decimals as strings."""
    return {"name": plan.name, "currency": plan.currency,
            "base_fee": pricebook.plain(plan.base_fee), "price_book": plan.price_book,
            "version": plan.version}


def _name(value: object) -> str:
    name = str(value or "").strip()
    if not name:
        raise ValidationFailed.field("name", "a name is required")
    if len(name) > NAME_MAX:
        raise ValidationFailed.field("name", f"at most {NAME_MAX} characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise ValidationFailed.field("name", "no control characters")
    return name


def _checked(fields: dict[str, Any], plan: Plan | None) -> dict[str, Any]:
    """The fields of a plan to write, checked together (the currency decides what the
    price book and base fee may hold)."""
    currency = pricebook.check_currency(fields.get("currency", plan.currency if plan else "USD"))
    base = fields.get("base_fee", plan.base_fee if plan else 0)
    base_fee = pricebook.amount("base_fee", base, places=pricebook.minor_unit(currency))
    book = pricebook.parse(fields.get("price_book", plan.price_book if plan else {}), currency)
    ceiling = _ceiling(fields.get(CEILING, plan.webhook_rate_ceiling if plan else None))
    return {"currency": currency, "base_fee": base_fee, "price_book": pricebook.dump(book),
            CEILING: ceiling}


CEILING = "webhook_rate_ceiling"


def _ceiling(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationFailed.field(CEILING, "a whole number of calls a minute, at least 1, "
                                              "or empty for no ceiling of the plan's own")
    return value


def create_plan(access: Access, fields: dict[str, Any]) -> Plan:
    require_plan_owner(access)
    name = _name(fields.get("name"))
    plan = Plan(version=1, **_checked(fields, None))
    save_named(plan, name, "a plan", add=True)
    stripe_pending.plan_changed(plan)
    audit.record("plan.created", target_type="plan", target_id=plan.id,
                 details={"after": {**snapshot(plan), CEILING: plan.webhook_rate_ceiling}})
    return plan


def update_plan(access: Access, plan_id: object, fields: dict[str, Any]) -> Plan:
    require_plan_owner(access)
    plan = get_plan(plan_id)
    before, ceiling_before = snapshot(plan), plan.webhook_rate_ceiling
    name = _name(fields["name"]) if "name" in fields else plan.name
    checked = _checked(fields, plan)
    for key, value in checked.items():
        setattr(plan, key, value)
    changed = before != {**snapshot(plan), "name": name}
    if changed:
        plan.version += 1
        plan.updated_at = utcnow()
    save_named(plan, name, "a plan")
    if changed:
        stripe_pending.plan_changed(plan)
        audit.record("plan.updated", target_type="plan", target_id=plan.id,
                     details={"before": before, "after": snapshot(plan)})
    if plan.webhook_rate_ceiling != ceiling_before:  # a limit, not a price: no new version
        audit.record("plan.webhook_rate_ceiling", target_type="plan", target_id=plan.id,
                     details={"before": ceiling_before, "after": plan.webhook_rate_ceiling})
    return plan


def delete_plan(access: Access, plan_id: object) -> None:
    """Refused (409) while a tenant is billed at it: the database's foreign key says so
    even for an assignment made concurrently."""
    require_plan_owner(access)
    plan = get_plan(plan_id)
    before, ident = snapshot(plan), plan.id
    try:
        with db.session.begin_nested():
            stripe_pending.plan_deleted(plan)
            db.session.delete(plan)
            db.session.flush()
    except IntegrityError:
        db.session.expire(plan)
        raise Conflict("this plan is assigned to a tenant: assign another plan to it "
                       "first") from None
    audit.record("plan.deleted", target_type="plan", target_id=ident,
                 details={"before": before})


def billed_tenants(owner: Tenant, deleted: bool = False) -> list[Tenant]:
    """The tenants the plan owner bills: an agency's clients, the platform's agencies;
    with `deleted`, those deleted too (their usage of a month is still billed)."""
    if owner.kind == TenantKind.PLATFORM:
        stmt = select(Tenant).where(Tenant.kind == TenantKind.AGENCY)
    else:
        stmt = select(Tenant).where(Tenant.parent_id == owner.id)
    if not deleted:
        stmt = stmt.where(Tenant.status != TenantStatus.DELETED)
    return list(db.session.scalars(stmt.order_by(Tenant.name)))


def accounts_of(tenant_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[uuid.UUID, uuid.UUID]]:
    """Each tenant's (plan id, billed by) if it has an account, each read in its own
    scope, in one round trip. The ids must be checked as reachable."""
    stmt = select(BillingAccount.plan_id, BillingAccount.billed_by_id).where(
        BillingAccount.tenant_id == TENANT)
    found = rows_per_tenant(stmt, tenant_ids)
    return {tenant_id: (rows[0][0], rows[0][1])
            for tenant_id, rows in zip(tenant_ids, found, strict=True) if rows}


def usage_counts(owner: Tenant) -> dict[uuid.UUID, int]:
    """How many of the owner's billed tenants are at each of its plans."""
    return count_by_plan(accounts_of([t.id for t in billed_tenants(owner)]), owner.id)


def count_by_plan(accounts: dict[uuid.UUID, tuple[uuid.UUID, uuid.UUID]],
                  owner_id: uuid.UUID) -> dict[uuid.UUID, int]:
    counts: dict[uuid.UUID, int] = {}
    for plan_id, billed_by in accounts.values():
        if billed_by == owner_id:
            counts[plan_id] = counts.get(plan_id, 0) + 1
    return counts
