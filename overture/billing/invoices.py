"""Draft invoices and an agency's rebilling view, priced from the roll-ups.

A tenant's draft invoice for a month is its usage that month priced at the plan of
its billing account: a workspace's own usage; an agency's, its own and its client
workspaces' together (the platform bills the agency for all of them).

An agency's view of its clients, for a month: per client, its usage, its **cost** (its
usage at the agency's wholesale plan's rates, without that plan's base fee and included
quantities, which are the agency's, once a month), its **price** (its draft invoice at
its retail plan) and the **margin**, price - cost. Every figure is a sum of rounded
invoice lines, and the totals sum the rounded per-client figures: they add up to the
cent, and a client's price is its draft invoice's total (the same usage read, the same
pricing).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, union_all

from overture.billing import pricing, reports
from overture.billing.accounts import Account, Terms, account_of, plans_by_id
from overture.billing.meters import CATALOGUE
from overture.billing.periods import Period, midnight
from overture.billing.plans import accounts_of, billed_tenants
from overture.billing.rollups import UsageDaily, UsageHourly
from overture.platform.errors import NotFound
from overture.platform.tenant_reads import TENANT, rows_per_tenant
from overture.tenants.access import Access
from overture.tenants.models import Tenant, TenantKind

GAUGES = tuple(m.name for m in CATALOGUE if m.kind == "gauge")
NO_PLAN = ("no plan is assigned to this tenant: its agency (or, for an agency, the "
           "platform) assigns one on the Plans page or with PUT /api/v1/billing/accounts/"
           "{tenant_id}")


# --------------------------------------------------------------------------- usage


def _usage_stmt(period: Period) -> Select[Any]:
    """Per meter and dimension: each counter's quantity in the period, each gauge's
    level at its end; for the tenant bound as TENANT."""
    a, b = period.split()
    h, d = UsageHourly, UsageDaily
    counted = [select(h.meter, h.dimension, h.quantity).where(
        h.tenant_id == TENANT, h.meter.not_in(GAUGES),
        or_(and_(h.bucket >= period.since, h.bucket < a),
            and_(h.bucket >= b, h.bucket < period.until)))]
    if a < b:
        counted.append(select(d.meter, d.dimension, d.quantity).where(
            d.tenant_id == TENANT, d.meter.not_in(GAUGES), d.bucket >= a.date(),
            d.bucket < b.date()))
    day = midnight(period.until)
    levels = [select(d.meter, d.dimension, d.quantity).where(
                  d.tenant_id == TENANT, d.meter.in_(GAUGES), d.bucket < day.date()),
              select(h.meter, h.dimension, h.quantity).where(
                  h.tenant_id == TENANT, h.meter.in_(GAUGES), h.bucket >= day,
                  h.bucket < period.until)]
    rows = union_all(*counted, *levels).subquery()
    return (select(rows.c.meter, rows.c.dimension, func.sum(rows.c.quantity))
            .group_by(rows.c.meter, rows.c.dimension))


def usage_of(tenant_ids: list[uuid.UUID], period: Period) -> dict[uuid.UUID, pricing.Usage]:
    """Each tenant's usage to price, read in its own scope, one round trip."""
    ids = list(dict.fromkeys(tenant_ids))
    found = rows_per_tenant(_usage_stmt(period), ids)
    return {tenant_id: {(meter, dimension or ""): Decimal(quantity)
                        for meter, dimension, quantity in rows}
            for tenant_id, rows in zip(ids, found, strict=True)}


def added(usages: list[pricing.Usage]) -> dict[tuple[str, str], Decimal]:
    total: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for usage in usages:
        for key, quantity in usage.items():
            total[key] += quantity
    return dict(total)


def billed_usage(tenant: Tenant, period: Period) -> pricing.Usage:
    """What the tenant is billed for: a workspace's usage; an agency's with its clients'."""
    ids = [tenant.id]
    if tenant.kind == TenantKind.AGENCY:
        ids += [t.id for t in billed_tenants(tenant, deleted=True)]
    return added(list(usage_of(ids, period).values()))


