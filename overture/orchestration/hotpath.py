"""The engine's most frequent statements, written in SQLAlchemy Core on the session's
connection (no ORM unit of work): claiming a step run, reading what its expressions
see, and recording the common case of a step that completed and hands over to the
next step of its block. Everything else goes through `flow` on ORM objects.

Statements run in the session's transaction, so the tenant scope that `db` writes
into each transaction applies (row-level security), and every statement names the
tenant as well.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, and_, bindparam, or_, select, text, update

from overture.orchestration.models import Run, StepRun, StepStatus
from overture.platform.db import db
from overture.platform.ids import new_id

STEPS = StepRun.__table__
RUNS = Run.__table__


@dataclass(frozen=True)
class ClaimedRow:
    id: uuid.UUID
    run_id: uuid.UUID
    step_id: str
    path: str
    step_type: str
    attempt: int
    input: Any
    started_at: datetime


@dataclass(frozen=True)
class RunFacts:
    """What a step needs of its run, read once per claim."""

    id: uuid.UUID
    status: str
    version_id: uuid.UUID
    workflow_id: uuid.UUID
    input: Any
    trigger: str
    started_at: datetime | None
    deadline_at: datetime | None
    steps_executed: int


def _claimable(now: datetime) -> Any:
    s = STEPS.c
    return or_(and_(s.status == StepStatus.QUEUED,
                    or_(s.next_attempt_at.is_(None), s.next_attempt_at <= now)),
               and_(s.status == StepStatus.RUNNING, s.lease_until < now))


def claim_row(step_run_id: uuid.UUID, tenant_id: uuid.UUID, token: str, now: datetime,
              lease: timedelta) -> ClaimedRow | None:
    """Take a queued row (or one whose lease ran out) for this worker; None when it is
    taken, finished or not due: a duplicate message is then dropped."""
    s = STEPS.c
    stmt = (update(STEPS)
            .where(s.id == step_run_id, s.tenant_id == tenant_id, _claimable(now))
            .values(status=StepStatus.RUNNING, claim=token, attempt=s.attempt + 1,
                    lease_until=now + lease, started_at=db.func.coalesce(s.started_at, now))
            .returning(s.id, s.run_id, s.step_id, s.path, s.step_type, s.attempt, s.input,
                       s.started_at))
    row = db.session.connection().execute(stmt).one_or_none()
    return ClaimedRow(*row) if row is not None else None


def extend_lease(step_run_id: uuid.UUID, tenant_id: uuid.UUID, until: datetime) -> None:
    db.session.connection().execute(
        update(STEPS).where(STEPS.c.id == step_run_id, STEPS.c.tenant_id == tenant_id)
        .values(lease_until=until))


def run_facts(run_id: uuid.UUID, tenant_id: uuid.UUID) -> RunFacts:
    r = RUNS.c
    row = db.session.connection().execute(
        select(r.id, r.status, r.version_id, r.workflow_id, r.input, r.trigger, r.started_at,
               r.deadline_at, r.steps_executed)
        .where(r.id == run_id, r.tenant_id == tenant_id)).one()
    return RunFacts(*row)


def outputs_on(run_id: uuid.UUID, tenant_id: uuid.UUID,
               paths: list[str]) -> list[tuple[str, str, Any]]:
    """(step id, path, output) of the finished steps on these iteration paths."""
    s = STEPS.c
    return [tuple(r) for r in db.session.connection().execute(
        select(s.step_id, s.path, s.output).where(
            s.tenant_id == tenant_id, s.run_id == run_id, s.path.in_(paths),
            s.status.in_([StepStatus.SUCCEEDED, StepStatus.SKIPPED])))]


def loop_state(run_id: uuid.UUID, tenant_id: uuid.UUID, step_id: str,
               path: str) -> dict[str, Any] | None:
    s = STEPS.c
    return db.session.connection().execute(
        select(s.state).where(s.tenant_id == tenant_id, s.run_id == run_id,
                              s.step_id == step_id, s.path == path)).scalar_one_or_none()


# --------------------------------------------------------------------------- hand-over


@dataclass(frozen=True)
class Successor:
    step_id: str
    step_type: str
    claim: str | None  # claimed at birth by this worker, or None: queued for a message
    lease_until: datetime | None


@dataclass(frozen=True)
class HandedOver:
    successor_id: uuid.UUID
    steps_executed: int
    deadline_at: datetime | None


# One round trip records a completed step and queues its successor: lock the run
# first (as cancelling and finishing a run do), count the step, finish the row if
# this worker's claim still holds, insert the successor (claimed at birth when this
# worker runs it next), and meter the step.
_HAND_OVER = text("""
WITH r AS (
    UPDATE runs SET steps_executed = steps_executed + 1
    WHERE id = :run_id AND tenant_id = :tenant_id AND status = 'running'
    RETURNING steps_executed, deadline_at
), s AS (
    UPDATE step_runs SET status = 'succeeded', output = :output, finished_at = :now,
           claim = NULL, lease_until = NULL
    WHERE id = :step_run_id AND tenant_id = :tenant_id AND claim = :claim
      AND status = 'running' AND EXISTS (SELECT 1 FROM r)
    RETURNING id
), n AS (
    INSERT INTO step_runs (id, tenant_id, created_at, run_id, step_id, path, step_type,
                           status, attempt, claim, lease_until, enqueued_at, started_at,
                           tokens, cost)
    SELECT CAST(:next_id AS uuid), CAST(:tenant_id AS uuid), CAST(:now AS timestamptz),
           CAST(:run_id AS uuid), CAST(:next_step AS varchar), CAST(:path AS varchar),
           CAST(:next_type AS varchar), CAST(:next_status AS varchar),
           CAST(:next_attempt AS integer), CAST(:next_claim AS varchar),
           CAST(:next_lease AS timestamptz), CAST(:now AS timestamptz),
           CAST(:next_started AS timestamptz), 0, 0
    FROM s
    RETURNING id
), u AS (
    INSERT INTO usage_events (id, tenant_id, created_at, metric, quantity, workflow_id,
                              run_id, step_id)
    SELECT CAST(:usage_id AS uuid), CAST(:tenant_id AS uuid), CAST(:now AS timestamptz),
           'steps', 1, CAST(:workflow_id AS uuid), CAST(:run_id AS uuid),
           CAST(:step_id AS varchar)
    FROM s
    RETURNING id
)
SELECT r.steps_executed, r.deadline_at, (SELECT count(*) FROM n) AS queued,
       (SELECT count(*) FROM u) AS metered
