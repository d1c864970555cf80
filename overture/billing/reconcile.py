"""`overture billing reconcile`: our hourly roll-ups against Stripe's meter event
summaries, hour by hour, for each account, customer and billed meter of a period.

Ours is what the outbox reports (meter_outbox): per account and customer, the sum of
the roll-ups of every tenant that counts for that customer (an agency's platform
customer counts the agency and its workspaces). Stripe's is
`GET /v1/billing/meters/{id}/event_summaries` with an hourly window. An hour that is
still open, settling or pending in the outbox shows as a difference too: that is what
is not in Stripe yet.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select

from overture.billing import stripe_api, stripe_prices, stripe_sync
from overture.billing.periods import Period
from overture.billing.rollups import UsageHourly
from overture.platform.db import db, scoped_to
from overture.tenants.lifecycle import all_tenants
from overture.tenants.models import Tenant

PRECISION = Decimal("0.000001")  # the roll-ups' scale
Key = tuple[uuid.UUID, uuid.UUID]  # (account owner, billed tenant)


@dataclass(frozen=True)
class Difference:
    owner_id: uuid.UUID
    billed_id: uuid.UUID
    meter: str
    hour: datetime
    ours: Decimal
    stripes: Decimal

    def __str__(self) -> str:
        return (f"{self.hour:%Y-%m-%dT%H:00Z} {self.meter} customer of {self.billed_id} in "
                f"account of {self.owner_id}: ours {self.ours}, Stripe {self.stripes}")


@dataclass
class Result:
    compared: int  # (customer, meter, hour) cells with a value on either side
    differences: list[Difference]
    skipped: list[str]  # customers not compared, and why


def ours(period: Period, tenants: list[Tenant]) -> dict[Key, dict[tuple[str, datetime], Decimal]]:
    found: dict[Key, dict[tuple[str, datetime], Decimal]] = defaultdict(
        lambda: defaultdict(Decimal))
    for tenant in tenants:
        with scoped_to(tenant.id):
            targets = stripe_sync.targets(tenant)
            if not targets:
                continue
            rows = db.session.execute(
                select(UsageHourly.meter, UsageHourly.bucket, func.sum(UsageHourly.quantity))
                .where(UsageHourly.bucket >= period.since, UsageHourly.bucket < period.until,
                       UsageHourly.meter.in_(stripe_sync.BILLED_NAMES))
                .group_by(UsageHourly.meter, UsageHourly.bucket)).all()
            db.session.rollback()
        for target in targets:
            for meter, hour, quantity in rows:
                found[(target.owner_id, target.billed_id)][(meter, hour)] += Decimal(quantity)
    return found


def theirs(period: Period, owner_id: uuid.UUID, billed_id: uuid.UUID
           ) -> dict[tuple[str, datetime], Decimal] | str:
    """Stripe's hourly sums for the customer, or why they cannot be read."""
    row = stripe_sync.customer_row(billed_id, owner_id)
    acct = stripe_sync.account(owner_id)
    if row is None or acct is None:
        return "no Stripe customer or account yet"
    api = stripe_api.client(acct)
    found: dict[tuple[str, datetime], Decimal] = defaultdict(Decimal)
    for meter in stripe_sync.meters(acct).values():
        summaries = api.v1.billing.meters.event_summaries.list(meter.stripe_meter_id, {
            "customer": row.customer_id, "start_time": int(period.since.timestamp()),
            "end_time": int(period.until.timestamp()), "value_grouping_window": "hour",
            "limit": 100}, acct.options())
        for summary in summaries.auto_paging_iter():
            hour = datetime.fromtimestamp(summary.start_time, UTC)
            found[(meter.meter, hour)] += stripe_prices.from_reported(
                meter.meter, Decimal(str(summary.aggregated_value)))
    return found


def reconcile(period: Period, slug: str | None = None) -> Result:
    """Compare the period, for every billed tenant (or those `slug` names)."""
    tenants = all_tenants()
    expected = ours(period, tenants)
    result = Result(0, [], [])
    for (owner_id, billed_id), mine in sorted(expected.items(), key=str):
        billed = db.session.get(Tenant, billed_id)
        if slug and (billed is None or billed.slug != slug):
            continue
        got = theirs(period, owner_id, billed_id)
        if isinstance(got, str):
            result.skipped.append(f"customer of {billed_id} in account of {owner_id}: {got}")
            continue
        for cell in sorted(set(mine) | set(got)):
            a = mine.get(cell, Decimal(0)).quantize(PRECISION)
            b = got.get(cell, Decimal(0)).quantize(PRECISION)
            result.compared += 1
            if a != b:
                result.differences.append(Difference(owner_id, billed_id, *cell, a, b))
    return result