def per_meter(usage: pricing.Usage) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for (meter, _), quantity in usage.items():
        sums[meter] += quantity
    return dict(sums)


# --------------------------------------------------------------------------- invoices


@dataclass(frozen=True)
class Draft:
    tenant: Tenant
    period: Period
    account: Account
    invoice: pricing.Invoice


def retail(terms: Terms, usage: pricing.Usage) -> pricing.Invoice:
    return pricing.price(terms.book, terms.currency, terms.base_fee, usage)


def wholesale(terms: Terms, usage: pricing.Usage) -> pricing.Invoice:
    return pricing.price(terms.book, terms.currency, None, usage, included=False)


def draft_invoice(tenant: Tenant, period: Period) -> Draft:
    """The tenant's invoice for the period, priced now; NotFound without a plan."""
    account = account_of(tenant.id)
    if account is None:
        raise NotFound(NO_PLAN)
    return Draft(tenant, period, account, retail(account.terms, billed_usage(tenant, period)))


# --------------------------------------------------------------------------- rebilling


@dataclass(frozen=True)
class ClientBill:
    tenant: Tenant
    usage: dict[str, Decimal]  # per meter
    plan: Terms | None  # the client's retail plan
    cost: Decimal | None  # None: the agency has no wholesale plan
    price: Decimal | None  # None: the client has no plan
    margin: Decimal | None  # None: price and cost are in different currencies


@dataclass(frozen=True)
class Rebilling:
    wholesale: Terms | None
    clients: list[ClientBill]
    cost: Decimal
    price: Decimal
    margin: Decimal
    currency: str | None  # of the totals; None: the prices are in several currencies


def rebilling(access: Access, period: Period) -> Rebilling:
    """The caller's agency's clients (those it may read billing of), each priced."""
    found, _ = reports.client_usage(access, period)
    tenants = [c.tenant for c in found]
    ids = [t.id for t in tenants]
    usages = usage_of(ids, period)
    accounts = accounts_of(ids)
    mine = {plan_id for plan_id, by in accounts.values() if by == access.tenant.id}
    retail_plans = plans_by_id(mine)
    upstream = account_of(access.tenant.id)
    cost_terms = upstream.terms if upstream else None
    bills = [bill(t, usages[t.id], retail_plans.get(accounts.get(t.id, (None, None))[0]),
                  cost_terms) for t in tenants]
    return totals(cost_terms, bills)


def bill(tenant: Tenant, usage: pricing.Usage, plan: Terms | None,
         cost_terms: Terms | None) -> ClientBill:
    cost = wholesale(cost_terms, usage).total if cost_terms else None
    price = retail(plan, usage).total if plan else None
    # A client at no plan is billed nothing: its margin is minus its cost.
    mixed = plan is not None and cost_terms is not None and plan.currency != cost_terms.currency
    currency = plan.currency if plan else cost_terms.currency if cost_terms else "USD"
    zero = pricing.round_money(Decimal(0), currency)
    margin = None if mixed else (zero if price is None else price) - (zero if cost is None
                                                                     else cost)
    return ClientBill(tenant, per_meter(usage), plan, cost, price, margin)


def totals(cost_terms: Terms | None, bills: list[ClientBill]) -> Rebilling:
    currencies = {b.plan.currency for b in bills if b.plan is not None}
    if cost_terms is not None:
        currencies.add(cost_terms.currency)
    currency = currencies.pop() if len(currencies) == 1 else None
    zero = pricing.round_money(Decimal(0), currency or "USD")
    cost = sum((b.cost for b in bills if b.cost is not None), zero)
    price = sum((b.price for b in bills if b.price is not None), zero)
    margin = sum((b.margin for b in bills if b.margin is not None), zero)
    return Rebilling(cost_terms, bills, cost, price, margin, currency)
