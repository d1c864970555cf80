"""What went wrong in the tenant in scope, for its operators: failed runs grouped by
workflow, step and reason; the dead letters (steps the platform could not process);
and retrying failed runs from the step that failed.

A reason is the error's code (`http_5xx`, `timeout`, `agent_failed`, ...), never its
message: messages carry ids and values, so grouping on them would give one group per
run. Retrying is the engine's own replay (`runs.replay_run`): a new run of the same
version that reuses what succeeded before the failed step.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased

from overture.orchestration import runs
from overture.orchestration.definition import Graph
from overture.orchestration.models import (
    Run,
    RunMode,
    RunStatus,
    StepRun,
    StepStatus,
    Workflow,
    WorkflowVersion,
)
from overture.platform.db import db
from overture.platform.errors import OvertureError, ValidationFailed
from overture.platform.ids import parse_id

FAILED_RUN = (RunStatus.FAILED, RunStatus.TIMED_OUT)
SAMPLES = 5  # run ids shown per group
MAX_GROUPS = 200
MAX_DEAD_LETTERS = 200
MAX_RETRY = 100  # run ids per bulk retry
# Codes that say the platform, not the workflow, could not process the step: its
# attempts kept dying with their worker, or the executor crashed (a bug of ours).
PLATFORM_CODES = ("interrupted", "error")
# An unfinished step untouched this long after the sweeper should have re-sent it
# (RESEND_AFTER is 20 s) is stuck: its message keeps getting lost.
STALLED_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class FailureGroup:
    workflow_id: uuid.UUID
    workflow_name: str
    step_id: str | None
    reason: str
    count: int
    retried: int  # of those runs, how many were retried already
    first_seen: datetime | None
    last_seen: datetime | None
    sample_run_ids: list[uuid.UUID] = field(default_factory=list)


@dataclass(frozen=True)
class DeadLetter:
    step_run_id: uuid.UUID
    run_id: uuid.UUID
    workflow_id: uuid.UUID
    step_id: str
    kind: str  # "failed" (the platform gave up on it) or "stalled" (never processed)
    status: str
    attempts: int
    interruptions: int
    last_error: dict[str, Any] | None
    since: datetime | None


@dataclass(frozen=True)
class RetryResult:
    run_id: str
    outcome: str  # retried | already_retried | not_failed | not_found | refused
    new_run_id: uuid.UUID | None = None
    from_step: str | None = None
    detail: str | None = None


# --------------------------------------------------------------------------- groups


def _code() -> Any:
    return func.coalesce(Run.error["code"].as_string(), "error")


def _step() -> Any:
    return Run.error["step"].as_string()


def failure_groups(since: datetime, workflow_id: uuid.UUID | None = None,
                   limit: int = MAX_GROUPS) -> list[FailureGroup]:
    """Failed (and timed-out) runs since `since`, by workflow, step and reason, the
    `limit` largest groups, the largest first."""
    where = [Run.status.in_(FAILED_RUN), Run.created_at >= since, Run.mode == RunMode.LIVE]
    if workflow_id is not None:
        where.append(Run.workflow_id == workflow_id)
    # Each failed run joins at most one row here (the runs retried since `since`; a
    # replay is made after the run it retries), so plain counts suffice.
    replayed = (select(Run.replay_of_id.label("id")).distinct()
                .where(Run.replay_of_id.is_not(None), Run.created_at >= since).subquery())
    keys = (Run.workflow_id, _step(), _code())
    stmt = (select(*keys, func.count(), func.count(replayed.c.id),
                   func.min(Run.finished_at), func.max(Run.finished_at))
            .outerjoin(replayed, replayed.c.id == Run.id)
            .where(*where).group_by(*keys)
            .order_by(func.count().desc()).limit(min(limit, MAX_GROUPS)))
    rows = db.session.execute(stmt).all()
    if not rows:
        return []
    # Samples of the groups shown only (their workflows'), not of every failed run.
    samples = _samples([*where, Run.workflow_id.in_({r[0] for r in rows})], keys)
    names = _workflow_names({r[0] for r in rows})
    return [FailureGroup(workflow_id=wid, workflow_name=names.get(wid, ""), step_id=step,
                         reason=code, count=count, retried=retried, first_seen=first,
                         last_seen=last, sample_run_ids=samples.get((wid, step, code), []))
            for wid, step, code, count, retried, first, last in rows]


def _samples(where: list[Any], keys: tuple[Any, ...]) -> dict[tuple[Any, ...], list[uuid.UUID]]:
    """The latest SAMPLES run ids of each group, in one statement."""
    rank = func.row_number().over(partition_by=keys,
                                  order_by=(Run.created_at.desc(), Run.id.desc()))
    ranked = select(*keys, Run.id, rank.label("rank")).where(*where).subquery()
    out: dict[tuple[Any, ...], list[uuid.UUID]] = {}
    for *key, run_id, _ in db.session.execute(select(ranked).where(ranked.c.rank <= SAMPLES)
                                              .order_by(ranked.c.rank)):
        out.setdefault(tuple(key), []).append(run_id)
    return out


def _workflow_names(ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    return dict(db.session.execute(select(Workflow.id, Workflow.name)
                                   .where(Workflow.id.in_(ids))).all())


def group_run_ids(since: datetime, workflow_id: uuid.UUID, step_id: str | None,
                  reason: str) -> list[uuid.UUID]:
    """The runs of one group not retried yet, oldest first, at most MAX_RETRY: what
    "retry all" of the group sends to `retry_runs` (a second click takes the next)."""
    retry = aliased(Run)
    step = _step().is_(None) if step_id is None else _step() == step_id
    return list(db.session.scalars(
        select(Run.id).where(Run.status.in_(FAILED_RUN), Run.created_at >= since,
                             Run.mode == RunMode.LIVE,
                             Run.workflow_id == workflow_id, step, _code() == reason,
                             ~select(retry.id).where(retry.replay_of_id == Run.id).exists())
        .order_by(Run.created_at, Run.id).limit(MAX_RETRY)))


# --------------------------------------------------------------------------- dead letters


def dead_letters(now: datetime, since: datetime, workflow_id: uuid.UUID | None = None,
                 limit: int = MAX_DEAD_LETTERS) -> list[DeadLetter]:
    """Steps the platform could not process, the `limit` newest: those it gave up on
    (PLATFORM_CODES) since `since`, and unfinished steps of running runs that nothing
    has touched for STALLED_AFTER (their messages keep getting lost). Each is found
    through its run (by the runs' tenant and status index, then the step runs' run
    index): step runs have no index of their own on status (see migration 0012). Only
    the columns shown are read: a step's input, output and state can be large."""
    limit = min(limit, MAX_DEAD_LETTERS)
    stalled_before = now - STALLED_AFTER
    gave_up = (Run.status.in_(FAILED_RUN), Run.created_at >= since,
               StepRun.status == StepStatus.FAILED,
               StepRun.error["code"].as_string().in_(PLATFORM_CODES))
    stuck = (Run.status == RunStatus.RUNNING, or_(
        and_(StepRun.status == StepStatus.QUEUED,
             or_(StepRun.next_attempt_at.is_(None), StepRun.next_attempt_at <= stalled_before),
             or_(StepRun.enqueued_at.is_(None), StepRun.enqueued_at <= stalled_before)),
        and_(StepRun.status == StepStatus.RUNNING, StepRun.lease_until <= stalled_before)))
    columns = (StepRun.id, StepRun.run_id, StepRun.step_id, StepRun.status, StepRun.attempt,
               StepRun.interruptions, StepRun.error, StepRun.finished_at, StepRun.enqueued_at,
               StepRun.created_at, Run.workflow_id)
    # Both kinds in one statement: one pass over the step runs, not one per kind.
    stmt = (select(*columns).join(Run, Run.id == StepRun.run_id)
            .where(or_(and_(*gave_up), and_(*stuck)))
            .order_by(StepRun.created_at.desc(), StepRun.id.desc()).limit(limit))
    if workflow_id is not None:
        stmt = stmt.where(Run.workflow_id == workflow_id)
    found = db.session.execute(stmt).all()
    return [DeadLetter(step_run_id=row.id, run_id=row.run_id, workflow_id=row.workflow_id,
                       step_id=row.step_id,
                       kind="failed" if row.status == StepStatus.FAILED else "stalled",
                       status=row.status, attempts=row.attempt,
                       interruptions=row.interruptions, last_error=row.error,
                       since=row.finished_at or row.enqueued_at or row.created_at)
            for row in found]


