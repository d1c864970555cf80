"""The meter-event outbox: usage leaves for Stripe from here, each closed UTC hour of
each billed meter once, under an identifier derived from what it reports.

`enqueue` (the scheduler, each round) writes one row per tenant, billed meter, closed
hour and account (stripe_sync.targets), from the hourly roll-ups, summed over slots,
agents, workflows and dimensions, once the hour has ended and settled
(`OVERTURE_STRIPE_SETTLE_MINUTES`). The row's identifier is
`overture:<tenant>:<meter>:<hour>:<account owner>`, unique in the table, so an hour is
written once and can only ever be sent under that identifier; the idempotency key is
derived from the identifier. Usage recorded in an hour after it was queued (a late
commit; within RECHECK) goes as a further row of that hour, for the difference, under
the identifier's next number (`...:2`).

`send_due` (the scheduler, and `overture billing send`) claims due rows with a lease,
sends each, and marks it sent in its own commit. A failure (Stripe down, 5xx after the
SDK's retries, a timeout) keeps the row pending with a growing delay, for as long as it
takes: nothing is dropped. A sender killed mid-batch leaves its claimed rows to their
lease; they are sent again with the same identifier and idempotency key, which Stripe
deduplicates. Stripe takes whole numbers only: model cost goes in micro-dollars
(stripe_prices.COST_SCALE). A row waits while its account or customer is missing. Stripe takes
events of the last 35 days only: an older row is marked expired (and reconcile shows
the gap).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from overture.billing import stripe_api, stripe_prices, stripe_sync
from overture.billing.rollups import UsageHourly, hour_of
from overture.billing.stripe_api import Account
from overture.billing.stripe_models import MeterEventRow, OutboxStatus
from overture.platform import metrics
from overture.platform.db import db, scoped_to, utcnow
from overture.platform.ids import new_id
from overture.platform.logging import get_logger
from overture.tenants.lifecycle import all_tenants
from overture.tenants.models import Tenant, TenantKind

log = get_logger(__name__)

HOUR = timedelta(hours=1)
STRIPE_WINDOW = timedelta(days=35)  # how old a meter event Stripe still takes
LOOKBACK = STRIPE_WINDOW - timedelta(days=1)  # where a first enqueue starts
RECHECK = timedelta(hours=24)  # how far back usage recorded late is still sent
LEASE = timedelta(minutes=5)  # longer than a batch takes
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
BATCH = 200
KEYS = uuid.UUID("5f0f4d1c-8f5e-4b7e-9d55-6a2b3c4d5e6f")


def identifier(tenant_id: uuid.UUID, meter: str, hour: datetime, owner_id: uuid.UUID,
               before: int = 0) -> str:
    """The row's identifier; `before` rows of the same hour were queued already (usage
    recorded after the hour was queued goes as a further row, `:2`, `:3`, ...)."""
    base = f"overture:{tenant_id}:{meter}:{hour:%Y-%m-%dT%H}Z:{owner_id}"
    return f"{base}:{before + 1}" if before else base


def idempotency_key(ident: str) -> str:
    return f"overture-meter-event-{uuid.uuid5(KEYS, ident)}"


def delay(attempts: int) -> timedelta:
    return min(FIRST_DELAY * 2 ** max(attempts - 1, 0), MAX_DELAY)


# --------------------------------------------------------------------------- enqueue


def closed_before(now: datetime) -> datetime:
    """Hours before this one have ended and settled."""
    return hour_of(now - timedelta(minutes=stripe_api.settings().stripe_settle_minutes))


def enqueue(tenant: Tenant, now: datetime | None = None) -> int:
    """Queue the scope tenant's closed hours not queued yet, and what was added to a
    recent hour after it was queued; how many rows were new. The caller commits."""
    now = now or utcnow()
    end, added = closed_before(now), 0
    for target in stripe_sync.targets(tenant):
        last = db.session.scalar(select(func.max(MeterEventRow.hour)).where(
            MeterEventRow.owner_id == target.owner_id))
        start = last + HOUR if last is not None else hour_of(now - LOOKBACK)
        start = min(start, end - RECHECK)
        if start < end:
            added += _insert(tenant.id, target, _missing(target, start, end))
    return added


def _missing(target: stripe_sync.Target, start: datetime, end: datetime
             ) -> list[tuple[str, datetime, Decimal, int]]:
    """(meter, hour, quantity not queued yet, rows queued before) of the period."""
    queued = {(m, h): (Decimal(q), n) for m, h, q, n in db.session.execute(
        select(MeterEventRow.meter, MeterEventRow.hour, func.sum(MeterEventRow.quantity),
               func.count())
        .where(MeterEventRow.owner_id == target.owner_id, MeterEventRow.hour >= start,
               MeterEventRow.hour < end)
        .group_by(MeterEventRow.meter, MeterEventRow.hour))}
    found = []
    for meter, hour, quantity in _hours(start, end):
        sent, rows = queued.get((meter, hour), (Decimal(0), 0))
        if quantity > sent:  # a decrease (a rebuild) is left to reconcile to show
            found.append((meter, hour, quantity - sent, rows))
    return found


def _hours(start: datetime, end: datetime) -> list[tuple[str, datetime, Decimal]]:
    stmt = (select(UsageHourly.meter, UsageHourly.bucket, func.sum(UsageHourly.quantity))
            .where(UsageHourly.bucket >= start, UsageHourly.bucket < end,
                   UsageHourly.meter.in_(stripe_sync.BILLED_NAMES))
            .group_by(UsageHourly.meter, UsageHourly.bucket))
    return [(m, b, Decimal(q)) for m, b, q in db.session.execute(stmt) if Decimal(q) != 0]


def _insert(tenant_id: uuid.UUID, target: stripe_sync.Target,
            hours: list[tuple[str, datetime, Decimal, int]]) -> int:
    if not hours:
        return 0
    now = utcnow()
    rows = [{"id": new_id(), "created_at": now, "tenant_id": tenant_id,
             "owner_id": target.owner_id, "billed_id": target.billed_id, "meter": meter,
             "hour": hour, "quantity": quantity, "attempts": 0,
             "status": OutboxStatus.PENDING,
             "identifier": identifier(tenant_id, meter, hour, target.owner_id, before)}
            for meter, hour, quantity, before in sorted(hours, key=lambda h: (h[1], h[0]))]
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    table = MeterEventRow.__table__
    stmt = (dialect.insert(table).values(rows)
            .on_conflict_do_nothing(index_elements=[table.c.identifier])
            .returning(table.c.id))
    return len(db.session.execute(stmt).all())


def billed_tenants() -> list[Tenant]:
    """The tenants some account bills: with no platform key, only the clients of the
    agencies that connected their own (so an installation without Stripe asks little
    every minute)."""
    tenants = [t for t in all_tenants() if t.kind in (TenantKind.AGENCY, TenantKind.WORKSPACE)]
    if stripe_sync.platform_key():
        return tenants
    billing = {t.id for t in tenants if t.kind == TenantKind.AGENCY
               and stripe_sync.agency_account_row(t.id) is not None}
    return [t for t in tenants if t.parent_id in billing]


def enqueue_all(now: datetime | None = None) -> int:
    added = 0
    for tenant in billed_tenants():
        with scoped_to(tenant.id):
            added += enqueue(tenant, now)
            db.session.commit()
    return added


# --------------------------------------------------------------------------- send


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    waiting: int = 0
    expired: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: SendReport) -> None:
        self.sent, self.failed = self.sent + other.sent, self.failed + other.failed
        self.waiting, self.expired = self.waiting + other.waiting, self.expired + other.expired
        self.errors += other.errors


def claim(limit: int, now: datetime) -> list[uuid.UUID]:
    """Due pending rows of the scope tenant, oldest hour first, leased to this sender."""
    db.session.execute(update(MeterEventRow).where(
        MeterEventRow.status == OutboxStatus.PENDING, MeterEventRow.hour < now - STRIPE_WINDOW)
        .values(status=OutboxStatus.EXPIRED, last_error="older than Stripe takes (35 days)"))
    due = (select(MeterEventRow.id).where(
        MeterEventRow.status == OutboxStatus.PENDING,
        (MeterEventRow.next_attempt_at.is_(None)) | (MeterEventRow.next_attempt_at <= now))
        .order_by(MeterEventRow.hour, MeterEventRow.id).limit(limit)
        .with_for_update(skip_locked=True))
    ids = list(db.session.scalars(due))
    if ids:
        db.session.execute(update(MeterEventRow).where(MeterEventRow.id.in_(ids))
                           .values(next_attempt_at=now + LEASE))
    db.session.commit()
    return ids


class _Accounts:
    """Accounts and customers resolved once per run; None while one is missing."""

    def __init__(self) -> None:
        self.accounts: dict[uuid.UUID, Account | None] = {}
        self.customers: dict[tuple[uuid.UUID, uuid.UUID], str] = {}
        self.down: set[uuid.UUID] = set()  # owners whose Stripe did not answer this run

    def account(self, owner_id: uuid.UUID) -> Account | None:
        if owner_id not in self.accounts:
            acct = stripe_sync.account(owner_id)
            if acct is not None:
                stripe_sync.meters(acct)
            self.accounts[owner_id] = acct
        return self.accounts[owner_id]

    def customer(self, acct: Account, billed_id: uuid.UUID) -> str:
        key = (acct.owner_id, billed_id)
        if key not in self.customers:
            self.customers[key] = stripe_sync.customer(acct, billed_id)
        return self.customers[key]


def send_row(row_id: uuid.UUID, cache: _Accounts, now: datetime) -> str:
    """Send one claimed row: `sent`, `waiting` (no account or customer yet) or
    `failed` (kept pending, due again later)."""
    row = db.session.get(MeterEventRow, row_id, populate_existing=True)
    if row is None or row.status != OutboxStatus.PENDING:
        return "sent"
    ident, tenant_id, owner_id = row.identifier, row.tenant_id, row.owner_id
    if owner_id in cache.down:  # do not wait out a timeout per row while Stripe is down
        return _retry(row_id, tenant_id, now, "Stripe did not answer: waiting", count=False)
    try:
        acct = cache.account(row.owner_id)
        if acct is None:
            return _retry(row_id, tenant_id, now, "no Stripe account to report to yet",
                          count=False)
        row = db.session.get(MeterEventRow, row_id)
        assert row is not None
        customer = cache.customer(acct, row.billed_id)
        row = db.session.get(MeterEventRow, row_id)
        assert row is not None
        params = {"event_name": stripe_sync.event_name(row.meter), "identifier": ident,
                  "timestamp": int(row.hour.timestamp()),
                  "payload": {"stripe_customer_id": customer,
                              "value": plain(stripe_prices.reported(row.meter, row.quantity))}}
        db.session.commit()  # no transaction stays open while Stripe answers
        stripe_api.client(acct).v1.billing.meter_events.create(
            params, acct.options(idempotency_key(ident)))
    except Exception as error:  # every failure waits and is tried again
        db.session.rollback()
        said = stripe_api.describe(error)
        if stripe_api.unavailable(error):
            cache.down.add(owner_id)
        log.warning("stripe.meter_event_failed", identifier=ident, error=said)
        return _retry(row_id, tenant_id, now, said)
    db.session.execute(update(MeterEventRow).where(MeterEventRow.id == row_id).values(
        status=OutboxStatus.SENT, sent_at=utcnow(), last_error=None, next_attempt_at=None))
    db.session.commit()
    return "sent"


def _retry(row_id: uuid.UUID, tenant_id: uuid.UUID, now: datetime, said: str,
           count: bool = True) -> str:
    with scoped_to(tenant_id):
        row = db.session.get(MeterEventRow, row_id, populate_existing=True)
        assert row is not None
        if count:
            row.attempts += 1
        row.last_error, row.next_attempt_at = said, now + delay(max(row.attempts, 1))
        db.session.commit()
    return "failed" if count else "waiting"


def send_due(limit: int = BATCH, now: datetime | None = None) -> SendReport:
    """Send every tenant's due rows, up to `limit` per tenant."""
    now = now or utcnow()
    report, cache = SendReport(), _Accounts()
    for tenant in billed_tenants():
        with scoped_to(tenant.id):
            report.add(_send_tenant(claim(limit, now), cache, now))
    return report


