"""One statement read in each of several tenants' scopes: an agency's numbers for each
of its client workspaces.

Every tenant table is scoped twice, by the ORM and by PostgreSQL row-level security,
and both hold exactly one tenant per transaction (`platform.db`): `unscoped` would not
help, RLS would still show only the tenant in scope. So the statement runs once per
tenant, each time in a transaction of that tenant's scope. On PostgreSQL those
transactions (BEGIN, the scope's `set_config`, the statement, COMMIT) all go out in
one network write and come back in one read (`platform.pipeline`, as the engine's hot
path does): a 100-workspace agency costs one round trip, and RLS still checks each
workspace's rows against its own scope. Elsewhere (SQLite), or when that connection
fails, the statement runs once per tenant through the session (`in_tenant`).

The statement names its tenant as the bind parameter `tenant` (in its WHERE clauses
as well as through the scope: it picks the (tenant_id, ...) indexes). Callers pass only
tenant ids they checked the principal may reach.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from enum import Enum
from typing import Any

from sqlalchemy import Select, Uuid, bindparam

from overture.platform import pipeline
from overture.platform.db import db, in_tenant

TENANT = bindparam("tenant", type_=Uuid())
# The statement is planned once for every tenant. Left to decide, PostgreSQL kept
# planning it afresh for each (a custom plan looks cheaper for a small workspace):
# planning was two thirds of a small workspace's time, and the cached plan is as good.
GENERIC_PLAN = "SELECT set_config('plan_cache_mode', 'force_generic_plan', true)"


def rows_per_tenant(stmt: Select[Any], tenant_ids: list[uuid.UUID],
                    params: Mapping[str, Any] | None = None) -> list[list[Any]]:
    """The statement's rows in each tenant's scope, in the order of `tenant_ids`."""
    if not tenant_ids:
        return []
    params = dict(params or {})
    rows = _pipelined(stmt, tenant_ids, params) \
        if db.engine.dialect.name == "postgresql" else None
    return rows if rows is not None else _one_by_one(stmt, tenant_ids, params)


def _pipelined(stmt: Select[Any], ids: list[uuid.UUID],
               params: dict[str, Any]) -> list[list[Any]] | None:
    """None when that connection failed (the session's path then says why, or answers)."""
    expanded = stmt.compile(dialect=db.engine.dialect).construct_expanded_state(
        {**params, "tenant": ids[0]})  # each tenant's own goes in below
    # Plain values: the statuses are StrEnums, which psycopg might dump by name.
    sql = expanded.statement
    values = {k: v.value if isinstance(v, Enum) else v for k, v in expanded.parameters.items()}
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with pipeline.pipelined(url) as batch:
            results = []
            for tenant_id in ids:
                with pipeline.scoped(batch, tenant_id):
                    batch.execute(GENERIC_PLAN)
                    results.append(batch.execute(sql, {**values, "tenant": tenant_id}))
    except pipeline.Declined:
        return None
    return [result.fetchall() for result in results]


def _one_by_one(stmt: Select[Any], ids: list[uuid.UUID],
                params: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for tenant_id in ids:
        with in_tenant(tenant_id):
            rows.append(list(db.session.execute(stmt, {**params, "tenant": tenant_id}).all()))
    return rows