FROM r
""").bindparams(bindparam("output", type_=JSON))


def hand_over(*, tenant_id: uuid.UUID, run_id: uuid.UUID, workflow_id: uuid.UUID,
              step_run_id: uuid.UUID, step_id: str, claim: str, path: str, output: Any,
              successor: Successor, now: datetime) -> HandedOver | None:
    """None when nothing was written: the run is over or the claim was lost (the
    caller rolls back and decides with the ORM)."""
    next_id = new_id()
    claimed = successor.claim is not None
    row = db.session.connection().execute(_HAND_OVER, {
        "tenant_id": tenant_id, "run_id": run_id, "workflow_id": workflow_id,
        "step_run_id": step_run_id, "step_id": step_id, "claim": claim, "path": path,
        "output": output, "now": now, "next_id": next_id, "next_step": successor.step_id,
        "next_type": successor.step_type,
        "next_status": StepStatus.RUNNING if claimed else StepStatus.QUEUED,
        "next_attempt": 1 if claimed else 0, "next_claim": successor.claim,
        "next_lease": successor.lease_until, "next_started": now if claimed else None,
        "usage_id": new_id(),
    }).one_or_none()
    if row is None or row.queued != 1:
        return None
    return HandedOver(next_id, row.steps_executed, row.deadline_at)

