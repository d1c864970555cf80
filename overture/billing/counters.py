"""The month's counters behind each hard limit, and the holds taken on them.

What a limit has *used* is read from the daily roll-ups (`reports.month_used`): the
usage events and their roll-ups stay the one truth. What is in flight is kept here:
a counter row per tenant, month, meter, agent and workflow holds

- `reserved`: every hold not yet settled, at its estimate while its call runs and at
  its actual cost once the call returned;
- `inflight`: the part of `reserved` that is still an estimate.

A call may go ahead while `used + reserved < limit`. A hold is taken in a short
transaction of its own, which first takes the counter's row lock (an UPDATE), then
reads `used`: a transaction that settled holds on this counter held that lock while it
wrote its usage, so the read sees that usage once it committed (PostgreSQL's READ
COMMITTED takes a new snapshot per statement; SQLite serialises writers). Racing calls
therefore queue on the row, and together never pass the limit by more than one call.

A hold's id comes from its key (a step run's n-th model call): a retried step takes
the same hold again instead of a second one. Holds are settled, deleted, in the
transaction that records the usage they were for (`settle`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Connection, Index, Numeric, String, UniqueConstraint, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from overture.billing.budgets import NONE, Limit
from overture.platform.db import TenantOwned, db, utcnow

KEYS = uuid.UUID("3f0c2b8e-9a57-4d0e-8b7a-51c1d2e4a9f0")  # the namespace of hold ids
STALE = timedelta(hours=1)  # a hold older than this outlived its step: given back


class BudgetCounter(TenantOwned, db.Model):
    __tablename__ = "budget_counters"
    __tenant_fk__ = False  # written on every limited call: see TenantOwned
    __table_args__ = (
        UniqueConstraint("tenant_id", "month", "meter", "agent_id", "workflow_id"),
        Index("ix_budget_counters_tenant_month", "tenant_id", "month"),
    )

    month: Mapped[str] = mapped_column(String(7))  # "2026-12"
    meter: Mapped[str] = mapped_column(String(40))
    agent_id: Mapped[uuid.UUID]
    workflow_id: Mapped[uuid.UUID]
    reserved: Mapped[Decimal] = mapped_column(Numeric(20, 6), default=Decimal(0))
    inflight: Mapped[Decimal] = mapped_column(Numeric(20, 6), default=Decimal(0))
    # a cap on steps: the steps it let start this month (`step_caps`); 0 on the others
    admitted: Mapped[Decimal] = mapped_column(Numeric(20, 6), default=Decimal(0),
                                              server_default="0")


class BudgetHold(TenantOwned, db.Model):
    __tablename__ = "budget_holds"
    __tenant_fk__ = False
    __table_args__ = (Index("ix_budget_holds_tenant_key", "tenant_id", "key"),
                      Index("ix_budget_holds_counter", "counter_id"))

    key: Mapped[str] = mapped_column(String(200))
    counter_id: Mapped[uuid.UUID]
    amount: Mapped[Decimal] = mapped_column(Numeric(20, 6))
    done: Mapped[bool] = mapped_column(Boolean, default=False)  # amount is the actual


COUNTERS, HOLDS = BudgetCounter.__table__, BudgetHold.__table__
_KEY = ("tenant_id", "month", "meter", "agent_id", "workflow_id")


@dataclass(frozen=True)
class Taken:
    """The counter's state once a hold was taken (before it, for `fresh` holds)."""

    counter_id: uuid.UUID
    fresh: bool  # False: the key held it already (a retried step)
    reserved_before: Decimal
    inflight_before: Decimal


def month_key(at: datetime) -> str:
    return at.strftime("%Y-%m")


