"""What a tenant used over a period, read from the roll-ups, never from the events.

A period (`periods.Period`) is cut into whole UTC days, read from the daily roll-ups,
and the hours of partial days at either end, read from the hourly ones: a month is at
most 31 days of rows, a period of hours at most 47 hours of rows.

    lines = summary(period, {"agent", "day"})   # quantities per meter, agent and day
    spent = month_total(MODEL_COST)              # for a budget check: this month so far
    per_client = clients(period, [ids...])       # an agency's workspaces, one round trip
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, union_all

from overture.billing.meters import CATALOGUE
from overture.billing.periods import Period, month_of
from overture.billing.rollups import UsageDaily, UsageHourly, optional
from overture.platform.db import db, utcnow
from overture.platform.pagination import MAX_LIMIT
from overture.platform.tenant_reads import TENANT, rows_per_tenant
from overture.tenants import lifecycle
from overture.tenants.access import Access, permitted
from overture.tenants.models import Tenant

GROUPS = ("agent", "workflow", "dimension", "day")
MAX_CLIENTS = 2000  # an agency's workspaces read at once (one round trip on PostgreSQL)
_COLUMNS = {"agent": "agent_id", "workflow": "workflow_id", "dimension": "dimension"}


@dataclass(frozen=True)
class Line:
    """One meter's quantity in the period, for one agent/workflow/dimension/day when
    grouped by them (None: not grouped by it, or "none" for agent and workflow)."""

    meter: str
    quantity: Decimal
    events: int
    agent_id: uuid.UUID | None = None
    workflow_id: uuid.UUID | None = None
    dimension: str | None = None
    day: date | None = None


def summary(period: Period, group_by: frozenset[str] | set[str] = frozenset()) -> list[Line]:
    """The scope tenant's usage in the period per meter, and per each of `group_by`
    (`GROUPS`); sorted by meter, then the groups."""
    columns = [c for g, c in _COLUMNS.items() if g in group_by]
    by_day = "day" in group_by
    a, b = period.split()
    totals: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [Decimal(0), 0])
    reads = [(UsageDaily, [UsageDaily.bucket >= a.date(), UsageDaily.bucket < b.date()])] \
        if a < b else []
    reads.append((UsageHourly, [or_(
        and_(UsageHourly.bucket >= period.since, UsageHourly.bucket < a),
        and_(UsageHourly.bucket >= b, UsageHourly.bucket < period.until))]))
    for model, where in reads:
        keys = [model.meter, *(getattr(model, c) for c in columns)]
        if by_day:
            keys.append(model.bucket)
        stmt = (select(*keys, func.sum(model.quantity), func.sum(model.events))
                .where(*where).group_by(*keys))
        for row in db.session.execute(stmt):
            *key, quantity, count = row
            if by_day:
                key[-1] = key[-1].date() if isinstance(key[-1], datetime) else key[-1]
            totals[tuple(key)][0] += Decimal(quantity)
            totals[tuple(key)][1] += int(count)
    return sorted((_line(key, columns, by_day, *sums) for key, sums in totals.items()),
                  key=_order)


def _line(key: tuple[Any, ...], columns: list[str], by_day: bool, quantity: Decimal,
          count: int) -> Line:
    values: dict[str, Any] = {"day": key[-1]} if by_day else {}
    for column, value in zip(columns, key[1:], strict=False):
        values[column] = optional(value) if column != "dimension" else value
    return Line(key[0], quantity, count, **values)


def _order(line: Line) -> tuple[Any, ...]:
    return (line.meter, str(line.agent_id or ""), str(line.workflow_id or ""),
            line.dimension or "", line.day or date.min)


def totals(lines: list[Line]) -> dict[str, Decimal]:
    """Per meter, whatever the grouping."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        sums[line.meter] += line.quantity
    return dict(sums)


def levels(at: datetime) -> dict[str, Decimal]:
    """The level of each gauge meter (knowledge storage) at `at` (on the hour): the
    sum of every change before it."""
    gauges = [m.name for m in CATALOGUE if m.kind == "gauge"]
    day = at.replace(hour=0)
    found: dict[str, Decimal] = {name: Decimal(0) for name in gauges}
    for model, where in ((UsageDaily, UsageDaily.bucket < day.date()),
                         (UsageHourly, and_(UsageHourly.bucket >= day, UsageHourly.bucket < at))):
        for meter, quantity in db.session.execute(
                select(model.meter, func.sum(model.quantity))
                .where(model.meter.in_(gauges), where).group_by(model.meter)):
            found[meter] += Decimal(quantity)
    return found


