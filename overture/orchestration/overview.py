"""How each workspace is doing, for an agency's home: runs of the last 7 days, open
approvals, this month's model usage and the last failure.

Each tenant is read in its own scope (row-level security admits one tenant per
query), so the caller passes only tenants it has already checked it may see.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from overture.billing.usage import UsageEvent
from overture.orchestration.llm.metering import COST, INPUT_TOKENS, OUTPUT_TOKENS
from overture.orchestration.models import (
    Approval,
    ApprovalStatus,
    Run,
    RunStatus,
    StepRun,
    StepStatus,
)
from overture.platform.db import db, in_tenant

WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class WorkspaceOverview:
    runs_succeeded_7d: int = 0
    runs_failed_7d: int = 0
    runs_waiting: int = 0  # unfinished runs parked on an approval, a child or a timer
    open_approvals: int = 0
    cost_month: Decimal = Decimal(0)
    tokens_month: int = 0
    last_failure_at: datetime | None = None
    last_failure_reason: str | None = None


def workspace_overview(tenant_ids: list[uuid.UUID],
                       now: datetime) -> dict[uuid.UUID, WorkspaceOverview]:
    return {tenant_id: _one(tenant_id, now) for tenant_id in tenant_ids}


def _one(tenant_id: uuid.UUID, now: datetime) -> WorkspaceOverview:
    since = now - WINDOW
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    with in_tenant(tenant_id):
        counts = dict(db.session.execute(
            select(Run.status, func.count()).where(
                Run.finished_at >= since,
                Run.status.in_([RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT]))
            .group_by(Run.status)).all())
        waiting = db.session.scalar(
            select(func.count(func.distinct(StepRun.run_id))).join(Run, Run.id == StepRun.run_id)
            .where(StepRun.status == StepStatus.WAITING,
                   Run.status.in_([RunStatus.QUEUED, RunStatus.RUNNING]))) or 0
        approvals = db.session.scalar(select(func.count()).select_from(Approval).where(
            Approval.status.in_([ApprovalStatus.PENDING, ApprovalStatus.ESCALATED]))) or 0
        usage = dict(db.session.execute(
            select(UsageEvent.metric, func.sum(UsageEvent.quantity)).where(
                UsageEvent.created_at >= month,
                UsageEvent.metric.in_([COST, INPUT_TOKENS, OUTPUT_TOKENS]))
            .group_by(UsageEvent.metric)).all())
        failure = db.session.execute(
            select(Run.finished_at, Run.error).where(
                Run.status.in_([RunStatus.FAILED, RunStatus.TIMED_OUT]))
            .order_by(Run.finished_at.desc().nulls_last()).limit(1)).first()
    return WorkspaceOverview(
        runs_succeeded_7d=counts.get(RunStatus.SUCCEEDED, 0),
        runs_failed_7d=counts.get(RunStatus.FAILED, 0) + counts.get(RunStatus.TIMED_OUT, 0),
        runs_waiting=waiting,
        open_approvals=approvals,
        cost_month=Decimal(usage.get(COST) or 0),
        tokens_month=int(Decimal(usage.get(INPUT_TOKENS) or 0)
                         + Decimal(usage.get(OUTPUT_TOKENS) or 0)),
        last_failure_at=failure[0] if failure else None,
        last_failure_reason=_reason(failure[1]) if failure else None,
    )


def _reason(error: object) -> str | None:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "") or None
    return None
