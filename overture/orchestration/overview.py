"""The numbers an agency sees for each of its client workspaces: runs in the last
seven days, what waits, open approvals, model usage this month and the last failure.

Each workspace is read in a transaction of its own scope, by ONE statement that
computes all of its numbers (never one query per number per workspace), all of them
in one round trip on PostgreSQL (`platform.tenant_reads`). Model usage comes from the
daily roll-ups (`billing.rollups`), never from the raw events.

The caller passes only tenant ids it checked the principal may reach (see
`web/api/ops.py`); this module reads nothing else.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select

from overture.billing.rollups import UsageDaily
from overture.orchestration.llm.metering import COST, INPUT_TOKENS, OUTPUT_TOKENS
from overture.orchestration.models import Approval, ApprovalStatus, Run, RunMode, RunStatus
from overture.platform.tenant_reads import TENANT, rows_per_tenant

WINDOW = timedelta(days=7)
COST_SCALE = Decimal("0.000001")  # the scale of every cost column
FAILED_RUN = (RunStatus.FAILED, RunStatus.TIMED_OUT)
IN_FLIGHT_RUN = (RunStatus.QUEUED, RunStatus.RUNNING)


@dataclass(frozen=True)
class WorkspaceOverview:
    runs_succeeded_7d: int
    runs_failed_7d: int
    runs_waiting: int  # in flight: queued, running, or parked on an approval or timer
    open_approvals: int
    cost_month: Decimal
    tokens_month: int
    last_failure_at: datetime | None
    last_failure_reason: str | None  # the code and step, for grouping (see failure_reason)
    last_failure_message: str | None  # what went wrong, for a person


def workspace_overview(tenant_ids: list[uuid.UUID],
                       now: datetime) -> dict[uuid.UUID, WorkspaceOverview]:
    """Each workspace's numbers, keyed by its id. `tenant_ids` must already be checked
    as reachable by the caller."""
    now = now.astimezone(UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    stmt = _statement(now - WINDOW, month_start)
    ids = list(dict.fromkeys(tenant_ids))
    if not ids:
        return {}
    rows = rows_per_tenant(stmt, ids)
    return {tenant_id: _numbers(found[0]) for tenant_id, found in zip(ids, rows, strict=True)}


def failure_reason(error: dict[str, Any] | None) -> str | None:
    """A failure's reason as people group it: the error's code and the step it
    happened in, never its message (which carries ids, amounts, names)."""
    if not error:
        return None
    code = str(error.get("code") or "error")
    step = error.get("step")
    return f"{code} in {step}" if step else code


def failure_message(error: dict[str, Any] | None) -> str | None:
    """A failure's message, as the run page shows it: what a person reads."""
    message = (error or {}).get("message")
    return str(message) if message else None


# --------------------------------------------------------------------------- reading


def _statement(since: datetime, month_start: datetime) -> Select[Any]:
    """One row of numbers for the workspace bound to `tenant`. The tenant is named in
    every WHERE as well as enforced by the scope: it picks the (tenant_id, ...) indexes."""

    def runs(*where: Any) -> Any:
        return select(func.count()).select_from(Run).where(
            Run.tenant_id == TENANT, Run.mode == RunMode.LIVE, *where) \
            .scalar_subquery()

    def usage(*meters: str) -> Any:
        return (select(func.coalesce(func.sum(UsageDaily.quantity), 0))
                .where(UsageDaily.tenant_id == TENANT, UsageDaily.meter.in_(meters),
                       UsageDaily.bucket >= month_start.date())
                .scalar_subquery())

    last = (select(Run.finished_at.label("at"), Run.error.label("error"))
            .where(Run.tenant_id == TENANT, Run.status.in_(FAILED_RUN),
                   Run.finished_at.is_not(None))
            .order_by(Run.finished_at.desc()).limit(1).subquery())
    return select(
        runs(Run.status == RunStatus.SUCCEEDED, Run.created_at >= since).label("succeeded"),
        runs(Run.status.in_(FAILED_RUN), Run.created_at >= since).label("failed"),
        runs(Run.status.in_(IN_FLIGHT_RUN)).label("waiting"),
        select(func.count()).select_from(Approval)
        .where(Approval.tenant_id == TENANT, Approval.status == ApprovalStatus.PENDING)
        .scalar_subquery().label("approvals"),
        usage(COST).label("cost"),
        usage(INPUT_TOKENS, OUTPUT_TOKENS).label("tokens"),
        select(last.c.at).scalar_subquery().label("failed_at"),
        select(last.c.error).scalar_subquery().label("error"),
    )


def _numbers(row: Any) -> WorkspaceOverview:
    succeeded, failed, waiting, approvals, cost, tokens, failed_at, error = row
    if failed_at is not None and failed_at.tzinfo is None:  # SQLite forgets the zone
        failed_at = failed_at.replace(tzinfo=UTC)
    return WorkspaceOverview(
        runs_succeeded_7d=int(succeeded), runs_failed_7d=int(failed),
        runs_waiting=int(waiting), open_approvals=int(approvals),
        cost_month=Decimal(str(cost or 0)).quantize(COST_SCALE),
        tokens_month=int(Decimal(str(tokens or 0))),
        last_failure_at=failed_at, last_failure_reason=failure_reason(error),
        last_failure_message=failure_message(error))
