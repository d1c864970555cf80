"""Usage events: what each tenant consumed, per workflow, run, step and agent.

Written in the same transaction as the work they meter, together with their hourly and
daily roll-ups (`rollups`), so that the two never disagree and nothing reads the raw
events to show a period. The meters are named in `meters`.

Exactly once: a write that may be repeated (the engine recording a step whose commit
answer was lost, a step recorded again after a retry of its transaction, a portal user
seen twice in a month) passes a `key`. The events' ids are then derived from the key,
the meter, the dimension and the agent, so a second write of the same facts inserts
nothing (`ON CONFLICT (id) DO NOTHING`), and only events actually inserted are added to
the roll-ups. A write without a key is a fact that happens once by construction (an
action called, a document added).

    record([Entry(STEPS, 1)], key=f"step:{step_run_id}",
           attribution=Attribution(workflow_id=..., run_id=..., step_id="charge"))
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Index, Numeric, String, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from overture.billing import rollups
from overture.billing.meters import PORTAL_USERS
from overture.platform.db import CrossTenantWrite, TenantOwned, current_tenant_id, db, utcnow
from overture.platform.ids import new_id

KEYS = uuid.UUID("8d6c1f8e-5a0e-4a53-9f5e-2f4b8f6a3c11")  # the namespace of derived ids


class UsageEvent(TenantOwned, db.Model):
    __tablename__ = "usage_events"
    __tenant_fk__ = False  # one or more per step: see TenantOwned
    __table_args__ = (
        Index("ix_usage_events_tenant_metric_time", "tenant_id", "metric", "created_at"),
        # An agent's calls and model usage (its performance); only events that name an
        # agent are in it (migration 0021).
        Index("ix_usage_events_tenant_agent_time", "tenant_id", "agent_id", "metric",
              "created_at", postgresql_where=text("agent_id IS NOT NULL"),
              sqlite_where=text("agent_id IS NOT NULL")),
    )

    metric: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[Decimal] = mapped_column(Numeric(20, 6))
    dimension: Mapped[str] = mapped_column(String(200), default="", server_default="")
    workflow_id: Mapped[uuid.UUID | None]
    run_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    step_id: Mapped[str | None] = mapped_column(String(80))
    step_run_id: Mapped[uuid.UUID | None]
    agent_id: Mapped[uuid.UUID | None]
    user_id: Mapped[uuid.UUID | None]  # portal activity: the end user


@dataclass(frozen=True)
class Attribution:
    """Where usage belongs, beyond its tenant (the scope's)."""

    workflow_id: uuid.UUID | None = None
    run_id: uuid.UUID | None = None
    step_id: str | None = None
    step_run_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None  # entries may name their own
    user_id: uuid.UUID | None = None
    # False for the work of a test run (orchestration/testmode): it is recorded nowhere,
    # held against no limit, and never reaches an invoice.
    billed: bool = True


@dataclass(frozen=True)
class Entry:
    """One quantity of one meter."""

    meter: str
    quantity: Decimal
    dimension: str = ""
    agent_id: uuid.UUID | None = None

    @property
    def metric(self) -> str:
        """The meter, by the events' own column name."""
        return self.meter


NOWHERE = Attribution()


def event_id(key: str, meter: str, dimension: str = "", agent_id: uuid.UUID | None = None
             ) -> uuid.UUID:
    """The id of the event `key` writes for this meter, dimension and agent."""
    return uuid.uuid5(KEYS, f"{key}|{meter}|{dimension}|{agent_id or ''}")


def step_key(step_run_id: uuid.UUID) -> str:
    """The key of a step run's `steps` event: one per step run, ever."""
    return f"step:{step_run_id}"


def merged(entries: Iterable[Entry]) -> list[Entry]:
    """One entry per (meter, dimension, agent), quantities added, in a stable order."""
    totals: dict[tuple[str, str, str], Entry] = {}
    for e in entries:
        k = (e.meter, e.dimension, str(e.agent_id or ""))
        seen = totals.get(k)
        totals[k] = e if seen is None else Entry(e.meter, seen.quantity + e.quantity,
                                                   e.dimension, e.agent_id)
    return [totals[k] for k in sorted(totals)]


def record(entries: Iterable[Entry], *, attribution: Attribution = NOWHERE,
           key: str | None = None, at: datetime | None = None) -> int:
    """Write the entries as usage events of the scope's tenant, in the session's
    transaction, with their roll-ups; how many events were new. With a `key`, writing
    the same facts again inserts nothing (see the module's docstring)."""
    if not attribution.billed:
        return 0
    tenant_id = current_tenant_id()
    if tenant_id is None:
        raise CrossTenantWrite("usage written with no tenant in scope")
    now = at or utcnow()
    rows = []
    for e in merged(Entry(e.meter, e.quantity, e.dimension, e.agent_id or attribution.agent_id)
                    for e in entries):
        agent_id = e.agent_id
        rows.append({
            "id": event_id(key, e.meter, e.dimension, agent_id) if key else new_id(),
            "tenant_id": tenant_id, "created_at": now, "metric": e.meter,
            "quantity": Decimal(e.quantity), "dimension": e.dimension,
            "workflow_id": attribution.workflow_id, "run_id": attribution.run_id,
            "step_id": attribution.step_id, "step_run_id": attribution.step_run_id,
            "agent_id": agent_id, "user_id": attribution.user_id})
    if not rows:
        return 0
    if len(rows) == 1 and db.session.get_bind().dialect.name == "postgresql":
        return _insert_one(rows[0])
    inserted = _insert_new(rows)
    rollups.add([r for r in rows if r["id"] in inserted])
    return len(inserted)


def _insert_new(rows: Sequence[dict[str, object]]) -> set[uuid.UUID]:
    """Insert the events whose id is not taken yet; the ids inserted."""
    db.session.flush()  # the ORM's pending rows first, as a Core statement skips them
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    table = UsageEvent.__table__
    stmt = (dialect.insert(table).values(list(rows))
            .on_conflict_do_nothing(index_elements=[table.c.id]).returning(table.c.id))
    return set(db.session.execute(stmt).scalars())


# One event and its two roll-ups in one statement, the common case (a run started, an
# action called): what `_insert_new` and `rollups.add` write for it, without their
# three statements, each compiled afresh (multi-row VALUES are not cached). The
# roll-ups add only an event actually inserted (`FROM u`), hourly before daily.
_ONE = text(f"""
WITH u AS (
    INSERT INTO usage_events (id, tenant_id, created_at, metric, quantity, dimension,
                              workflow_id, run_id, step_id, step_run_id, agent_id, user_id)
    VALUES (:id, :tenant_id, :created_at, :metric, :quantity, :dimension, :workflow_id,
            :run_id, :step_id, :step_run_id, :agent_id, :user_id)
    ON CONFLICT (id) DO NOTHING
    RETURNING id
),
uh AS ({rollups.one_upsert("usage_hourly", "hour")}),
ud AS ({rollups.one_upsert("usage_daily", "day")})
SELECT count(*) FROM u""")  # noqa: S608  (our names)


def _insert_one(row: dict[str, Any]) -> int:
    """`_insert_new` and `rollups.add` for one event, on PostgreSQL: 1 if it was new."""
    db.session.flush()  # the ORM's pending rows first, as a Core statement skips them
    params = {**row, **rollups.one_params(row)}
    return int(db.session.execute(_ONE, params).scalar_one())


def record_usage(metric: str, quantity: float | int | Decimal = 1, *,
                 workflow_id: uuid.UUID | None = None, run_id: uuid.UUID | None = None,
                 step_id: str | None = None, agent_id: uuid.UUID | None = None,
                 dimension: str = "", key: str | None = None) -> int:
    """One quantity of one meter (see `record`)."""
    return record([Entry(metric, Decimal(str(quantity)), dimension, agent_id)],
                  attribution=Attribution(workflow_id=workflow_id, run_id=run_id,
                                          step_id=step_id),
                  key=key)


def record_portal_activity(user_id: uuid.UUID, at: datetime | None = None) -> bool:
    """Count an end user as active in the portal this calendar month (UTC), once:
    call it where the portal records a sign-in or a run start, in that transaction
    (it does not commit). True when this was the user's first activity of the month."""
    now = at or utcnow()
    key = f"portal:{current_tenant_id()}:{user_id}:{now:%Y-%m}"
    return record([Entry(PORTAL_USERS, Decimal(1))], attribution=Attribution(user_id=user_id),
                  key=key, at=now) == 1


def usage_totals(run_id: uuid.UUID | None = None) -> dict[str, Decimal]:
    """Sum of each metric in the scope's tenant, optionally for one run."""
    stmt = select(UsageEvent.metric, func.sum(UsageEvent.quantity)).group_by(UsageEvent.metric)
    if run_id is not None:
        stmt = stmt.where(UsageEvent.run_id == run_id)
    return {metric: Decimal(total) for metric, total in db.session.execute(stmt)}
