"""Hourly and daily roll-ups of usage events, kept in the events' own transaction.

One row per tenant, bucket (UTC hour; UTC day), meter, dimension, agent, workflow and
slot holds the sum of those events' quantities and their number. Writing an event adds
it to its hour's and its day's row with an upsert (`ON CONFLICT ... DO UPDATE SET
quantity = quantity + excluded.quantity`), so a month is read from at most 31 days of
rows, never from the events.

The slot: every step of a busy workflow adds to the same (hour, meter, workflow) row,
and an upserted row stays locked until its transaction commits, so concurrent workers
would take turns on it (with one of eight rows picked per event, the engine benchmark's
sequential case ran about a third slower: bench/README.md). Each thread writes to a
slot of its own instead, picked at random among SLOTS when it first writes, so two
threads rarely share one; readers add the slots up. A group has at most one row per
thread that wrote it in a bucket. "No agent" and "no workflow" are the nil UUID, so
that the unique key matches them (NULLs never conflict).

Rows are written in key order, hourly before daily, in every transaction: two writers
never wait on each other's rows in opposite orders.

`rebuild.py` recomputes them from the events (`overture billing rollup --rebuild`).
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Integer, Numeric, SmallInteger, String, UniqueConstraint
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform.db import TenantOwned, db, utcnow
from overture.platform.ids import new_id

SLOTS = 64
_thread = threading.local()
NONE = uuid.UUID(int=0)  # no agent, no workflow
KEY = ("tenant_id", "bucket", "meter", "dimension", "agent_id", "workflow_id", "slot")


class _Rollup(TenantOwned):
    __tenant_fk__ = False  # written with every event: see TenantOwned

    meter: Mapped[str] = mapped_column(String(40))
    dimension: Mapped[str] = mapped_column(String(200))
    agent_id: Mapped[uuid.UUID]
    workflow_id: Mapped[uuid.UUID]
    slot: Mapped[int] = mapped_column(SmallInteger)
    quantity: Mapped[Decimal] = mapped_column(Numeric(20, 6))
    events: Mapped[int] = mapped_column(Integer)


class UsageHourly(_Rollup, db.Model):
    __tablename__ = "usage_hourly"
    __table_args__ = (UniqueConstraint(*KEY, name="uq_usage_hourly_key"),)

    bucket: Mapped[datetime]  # the hour's start, UTC


class UsageDaily(_Rollup, db.Model):
    __tablename__ = "usage_daily"
    __table_args__ = (UniqueConstraint(*KEY, name="uq_usage_daily_key"),)

    bucket: Mapped[date] = mapped_column(Date)  # the UTC day


TABLES = (UsageHourly.__table__, UsageDaily.__table__)


def hour_of(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_of(at: datetime) -> date:
    return at.astimezone(UTC).date()


def slot() -> int:
    """This thread's slot (see the module's docstring)."""
    mine = getattr(_thread, "slot", None)
    if mine is None:
        mine = _thread.slot = random.randrange(SLOTS)  # noqa: S311  (spreading, not secrecy)
    return mine


def optional(value: uuid.UUID) -> uuid.UUID | None:
    """A roll-up's agent or workflow as the events have it (None for "none")."""
    return None if value == NONE else value


# --------------------------------------------------------------------------- writing


def add(events: Iterable[Mapping[str, Any]]) -> None:
    """Add inserted usage events (dicts of their columns) to their roll-ups, in the
    session's transaction."""
    hourly: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [Decimal(0), 0])
    daily: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [Decimal(0), 0])
    for e in events:
        rest = (e["metric"], e["dimension"] or "", e["agent_id"] or NONE,
                e["workflow_id"] or NONE, e.get("slot", slot()))
        for sums, bucket in ((hourly, hour_of(e["created_at"])),
                             (daily, day_of(e["created_at"]))):
            sums[(e["tenant_id"], bucket, *rest)][0] += Decimal(e["quantity"])
            sums[(e["tenant_id"], bucket, *rest)][1] += 1
    for table, sums in zip(TABLES, (hourly, daily), strict=True):
        if sums:
            _upsert(table, sums)


