"""Recompute roll-ups from the raw events: `overture billing rollup --rebuild`, for
events written before the roll-ups existed, or to check them. Idempotent: a tenant's
roll-ups are deleted and summed again from its events, in one transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, select, text

from overture.billing import rollups
from overture.billing.rollups import NONE, TABLES, UsageDaily, UsageHourly
from overture.billing.usage import UsageEvent
from overture.platform.db import CrossTenantWrite, current_tenant_id, db

BATCH = 1000
_NIL = f"'{NONE}'"
_REBUILD_PG = """
INSERT INTO {table} (id, tenant_id, created_at, bucket, meter, dimension, agent_id,
                     workflow_id, slot, quantity, events)
SELECT gen_random_uuid(), tenant_id, now(), {bucket}, metric, dimension,
       coalesce(agent_id, {nil}), coalesce(workflow_id, {nil}), 0, sum(quantity), count(*)
FROM usage_events WHERE tenant_id = :tenant
GROUP BY tenant_id, {bucket}, metric, dimension, agent_id, workflow_id
"""
_BUCKETS_PG = {"usage_hourly": "date_trunc('hour', created_at AT TIME ZONE 'UTC')"
                               " AT TIME ZONE 'UTC'",
               "usage_daily": "(created_at AT TIME ZONE 'UTC')::date"}


def rebuild() -> int:
    """Recompute the scope tenant's roll-ups from its events, in the session's
    transaction (the caller commits); how many events they hold. On PostgreSQL the
    roll-up tables are locked against writes until that commit: a writer's event and
    its roll-ups go in one statement, so each event is either committed before the
    lock (and summed here) or waits for it (and is added after): none is counted twice
    or missed."""
    tenant_id = current_tenant_id()
    if tenant_id is None:
        raise CrossTenantWrite("roll-ups rebuilt with no tenant in scope")
    postgres = db.session.get_bind().dialect.name == "postgresql"
    if postgres:
        db.session.execute(text("LOCK TABLE usage_hourly, usage_daily "
                                "IN SHARE ROW EXCLUSIVE MODE"))
    for model in (UsageHourly, UsageDaily):
        db.session.execute(delete(model))  # the scope's rows only
    if postgres:
        for table in TABLES:
            db.session.execute(text(_REBUILD_PG.format(
                table=table.name, bucket=_BUCKETS_PG[table.name], nil=_NIL)),
                {"tenant": tenant_id})
    else:
        _rebuild_in_python(tenant_id)
    return int(db.session.scalar(select(func.count()).select_from(UsageEvent)) or 0)


def _rebuild_in_python(tenant_id: uuid.UUID) -> None:
    """SQLite (the embedded mode, one writer at a time): the events through Python."""
    columns = [UsageEvent.tenant_id, UsageEvent.created_at, UsageEvent.metric,
               UsageEvent.quantity, UsageEvent.dimension, UsageEvent.agent_id,
               UsageEvent.workflow_id]
    batch: list[dict[str, Any]] = []
    for row in db.session.execute(select(*columns)).yield_per(BATCH):
        batch.append({**row._mapping, "slot": 0})  # rebuilt rows are all slot 0
        if len(batch) == BATCH:
            rollups.add(batch)
            batch = []
    rollups.add(batch)
