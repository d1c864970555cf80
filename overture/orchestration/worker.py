"""The worker side: the Dramatiq actor that runs step messages, and the sweeper that
makes sure nothing stays queued, leased or waiting past its time."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime, timedelta
from typing import Any

import dramatiq
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import aliased

from overture.billing import step_caps
from overture.orchestration import approvals, dispatch, engine, flow, step_rows
from overture.orchestration.models import (
    Approval,
    ApprovalStatus,
    Run,
    RunStatus,
    StepRun,
    StepStatus,
)
from overture.platform import metrics, queue, tenant_reads
from overture.platform.db import db, scoped_to, utcnow
from overture.platform.errors import Conflict
from overture.platform.logging import get_logger
from overture.tenants.lifecycle import all_tenants

log = get_logger(__name__)
QUEUE = "steps"
RESEND_AFTER = timedelta(seconds=20)  # a queued row with no claim this long is re-sent


def bind(app: Any, broker: dramatiq.Broker) -> dramatiq.Actor:
    """Declare the step actor on `broker`, running inside `app`'s context."""

    def run_step(step_run_id: str, tenant_id: str) -> None:
        with app.app_context():
            try:
                engine.process(uuid.UUID(step_run_id), uuid.UUID(tenant_id))
            finally:
                db.session.remove()

    step_actor = broker.actors.get("run_step") or dramatiq.actor(
        run_step, actor_name="run_step", queue_name=QUEUE, broker=broker, max_retries=0,
        time_limit=24 * 3600 * 1000)

    def send(step_run_id: uuid.UUID, tenant_id: uuid.UUID, delay_ms: int | None) -> None:
        step_actor.send_with_options(args=(str(step_run_id), str(tenant_id)), delay=delay_ms)

    dispatch.set_sender(app, send)
    queue.at_worker_shutdown(functools.partial(_give_back, app))
    return step_actor


def _give_back(app: Any) -> None:
    """A stopping worker gives the caps on steps what it took and did not use."""
    with app.app_context():
        step_caps.give_back()


# --------------------------------------------------------------------------- sweeper


def sweep_tenant(tenant_id: uuid.UUID) -> dict[str, int]:
    """Re-send lost messages, take back expired leases, time out runs and approvals."""
    counts = {"resent": 0, "timed_out": 0, "approvals": 0}
    now = utcnow()
    with scoped_to(tenant_id):
        for run in db.session.scalars(select(Run).where(
                Run.status == RunStatus.RUNNING, Run.deadline_at <= now).with_for_update()):
            flow.finish_run(run, RunStatus.TIMED_OUT, error={
                "code": "run_timeout", "message": "the run passed its maximum duration"})
            counts["timed_out"] += 1
        db.session.commit()
        for approval in approvals.due_approvals():
            try:
                approvals.expire(approval)
                db.session.commit()
                counts["approvals"] += 1
            except Conflict:
                db.session.rollback()
        stale = db.session.scalars(_of_running_runs(select(StepRun)).where(or_(
            and_(StepRun.status == StepStatus.QUEUED,
                 or_(StepRun.next_attempt_at.is_(None), StepRun.next_attempt_at <= now),
                 or_(StepRun.enqueued_at.is_(None), StepRun.enqueued_at <= now - RESEND_AFTER)),
            and_(StepRun.status == StepStatus.RUNNING, StepRun.lease_until < now))))
        for row in stale:
            row.enqueued_at = now
            step_rows.send_later(row.id, row.tenant_id)
            counts["resent"] += 1
        for step_run_id in _joins_due(now - RESEND_AFTER):
            step_rows.send_later(step_run_id, tenant_id)  # the worker completes the join
            counts["resent"] += 1
        db.session.commit()
    metrics.SWEEPER_REDISPATCHES.inc(counts["resent"])
    return counts


def _joins_due(started_before: datetime) -> list[uuid.UUID]:
    """Parallel steps still waiting although enough branches look ended: the commit
    that ended the last of them was not followed by its join check (a worker died in
    between). Counting by path prefix may overcount nested branches; the worker's own
    check is exact, so an extra message only costs a look."""
    branch = aliased(StepRun)
    ended = (select(func.count()).where(
        branch.run_id == StepRun.run_id, branch.ends_block.is_(True),
        branch.status == StepStatus.SUCCEEDED,
        branch.path.like(StepRun.path + StepRun.step_id + "#%"))
        .correlate(StepRun).scalar_subquery())
    return list(db.session.scalars(_of_running_runs(select(StepRun.id)).where(
        StepRun.status == StepStatus.WAITING, StepRun.step_type == "parallel",
        StepRun.started_at <= started_before,
        ended >= StepRun.state["needed"].as_integer())))


def _of_running_runs(stmt: Select[Any]) -> Select[Any]:
    """Step runs of running runs: only those can be unfinished (a run that ends settles
    its steps), and no index on step status exists to find them otherwise (that index
    would be written by every step's record; see migration 0012)."""
    return stmt.join(Run, Run.id == StepRun.run_id).where(Run.status == RunStatus.RUNNING)


def sweep_all() -> dict[str, int]:
    totals = {"resent": 0, "timed_out": 0, "approvals": 0}
    for tenant in all_tenants():
        tenant_id = tenant.id
        for key, value in sweep_tenant(tenant_id).items():
            totals[key] += value
    return totals


WAITING_APPROVALS = (select(func.count()).select_from(Approval)
                     .where(Approval.tenant_id == tenant_reads.TENANT,
                            Approval.status == ApprovalStatus.PENDING))


def count_waiting_approvals() -> int:
    """Approvals pending in every tenant, for `overture_approvals_waiting`: one count per
    tenant, each in its own scope under row-level security (no role may count across
    tenants), all in one round trip on PostgreSQL."""
    tenant_ids = [tenant.id for tenant in all_tenants()]
    total = sum(rows[0][0] for rows in tenant_reads.rows_per_tenant(WAITING_APPROVALS,
                                                                    tenant_ids))
    metrics.APPROVALS_WAITING.set(total)
    return total
