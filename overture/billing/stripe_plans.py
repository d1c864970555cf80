"""Plans as Stripe products and prices, and each billed tenant's subscription to its
plan, in the account that bills it (stripe_sync: the platform's for agencies, the
agency's own, Connect or key, for its clients).

Work comes from the pending rows `stripe_pending` writes in the transaction that
changed a plan or an assignment; `sync_due` (the scheduler's billing pass each minute,
and `overture billing sync-plans`) does it, row by row, each in its own commits, never
holding a transaction while Stripe answers. Every call that creates something has an
idempotency key derived from what it stands for (plan id + version + item, tenant +
plan + version), and what is made is kept as soon as it is made, so a retry (Stripe
down, a 500, a worker killed) creates nothing twice. A failure keeps the row pending
with a growing delay. Every outcome is audited (`stripe.plan_synced`,
`.plan_sync_failed`, `.plan_unsupported`, `stripe.subscription_synced`, ...).

A new plan version gets new prices; the old ones are archived (`active=false`, which
leaves the subscriptions on them running), and each subscription moves to the new ones
at its next period through a subscription schedule (two phases: the current one as
is, then the new prices).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from overture.billing import accounts, stripe_api, stripe_pending, stripe_prices, stripe_sync
from overture.billing.plan_models import Plan
from overture.billing.plans import accounts_of, billed_tenants
from overture.billing.stripe_api import Account
from overture.billing.stripe_models import StripeCustomer, StripePlan, StripeSubscription
from overture.billing.stripe_models import SyncStatus as S
from overture.platform import audit
from overture.platform.db import db, in_tenant, scoped_to, utcnow
from overture.platform.logging import get_logger
from overture.tenants.lifecycle import all_tenants
from overture.tenants.models import Tenant, TenantStatus

log = get_logger(__name__)

FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
WAIT = timedelta(minutes=5)  # for an account to be connected, a plan to be synced
DAYS_UNTIL_DUE = 30
UNSUPPORTED = ("this plan cannot be priced by Stripe exactly ({}): it is not sent to "
               "Stripe; bill it from Overture's draft invoice")


@dataclass
class SyncReport:
    synced: int = 0
    failed: int = 0
    waiting: int = 0
    unsupported: int = 0

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


def delay(attempts: int) -> timedelta:
    return min(FIRST_DELAY * 2 ** max(attempts - 1, 0), MAX_DELAY)


def sync_due(now: datetime | None = None, force: bool = False) -> SyncReport:
    """Sync every due plan, then every due subscription (`force`: those waiting too)."""
    now, report = now or utcnow(), SyncReport()
    tenants = [t for t in all_tenants() if t.status != TenantStatus.DELETED]
    for model, sync in ((StripePlan, sync_plan), (StripeSubscription, sync_subscription)):
        for tenant in tenants:
            with scoped_to(tenant.id):
                for row_id in _due(model, now, force):
                    report.count(sync(row_id, tenant.id, now))
    return report


def _due(model: Any, now: datetime, force: bool) -> list[uuid.UUID]:
    stmt = select(model.id).where(model.status == S.PENDING)
    if not force:
        stmt = stmt.where(model.next_attempt_at.is_(None) | (model.next_attempt_at <= now))
    ids = list(db.session.scalars(stmt.order_by(model.created_at)))
    db.session.rollback()
    return ids


def _wait(model: Any, row_id: uuid.UUID, why: str, now: datetime) -> str:
    row = db.session.get(model, row_id)
    assert row is not None
    row.last_error, row.next_attempt_at = why, now + WAIT
    db.session.commit()
    return "waiting"


def _failed(model: Any, row_id: uuid.UUID, tenant_id: uuid.UUID, action: str, error: Exception,
            now: datetime, chains: tuple[uuid.UUID, ...]) -> str:
    db.session.rollback()
    said = stripe_api.describe(error)
    log.warning(action, row=str(row_id), error=said)
    with scoped_to(tenant_id):
        row = db.session.get(model, row_id, populate_existing=True)
        assert row is not None
        row.attempts += 1
        row.last_error, row.next_attempt_at = said, now + delay(row.attempts)
        for chain in dict.fromkeys(chains):
            audit.record(action, target_type=model.__tablename__, target_id=row_id,
                         tenant_id=chain, details={"error": said, "attempts": row.attempts})
        db.session.commit()
    return "failed"


# --------------------------------------------------------------------------- plans


def sync_plan(row_id: uuid.UUID, owner_id: uuid.UUID, now: datetime) -> str:
    """Make the plan's product and the prices of its version (the scope is its owner's)."""
    row = db.session.get(StripePlan, row_id)
    if row is None:
        return "synced"
    if row.plan_id is None:
        return _retire(row_id, owner_id, now)
    plan = db.session.get(Plan, row.plan_id)
    if plan is None:
        return "synced"
    terms = accounts.terms(plan)
    reasons = stripe_prices.unsupported(terms)
    if reasons:
        return _unsupported(row, terms, reasons)
    acct = stripe_sync.account(owner_id)
    if acct is None:
        return _wait(StripePlan, row_id, "no Stripe account bills this plan's tenants yet", now)
    try:
        made = _make_prices(acct, row_id, terms)
        archived = _archive(acct, row_id, made)
    except Exception as error:  # kept pending; every failure is tried again later
        return _failed(StripePlan, row_id, owner_id, "stripe.plan_sync_failed", error, now,
                       (owner_id,))
    row = db.session.get(StripePlan, row_id)
    assert row is not None
    row.prices, row.building, row.version = made, {}, terms.version
    row.status, row.last_error, row.attempts, row.synced_at = S.SYNCED, None, 0, utcnow()
    audit.record("stripe.plan_synced", target_type="plan", target_id=terms.plan_id, details={
        "version": terms.version, "product_id": row.product_id, "prices": made,
        "archived": archived, "account": acct.stripe_account})
    _resubscribe(owner_id, terms.plan_id)
    db.session.commit()
    return "synced"


def _retire(row_id: uuid.UUID, owner_id: uuid.UUID, now: datetime) -> str:
    """A deleted plan: archive its product and every price made for it, then forget it."""
    acct = stripe_sync.account(owner_id)
    if acct is None:
        return _wait(StripePlan, row_id, "no Stripe account to archive this plan in yet", now)
    row = db.session.get(StripePlan, row_id)
    assert row is not None
    product_id = row.product_id
    try:
        archived = _archive(acct, row_id, {})
        if product_id is not None:
            stripe_api.client(acct).v1.products.update(
                product_id, {"active": False}, acct.options(f"overture-retire-{product_id}"))
    except Exception as error:  # kept pending; tried again later
        return _failed(StripePlan, row_id, owner_id, "stripe.plan_sync_failed", error, now,
                       (owner_id,))
    row = db.session.get(StripePlan, row_id)
    assert row is not None
    db.session.delete(row)
    audit.record("stripe.plan_retired", target_type="stripe_plans", target_id=row_id,
                 details={"product_id": product_id, "archived": archived,
                          "account": acct.stripe_account})
    db.session.commit()
    return "synced"


def _unsupported(row: StripePlan, terms: accounts.Terms, reasons: list[str]) -> str:
    said = UNSUPPORTED.format("; ".join(reasons))
    if row.status != S.UNSUPPORTED or row.last_error != said:
        audit.record("stripe.plan_unsupported", target_type="plan", target_id=terms.plan_id,
                     details={"version": terms.version, "reasons": reasons})
    row.status, row.last_error, row.version = S.UNSUPPORTED, said, terms.version
    _resubscribe(terms.owner_id, terms.plan_id)
    db.session.commit()
    return "unsupported"


def _make_prices(acct: Account, row_id: uuid.UUID, terms: accounts.Terms) -> dict[str, str]:
    """The product (made, or renamed for a new version) and the version's prices, each
    kept as soon as Stripe answers."""
    meter_ids = {m.meter: m.stripe_meter_id for m in stripe_sync.meters(acct).values()}
    api, key = stripe_api.client(acct), f"overture-plan-{terms.plan_id}-v{terms.version}"
    row = db.session.get(StripePlan, row_id)
    assert row is not None
    product = {"name": terms.name, "metadata": {"overture_plan_id": str(terms.plan_id)}}
    if row.product_id is None:
        row.product_id = api.v1.products.create(
            product, acct.options(f"overture-product-{terms.plan_id}")).id
        db.session.commit()
    elif row.version != terms.version:
        api.v1.products.update(row.product_id, {"name": terms.name},
                               acct.options(f"{key}-product"))
    building = dict(row.building or {})
    if building.get("version") != terms.version:  # an older version's, left half made
        stale = list(building.get("stale", [])) + list(building.get("prices", {}).values())
        building = {"version": terms.version, "prices": {}, "stale": stale}
    product_id = row.product_id
    db.session.commit()
    for spec in stripe_prices.specs(terms):
        if spec.item in building["prices"]:
            continue
        params: dict[str, Any] = {**spec.params, "product": product_id,
                                  "metadata": {"overture_plan_id": str(terms.plan_id),
                                               "overture_plan_version": str(terms.version),
                                               "overture_item": spec.item}}
        if spec.meter is not None:
            params["recurring"] = {**params["recurring"], "meter": meter_ids[spec.meter]}
        price = api.v1.prices.create(params, acct.options(f"{key}-{spec.item}"))
        building = {**building, "prices": {**building["prices"], spec.item: price.id}}
        _keep(row_id, building=building)
    return dict(building["prices"])


def _archive(acct: Account, row_id: uuid.UUID, made: dict[str, str]) -> list[str]:
    """Archive every price of the plan's but those just `made` (the previous version's,
    any left half made)."""
    row = db.session.get(StripePlan, row_id)
    assert row is not None
    building = row.building or {}
    old = (list((row.prices or {}).values()) + list(building.get("stale", []))
           + list(building.get("prices", {}).values()))
    old = [p for p in dict.fromkeys(old) if p not in made.values()]
    db.session.commit()
    api = stripe_api.client(acct)
    for price_id in old:
        api.v1.prices.update(price_id, {"active": False},
                             acct.options(f"overture-archive-{price_id}"))
    return old


def _keep(row_id: uuid.UUID, **values: Any) -> None:
    row = db.session.get(StripePlan, row_id)
    assert row is not None
    for name, value in values.items():
        setattr(row, name, value)
    db.session.commit()


def _resubscribe(owner_id: uuid.UUID, plan_id: uuid.UUID) -> None:
    """Each tenant the owner bills at the plan: its subscription is to follow."""
    owner = db.session.get(Tenant, owner_id)
    if owner is None:
        return
    found = accounts_of([t.id for t in billed_tenants(owner)])
    for tenant_id, (at_plan, billed_by) in found.items():
        if at_plan == plan_id and billed_by == owner_id:
            stripe_pending.subscription_changed(tenant_id)


# --------------------------------------------------------------------------- subscriptions


def sync_subscription(row_id: uuid.UUID, tenant_id: uuid.UUID, now: datetime) -> str:
    """Bring the tenant's subscription to its plan's synced prices (the scope is its)."""
    account = accounts.account_of(tenant_id)
    row = db.session.get(StripeSubscription, row_id)
    assert row is not None
    if account is None:
        return _cancel(row_id, tenant_id, now) if row.subscription_id else _done(row_id)
    owner_id, terms = account.billed_by_id, account.terms
    with in_tenant(owner_id):
        plan_row = db.session.scalars(select(StripePlan).where(
            StripePlan.plan_id == terms.plan_id)).one_or_none()
        plan_state = None if plan_row is None else (plan_row.status, plan_row.version,
                                                    dict(plan_row.prices or {}))
    if plan_state is not None and plan_state[0] == S.UNSUPPORTED:
        if row.subscription_id:  # on an earlier version's prices: they must not go on
            outcome = _cancel(row_id, tenant_id, now)
            if outcome != "synced":
                return outcome
        return _not_billed(row_id, tenant_id, owner_id, terms)
    if plan_state is None or plan_state[0] != S.SYNCED or plan_state[1] != terms.version:
        return _wait(StripeSubscription, row_id, "waiting for the plan to reach Stripe", now)
    if not plan_state[2]:  # a free plan: nothing for Stripe to bill (nor items to hold)
        return _cancel(row_id, tenant_id, now) if row.subscription_id else _done(row_id)
    acct = stripe_sync.account(owner_id)
    if acct is None:
        return _wait(StripeSubscription, row_id, "no Stripe account bills this tenant yet", now)
    try:
        done = _subscribe(acct, row_id, tenant_id, terms, plan_state[2], now)
    except Exception as error:  # kept pending; tried again later
        return _failed(StripeSubscription, row_id, tenant_id, "stripe.subscription_sync_failed",
                       error, now, (owner_id, tenant_id))
    _record(row_id, tenant_id, owner_id, "stripe.subscription_synced", done)
    return "synced"


def _subscribe(acct: Account, row_id: uuid.UUID, tenant_id: uuid.UUID,
               terms: accounts.Terms, prices: dict[str, str], now: datetime) -> dict[str, Any]:
    customer = stripe_sync.customer(acct, tenant_id)
    row = db.session.get(StripeSubscription, row_id)
    assert row is not None
    current = (row.subscription_id if row.owner_id == acct.owner_id else None,
               row.schedule_id, dict(row.prices or {}))
    db.session.commit()
    api, items = stripe_api.client(acct), [{"price": p} for _, p in sorted(prices.items())]
    sub_id, schedule_id, before = current
    if sub_id is None:
        sub_id = api.v1.subscriptions.create({
            "customer": customer, "items": items, "collection_method": "send_invoice",
            "days_until_due": DAYS_UNTIL_DUE, "metadata": {
                "overture_tenant_id": str(tenant_id), "overture_plan_id": str(terms.plan_id),
                "overture_plan_version": str(terms.version)}},
            acct.options(f"overture-subscription-{tenant_id}-{terms.plan_id}-v{terms.version}"
                         )).id
        schedule_id = None
    elif before != prices:
        schedule_id = _next_period(api, acct, sub_id, schedule_id, items, terms, now)
    with in_tenant(tenant_id):
        found = db.session.scalars(select(StripeCustomer).where(
            StripeCustomer.owner_id == acct.owner_id)).one_or_none()
        if found is not None:
            found.subscription_id = sub_id
    return {"owner_id": acct.owner_id, "plan_id": terms.plan_id, "plan_version": terms.version,
            "subscription_id": sub_id, "schedule_id": schedule_id, "prices": prices}


def _next_period(api: Any, acct: Account, sub_id: str, schedule_id: str | None,
                 items: list[dict[str, str]], terms: accounts.Terms, now: datetime) -> str:
    """Move the subscription to `items` at its next period, through its schedule."""
    schedule = api.v1.subscription_schedules.retrieve(schedule_id, {}, acct.options()) \
        if schedule_id else None
    if schedule is None or schedule.status not in ("active", "not_started"):
        schedule = api.v1.subscription_schedules.create(
            {"from_subscription": sub_id},
            acct.options(f"overture-schedule-{sub_id}-{terms.plan_id}-v{terms.version}"))
    at = int(now.timestamp())
    phase = next((p for p in schedule.phases if p.start_date <= at < p.end_date),
                 schedule.phases[0])
    kept = [{"price": i.price if isinstance(i.price, str) else i.price.id} for i in phase.items]
    api.v1.subscription_schedules.update(schedule.id, {
        "end_behavior": "release", "proration_behavior": "none",
        "phases": [{"items": kept, "start_date": phase.start_date,
                    "end_date": phase.end_date},
                   {"items": items, "iterations": 1}]},
        acct.options(f"overture-schedule-{schedule.id}-{terms.plan_id}-v{terms.version}"))
    return str(schedule.id)


def _cancel(row_id: uuid.UUID, tenant_id: uuid.UUID, now: datetime) -> str:
    """Billed at no plan any more: the subscription ends with its period."""
    row = db.session.get(StripeSubscription, row_id)
    assert row is not None
    owner_id, sub_id = row.owner_id, row.subscription_id
    db.session.commit()
    acct = stripe_sync.account(owner_id) if owner_id else None
    if acct is None or sub_id is None:
        return _wait(StripeSubscription, row_id, "no Stripe account to cancel in", now)
    try:
        stripe_api.client(acct).v1.subscriptions.update(
            sub_id, {"cancel_at_period_end": True}, acct.options(f"overture-cancel-{sub_id}"))
    except Exception as error:
        return _failed(StripeSubscription, row_id, tenant_id, "stripe.subscription_sync_failed",
                       error, now, (owner_id, tenant_id))
    _record(row_id, tenant_id, owner_id, "stripe.subscription_cancelled", {
        "cancelled": sub_id, "subscription_id": None, "schedule_id": None, "plan_id": None,
        "plan_version": None, "prices": {}})
    return "synced"


def _not_billed(row_id: uuid.UUID, tenant_id: uuid.UUID, owner_id: uuid.UUID,
                terms: accounts.Terms) -> str:
    row = db.session.get(StripeSubscription, row_id)
    assert row is not None
    row.status, row.last_error = S.UNSUPPORTED, UNSUPPORTED.format("see the plan")
    for chain in dict.fromkeys((owner_id, tenant_id)):
        audit.record("stripe.subscription_unsupported", target_type="tenant",
                     target_id=tenant_id, tenant_id=chain,
                     details={"plan_id": str(terms.plan_id), "version": terms.version})
    db.session.commit()
    return "unsupported"


def _done(row_id: uuid.UUID) -> str:
    row = db.session.get(StripeSubscription, row_id)
    assert row is not None
    row.status, row.last_error = S.SYNCED, None
    db.session.commit()
    return "synced"


def _record(row_id: uuid.UUID, tenant_id: uuid.UUID, owner_id: uuid.UUID | None, action: str,
            done: dict[str, Any]) -> None:
    with scoped_to(tenant_id):
        row = db.session.get(StripeSubscription, row_id, populate_existing=True)
        assert row is not None
        for name, value in done.items():
            if hasattr(StripeSubscription, name):
                setattr(row, name, value)
        row.status, row.last_error, row.attempts, row.synced_at = S.SYNCED, None, 0, utcnow()
        details = {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in done.items()}
        for chain in dict.fromkeys(c for c in (owner_id, tenant_id) if c is not None):
            audit.record(action, target_type="tenant", target_id=tenant_id, tenant_id=chain,
                         details=details)
        db.session.commit()