# --------------------------------------------------------------------------- retry


def retry_runs(run_ids: list[str], started_by: uuid.UUID | None) -> list[RetryResult]:
    """Retry each failed run from the step that failed, as a replay. A run retried
    before is not retried again (a second click, or two operators at once: the run is
    locked while this looks). The caller commits."""
    if len(run_ids) > MAX_RETRY:
        raise ValidationFailed.field("run_ids", f"at most {MAX_RETRY} at a time")
    return [_retry_one(raw, started_by) for raw in dict.fromkeys(run_ids)]


def _retry_one(raw: str, started_by: uuid.UUID | None) -> RetryResult:
    run_id = parse_id(raw)
    run = None if run_id is None else db.session.scalars(
        select(Run).where(Run.id == run_id).with_for_update()
        .execution_options(populate_existing=True)).one_or_none()
    if run is None:
        return RetryResult(raw, "not_found")
    if run.status not in FAILED_RUN:
        return RetryResult(raw, "not_failed", detail=f"the run is {run.status}")
    if run.parent_run_id is not None:  # a replay of it alone would resume nothing
        return RetryResult(raw, "refused", detail=f"a subworkflow's run: retry its parent "
                                                  f"run {run.parent_run_id}")
    earlier = db.session.scalars(select(Run.id).where(Run.replay_of_id == run.id)
                                 .order_by(Run.created_at).limit(1)).first()
    if earlier is not None:
        return RetryResult(raw, "already_retried", new_run_id=earlier)
    from_step = retry_step(run)
    try:
        with db.session.begin_nested():
            replay = runs.replay_run(run, from_step, started_by)
    except OvertureError as refused:
        return RetryResult(raw, "refused", from_step=from_step, detail=refused.detail)
    return RetryResult(raw, "retried", new_run_id=replay.id, from_step=from_step)


def retry_step(run: Run) -> str:
    """The top-level step to run again: the failed step, or the block step around it
    (a replay starts at the top level); the first step when the run failed outside any
    step (it timed out, or reached its maximum number of steps)."""
    graph = Graph.of(db.session.get(WorkflowVersion, run.version_id).definition)
    step = (run.error or {}).get("step")
    if not isinstance(step, str) or step not in graph.steps:
        return graph.start
    while graph.block_of.get(step):
        step = graph.block_of[step].split("#")[0]
    return step