def _upsert(table: Any, sums: Mapping[tuple[Any, ...], list[Any]]) -> None:
    now = utcnow()
    rows = [{**dict(zip(KEY, key, strict=True)), "id": new_id(), "created_at": now,
             "quantity": quantity, "events": count}
            for key, (quantity, count) in sorted(sums.items(), key=lambda kv: _order(kv[0]))]
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c[k] for k in KEY],
        set_={"quantity": table.c.quantity + stmt.excluded.quantity,
              "events": table.c.events + stmt.excluded.events})
    db.session.execute(stmt)


def _order(key: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(str(part) for part in key)


def one_upsert(table: str, bucket: str) -> str:
    """The roll-up upsert of one event inserted by a CTE `u` (usage._insert_one), with
    the parameters of `one_params`: `bucket` is "hour" or "day"."""
    return f"""
    INSERT INTO {table} AS r (id, tenant_id, created_at, bucket, meter, dimension,
                              agent_id, workflow_id, slot, quantity, events)
    SELECT :{bucket}_row_id, :tenant_id, :created_at, :{bucket}, :metric, :dimension,
           :rollup_agent_id, :rollup_workflow_id, :slot, :quantity, 1
    FROM u
    ON CONFLICT (tenant_id, bucket, meter, dimension, agent_id, workflow_id, slot)
    DO UPDATE SET quantity = r.quantity + excluded.quantity, events = r.events + 1"""  # noqa: S608  (our names)


def one_params(event: Mapping[str, Any]) -> dict[str, Any]:
    """What `one_upsert` takes besides the event's own columns."""
    at = event["created_at"]
    return {"hour": hour_of(at), "day": day_of(at), "hour_row_id": new_id(),
            "day_row_id": new_id(), "rollup_agent_id": event["agent_id"] or NONE,
            "rollup_workflow_id": event["workflow_id"] or NONE, "slot": slot()}


# --------------------------------------------------------------------------- the hot path

# The engine's hot path (orchestration/hotpath/) writes a step's `steps` event in
# SQL, in the statement that records the step. These CTEs follow an `s` CTE (the step
# row it finished, if any): the event (`u`, nothing when its id exists: see
# usage.event_id), then its hour and its day. Parameters: `usage_id`, `usage_slot`
# (`slot()`), and the statement's tenant_id, workflow_id, run_id, step_id, step_run_id
# and now.
_HOT_ROLLUP = """
    INSERT INTO {table} AS r (id, tenant_id, created_at, bucket, meter, dimension,
                              agent_id, workflow_id, slot, quantity, events)
    SELECT gen_random_uuid(), %(tenant_id)s, %(now)s, {bucket}, 'steps', '',
           '00000000-0000-0000-0000-000000000000', %(workflow_id)s,
           %(usage_slot)s, 1, 1
    FROM u
    ON CONFLICT (tenant_id, bucket, meter, dimension, agent_id, workflow_id, slot)
    DO UPDATE SET quantity = r.quantity + excluded.quantity, events = r.events + 1
"""
# The buckets computed in SQL, as hour_of and day_of do: fewer parameters for the worker
# to encode on every step.
_UTC = "(%(now)s::timestamptz AT TIME ZONE 'UTC')"
HOT_STEP_METER = f"""
u AS (
    INSERT INTO usage_events (id, tenant_id, created_at, metric, quantity, dimension,
                              workflow_id, run_id, step_id, step_run_id)
    SELECT %(usage_id)s, %(tenant_id)s, %(now)s, 'steps', 1, '', %(workflow_id)s,
           %(run_id)s, %(step_id)s, %(step_run_id)s
    FROM s
    ON CONFLICT (id) DO NOTHING
    RETURNING id
),
uh AS ({_HOT_ROLLUP.format(table="usage_hourly",
                           bucket=f"date_trunc('hour', {_UTC}) AT TIME ZONE 'UTC'")}),
ud AS ({_HOT_ROLLUP.format(table="usage_daily", bucket=f"{_UTC}::date")})"""  # noqa: S608

