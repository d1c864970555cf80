"""Step rows inside the transaction that records a step: queue one (its message is
sent after the commit), find one, finish or cancel one (with its pending approvals).
The outcomes that decide which (`flow`) and the joins (`joins`) build on these."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from overture.orchestration import dispatch
from overture.orchestration.definition import Graph
from overture.orchestration.models import (
    Approval,
    ApprovalStatus,
    Run,
    StepRun,
    StepStatus,
)
from overture.platform.db import db, utcnow


def queue_step(run: Run, step_id: str, path: str, graph: Graph,
               input: Any = None) -> StepRun:
    row = StepRun(run_id=run.id, step_id=step_id, path=path,
                  step_type=graph.step(step_id)["type"], status=StepStatus.QUEUED,
                  input=input, enqueued_at=utcnow())
    db.session.add(row)
    db.session.flush()
    return row


def send_later(step_run_id: uuid.UUID, tenant_id: uuid.UUID, delay_ms: int | None = None) -> None:
    dispatch.after_commit(db.session(), step_run_id, tenant_id, delay_ms)


def ms_until(when: datetime) -> int:
    return max(0, int((when - utcnow()).total_seconds() * 1000))


def step_row(run_id: uuid.UUID, step_id: str, path: str, lock: bool = False) -> StepRun | None:
    stmt = select(StepRun).where(StepRun.run_id == run_id, StepRun.step_id == step_id,
                                 StepRun.path == path)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return db.session.scalars(stmt).one_or_none()


def finish_row(row: StepRun, status: StepStatus, output: Any = None,
               error: dict[str, Any] | None = None) -> None:
    row.status, row.finished_at, row.claim, row.lease_until = status, utcnow(), None, None
    if output is not None:
        row.output = output
    if error is not None:
        row.error = error


def cancel_row(row: StepRun) -> None:
    row.status, row.finished_at, row.claim, row.lease_until = (StepStatus.CANCELLED, utcnow(),
                                                               None, None)


def cancel_approvals(step_run_id: uuid.UUID) -> None:
    for approval in db.session.scalars(select(Approval).where(
            Approval.step_run_id == step_run_id, Approval.status == ApprovalStatus.PENDING)):
        approval.status = ApprovalStatus.CANCELLED
