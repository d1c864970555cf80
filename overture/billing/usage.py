"""Usage events: what each tenant consumed, per workflow, run, step and agent.

Written in the same transaction as the work they meter; billing rolls them up.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import Index, Numeric, String, func, select, text
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform.db import TenantOwned, db


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
    workflow_id: Mapped[uuid.UUID | None]
    run_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    step_id: Mapped[str | None] = mapped_column(String(80))
    agent_id: Mapped[uuid.UUID | None]


def record_usage(metric: str, quantity: float | int | Decimal = 1, *,
                 workflow_id: uuid.UUID | None = None, run_id: uuid.UUID | None = None,
                 step_id: str | None = None, agent_id: uuid.UUID | None = None) -> UsageEvent:
    event = UsageEvent(metric=metric, quantity=Decimal(str(quantity)), workflow_id=workflow_id,
                       run_id=run_id, step_id=step_id, agent_id=agent_id)
    db.session.add(event)
    return event


def usage_totals(run_id: uuid.UUID | None = None) -> dict[str, Decimal]:
    """Sum of each metric in the scope's tenant, optionally for one run."""
    stmt = select(UsageEvent.metric, func.sum(UsageEvent.quantity)).group_by(UsageEvent.metric)
    if run_id is not None:
        stmt = stmt.where(UsageEvent.run_id == run_id)
    return {metric: Decimal(total) for metric, total in db.session.execute(stmt)}