def hold_id(key: str, counter_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(KEYS, f"{key}|{counter_id}")


def _dialect(bind: Any) -> Any:
    return postgresql if bind.dialect.name == "postgresql" else sqlite


def counter_id(conn: Connection, tenant_id: uuid.UUID, month: str, limit: Limit) -> uuid.UUID:
    """The counter of `limit` this month, made if missing."""
    meter, agent_id, workflow_id = limit.key
    values = {"tenant_id": tenant_id, "month": month, "meter": meter, "agent_id": agent_id,
              "workflow_id": workflow_id}
    conn.execute(_dialect(conn).insert(COUNTERS).values(
        id=uuid.uuid4(), created_at=utcnow(), reserved=0, inflight=0, **values)
        .on_conflict_do_nothing())
    return conn.execute(select(COUNTERS.c.id).where(
        *(COUNTERS.c[k] == v for k, v in values.items()))).scalar_one()


def locked(conn: Connection, tenant_id: uuid.UUID, month: str, limit: Limit) -> uuid.UUID:
    """The counter of `limit` this month, made if missing, its row locked until the
    transaction ends: one statement (an upsert that rewrites nothing)."""
    meter, agent_id, workflow_id = limit.key
    stmt = _dialect(conn).insert(COUNTERS).values(
        id=uuid.uuid4(), created_at=utcnow(), reserved=0, inflight=0, tenant_id=tenant_id,
        month=month, meter=meter, agent_id=agent_id, workflow_id=workflow_id)
    stmt = stmt.on_conflict_do_update(
        index_elements=[COUNTERS.c[k] for k in _KEY],
        set_={"reserved": COUNTERS.c.reserved}).returning(COUNTERS.c.id)
    return conn.execute(stmt).scalar_one()  # type: ignore[no-any-return]


def admitting(conn: Connection, tenant_id: uuid.UUID, month: str,
              limit: Limit) -> tuple[uuid.UUID, Decimal]:
    """The counter of a cap on steps this month, made if missing, its row locked until
    the transaction ends; (its id, the steps it let start)."""
    meter, agent_id, workflow_id = limit.key
    stmt = _dialect(conn).insert(COUNTERS).values(
        id=uuid.uuid4(), created_at=utcnow(), reserved=0, inflight=0, admitted=0,
        tenant_id=tenant_id, month=month, meter=meter, agent_id=agent_id,
        workflow_id=workflow_id)
    stmt = stmt.on_conflict_do_update(
        index_elements=[COUNTERS.c[k] for k in _KEY],
        set_={"admitted": COUNTERS.c.admitted}).returning(COUNTERS.c.id, COUNTERS.c.admitted)
    row = conn.execute(stmt).one()
    return row.id, Decimal(row.admitted)


def set_admitted(conn: Connection, counter: uuid.UUID, value: Decimal,
                 relative: bool = False) -> None:
    """Set the steps a cap let start (or add to them, `relative`)."""
    conn.execute(COUNTERS.update().where(COUNTERS.c.id == counter).values(
        admitted=COUNTERS.c.admitted + value if relative else value))


def held(conn: Connection, tenant_id: uuid.UUID, month: str
         ) -> dict[tuple[str, uuid.UUID, uuid.UUID], Decimal]:
    """What is held on each of the tenant's counters this month, by limit key."""
    return {(meter, agent_id, workflow_id): Decimal(reserved)
            for meter, agent_id, workflow_id, reserved in conn.execute(
                select(COUNTERS.c.meter, COUNTERS.c.agent_id, COUNTERS.c.workflow_id,
                       COUNTERS.c.reserved)
                .where(COUNTERS.c.tenant_id == tenant_id, COUNTERS.c.month == month))}


def lock(conn: Connection, counter: uuid.UUID) -> tuple[Decimal, Decimal]:
    """Take the counter's row lock (until the transaction ends); (reserved, inflight)."""
    row = conn.execute(COUNTERS.update().where(COUNTERS.c.id == counter)
                       .values(reserved=COUNTERS.c.reserved)
                       .returning(COUNTERS.c.reserved, COUNTERS.c.inflight)).one()
    return Decimal(row.reserved), Decimal(row.inflight)


def take(conn: Connection, tenant_id: uuid.UUID, counter: uuid.UUID, key: str,
         amount: Decimal, done: bool) -> Taken:
    """Hold `amount` on the locked counter under `key` (again, for a retried step)."""
    reserved, inflight = lock(conn, counter)
    ident = hold_id(key, counter)
    old = conn.execute(select(HOLDS.c.amount, HOLDS.c.done).where(HOLDS.c.id == ident)).first()
    if old is None:
        conn.execute(HOLDS.insert().values(id=ident, tenant_id=tenant_id, created_at=utcnow(),
                                           key=key, counter_id=counter, amount=amount,
                                           done=done))
    else:
        conn.execute(HOLDS.update().where(HOLDS.c.id == ident)
                     .values(amount=amount, done=done, created_at=utcnow()))
    was = (Decimal(old.amount), Decimal(0) if old.done else Decimal(old.amount)) \
        if old is not None else (Decimal(0), Decimal(0))
    _move(conn, counter, amount - was[0], (Decimal(0) if done else amount) - was[1])
    return Taken(counter, old is None, reserved - was[0], inflight - was[1])


def complete(conn: Connection, key: str, actual: Decimal) -> None:
    """The call returned: its holds now count its actual cost, no longer an estimate."""
    for ident, counter, amount, done in conn.execute(
            select(HOLDS.c.id, HOLDS.c.counter_id, HOLDS.c.amount, HOLDS.c.done)
            .where(HOLDS.c.key == key).order_by(HOLDS.c.counter_id)).all():
        if done:
            continue
        conn.execute(HOLDS.update().where(HOLDS.c.id == ident).values(amount=actual, done=True))
        _move(conn, counter, actual - amount, -amount)


def release(conn: Connection, keys: list[str]) -> list[uuid.UUID]:
    """Delete the holds of `keys` and take them off their counters; the counters."""
    if not keys:
        return []
    gone = conn.execute(HOLDS.delete().where(HOLDS.c.key.in_(keys)).returning(
        HOLDS.c.counter_id, HOLDS.c.amount, HOLDS.c.done)).all()
    moves: dict[uuid.UUID, list[Decimal]] = {}
    for counter, amount, done in gone:
        move = moves.setdefault(counter, [Decimal(0), Decimal(0)])
        move[0] -= Decimal(amount)
        move[1] -= Decimal(0) if done else Decimal(amount)
    for counter in sorted(moves):  # one order: writers never wait on each other in turn
        _move(conn, counter, *moves[counter])
    return sorted(moves)


def release_stale(conn: Connection, counter: uuid.UUID, now: datetime) -> bool:
    """Give back holds of steps that never recorded (their worker died and the step was
    not run again); True when there were any."""
    keys = conn.execute(select(HOLDS.c.key).where(
        HOLDS.c.counter_id == counter, HOLDS.c.created_at < now - STALE)).scalars().all()
    return bool(release(conn, list(keys)))


def _move(conn: Connection, counter: uuid.UUID, reserved: Decimal, inflight: Decimal) -> None:
    if reserved or inflight:
        conn.execute(COUNTERS.update().where(COUNTERS.c.id == counter).values(
            reserved=COUNTERS.c.reserved + reserved, inflight=COUNTERS.c.inflight + inflight))


def reserved_now(conn: Connection, tenant_id: uuid.UUID, month: str,
                 limit: Limit) -> Decimal:
    """What is held on the limit's counter this month (0 without a counter)."""
    meter, agent_id, workflow_id = limit.key
    found = conn.execute(select(COUNTERS.c.reserved).where(
        COUNTERS.c.tenant_id == tenant_id, COUNTERS.c.month == month,
        COUNTERS.c.meter == meter, COUNTERS.c.agent_id == agent_id,
        COUNTERS.c.workflow_id == workflow_id)).scalar()
    return Decimal(found or 0)


__all__ = ["NONE", "BudgetCounter", "BudgetHold"]
