"""The numbers an agency sees for each of its client workspaces: runs in the last
seven days, what waits, open approvals, model usage this month and the last failure.

Reading several tenants: every tenant table is scoped twice, by the ORM and by
PostgreSQL row-level security, and both hold exactly one tenant per transaction
(`platform.db`). `unscoped` does not help here: RLS would still show only the tenant
in scope. So each workspace is read in its own scope (`in_tenant`, which keeps who is
acting), with ONE statement that computes all of its numbers: a 100-workspace agency
costs 100 statements (plus the scope switches), never one per number per workspace.
The caller passes only tenant ids it checked the principal may reach (see
`web/api/ops.py`); this module trusts that list and reads nothing else.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from overture.billing.usage import UsageEvent
from overture.orchestration.llm.metering import COST, INPUT_TOKENS, OUTPUT_TOKENS
from overture.orchestration.models import Approval, ApprovalStatus, Run, RunStatus
from overture.platform.db import db, in_tenant

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
    last_failure_reason: str | None


def workspace_overview(tenant_ids: list[uuid.UUID],
                       now: datetime) -> dict[uuid.UUID, WorkspaceOverview]:
    """Each workspace's numbers, keyed by its id. `tenant_ids` must already be checked
    as reachable by the caller."""
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    result = {}
    for tenant_id in dict.fromkeys(tenant_ids):
        with in_tenant(tenant_id):
            result[tenant_id] = _overview(now - WINDOW, month_start)
    return result


def failure_reason(error: dict[str, object] | None) -> str | None:
    """A failure's reason as people group it: the error's code and the step it
    happened in, never its message (which carries ids, amounts, names)."""
    if not error:
        return None
    code = str(error.get("code") or "error")
    step = error.get("step")
    return f"{code} in {step}" if step else code


def _overview(since: datetime, month_start: datetime) -> WorkspaceOverview:
    def runs(*where: object) -> object:
        return select(func.count()).select_from(Run).where(*where).scalar_subquery()

    def usage(*metrics: str) -> object:
        return (select(func.coalesce(func.sum(UsageEvent.quantity), 0))
                .where(UsageEvent.metric.in_(metrics), UsageEvent.created_at >= month_start)
                .scalar_subquery())

    last = (select(Run.finished_at.label("at"), Run.error.label("error"))
            .where(Run.status.in_(FAILED_RUN), Run.finished_at.is_not(None))
            .order_by(Run.finished_at.desc()).limit(1).subquery())
    stmt = select(
        runs(Run.status == RunStatus.SUCCEEDED, Run.created_at >= since),
        runs(Run.status.in_(FAILED_RUN), Run.created_at >= since),
        runs(Run.status.in_(IN_FLIGHT_RUN)),
        select(func.count()).select_from(Approval)
        .where(Approval.status == ApprovalStatus.PENDING).scalar_subquery(),
        usage(COST),
        usage(INPUT_TOKENS, OUTPUT_TOKENS),
        select(last.c.at).scalar_subquery(),
        select(last.c.error).scalar_subquery(),
    )
    row = db.session.execute(stmt).one()
    succeeded, failed, waiting, approvals, cost, tokens, failed_at, error = row
    return WorkspaceOverview(
        runs_succeeded_7d=int(succeeded), runs_failed_7d=int(failed),
        runs_waiting=int(waiting), open_approvals=int(approvals),
        cost_month=Decimal(str(cost or 0)).quantize(COST_SCALE),
        tokens_month=int(Decimal(str(tokens or 0))),
        last_failure_at=failed_at, last_failure_reason=failure_reason(error))