def month_total(meter: str, at: datetime | None = None) -> Decimal:
    """The scope tenant's quantity of one meter in the calendar month of `at` (default:
    now), from at most 31 days of daily rows: the read a budget check makes."""
    month = month_of(at or utcnow())
    return Decimal(db.session.scalar(
        select(func.coalesce(func.sum(UsageDaily.quantity), 0)).where(
            UsageDaily.meter == meter, UsageDaily.bucket >= month.since.date(),
            UsageDaily.bucket < month.until.date())) or 0)


def month_used(conn: Any, tenant_id: uuid.UUID, meter: str, at: datetime,
               agent_id: uuid.UUID | None = None, workflow_id: uuid.UUID | None = None
               ) -> Decimal:
    """As `month_total`, on `conn` (a Connection or the session) for one tenant named
    outright, optionally for one agent or one workflow: the read a limit check makes
    inside its own short transaction."""
    month = month_of(at)
    where = [UsageDaily.tenant_id == tenant_id, UsageDaily.meter == meter,
             UsageDaily.bucket >= month.since.date(), UsageDaily.bucket < month.until.date()]
    if agent_id is not None:
        where.append(UsageDaily.agent_id == agent_id)
    if workflow_id is not None:
        where.append(UsageDaily.workflow_id == workflow_id)
    return Decimal(conn.execute(select(func.coalesce(func.sum(UsageDaily.quantity), 0))
                                .where(*where)).scalar() or 0)


def month_used_by_workflow(conn: Any, tenant_id: uuid.UUID, meters: Iterable[str],
                           at: datetime) -> dict[tuple[str, uuid.UUID], Decimal]:
    """Per meter and workflow (the nil UUID: none), the tenant's quantity in the
    calendar month of `at`: every limit a run start checks, in one read."""
    month = month_of(at)
    rows = conn.execute(
        select(UsageDaily.meter, UsageDaily.workflow_id, func.sum(UsageDaily.quantity))
        .where(UsageDaily.tenant_id == tenant_id, UsageDaily.meter.in_(list(meters)),
               UsageDaily.bucket >= month.since.date(), UsageDaily.bucket < month.until.date())
        .group_by(UsageDaily.meter, UsageDaily.workflow_id))
    return {(meter, workflow_id): Decimal(total) for meter, workflow_id, total in rows}


# --------------------------------------------------------------------------- agencies


@dataclass(frozen=True)
class ClientUsage:
    tenant: Tenant
    totals: dict[str, Decimal]  # per meter


def client_usage(access: Access, period: Period) -> tuple[list[ClientUsage], dict[str, Decimal]]:
    """Each client workspace of the caller's agency (every tenant, for the platform)
    whose usage the caller may read (`billing.read` there), and the sum over them."""
    tenants: list[Tenant] = []
    cursor = None
    while len(tenants) < MAX_CLIENTS:
        page = lifecycle.managed_tenants(access, cursor, MAX_LIMIT)
        tenants += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    shown = permitted(access, tenants[:MAX_CLIENTS], "billing.read")
    per_tenant = clients(period, [t.id for t in shown])
    total: dict[str, Decimal] = defaultdict(Decimal)
    for sums in per_tenant.values():
        for meter, quantity in sums.items():
            total[meter] += quantity
    return [ClientUsage(t, per_tenant[t.id]) for t in shown], dict(total)


def clients(period: Period, tenant_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Decimal]]:
    """Per meter, each tenant's usage in the period, each read in its own scope, all in
    one round trip on PostgreSQL. `tenant_ids` must be checked as reachable."""
    ids = list(dict.fromkeys(tenant_ids))
    found = rows_per_tenant(_per_meter(period), ids)
    return {tenant_id: {meter: Decimal(quantity) for meter, quantity in rows}
            for tenant_id, rows in zip(ids, found, strict=True)}


def _per_meter(period: Period) -> Select[Any]:
    a, b = period.split()
    parts = [select(UsageHourly.meter.label("meter"), UsageHourly.quantity.label("quantity"))
             .where(UsageHourly.tenant_id == TENANT, or_(
                 and_(UsageHourly.bucket >= period.since, UsageHourly.bucket < a),
                 and_(UsageHourly.bucket >= b, UsageHourly.bucket < period.until)))]
    if a < b:
        parts.append(select(UsageDaily.meter, UsageDaily.quantity)
                     .where(UsageDaily.tenant_id == TENANT, UsageDaily.bucket >= a.date(),
                            UsageDaily.bucket < b.date()))
    rows = union_all(*parts).subquery()
    return select(rows.c.meter, func.sum(rows.c.quantity)).group_by(rows.c.meter)