def _send_tenant(ids: list[uuid.UUID], cache: _Accounts, now: datetime) -> SendReport:
    report = SendReport()
    for row_id in ids:
        outcome = send_row(row_id, cache, now)
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def plain(quantity: Decimal) -> str:
    text = f"{Decimal(quantity).normalize():f}"
    return "0" if text in ("-0", "") else text


# --------------------------------------------------------------------------- backlog


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest_hour: datetime | None
    expired: int


def backlog() -> Backlog:
    """Rows not sent yet, over every tenant, and the oldest hour among them."""
    pending, oldest, expired = 0, None, 0
    for tenant in all_tenants():
        with scoped_to(tenant.id):
            for status, count, first in _counts():
                if status == OutboxStatus.PENDING:
                    pending += count
                    oldest = first if oldest is None or first < oldest else oldest
                elif status == OutboxStatus.EXPIRED:
                    expired += count
    db.session.rollback()
    return Backlog(pending, oldest, expired)


def _counts() -> Iterator[tuple[str, int, datetime]]:
    yield from db.session.execute(
        select(MeterEventRow.status, func.count(), func.min(MeterEventRow.hour))
        .where(MeterEventRow.status != OutboxStatus.SENT).group_by(MeterEventRow.status))


# `overture_stripe_outbox_backlog`: the rows still to send, read at each scrape.
metrics.backlog("stripe_outbox", lambda: backlog().pending)
