"""Claiming a step run in one statement: a queued row (or one whose lease ran out)
taken for this worker, in the session's transaction (`claim_row`, which SQLite
serves too) or with its run's facts and the outputs its scope needs in one round
trip (`claim_direct`); and a fan-out's next queued step, taken by a worker that just
ended a branch of it (`claim_sibling`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, or_, select, update

from overture.orchestration.hotpath import RUNS, STEPS, libpq_url
from overture.orchestration.hotpath.reading import OUTPUTS_OF_CLAIMED, OUTPUTS_OF_STEP
from overture.orchestration.models import StepStatus
from overture.platform import pipeline
from overture.platform.db import db


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
    interruptions: int  # attempts lost to a dead worker before this one


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
    parent_step_run_id: uuid.UUID | None
    mode: str = "live"  # a test run's steps send nothing and bill nothing (testmode)


def _claimable(now: datetime) -> Any:
    s = STEPS.c
    return or_(and_(s.status == StepStatus.QUEUED,
                    or_(s.next_attempt_at.is_(None), s.next_attempt_at <= now)),
               and_(s.status == StepStatus.RUNNING, s.lease_until < now))


def claim_row(step_run_id: uuid.UUID, tenant_id: uuid.UUID, token: str, now: datetime,
              lease: timedelta) -> ClaimedRow | None:
    """Take a queued row (or one whose lease ran out) for this worker, in the session's
    transaction; None when it is taken, finished or not due: a duplicate message is
    then dropped. A row still running was lost with its worker: that attempt is counted
    as an interruption, not against the retry policy."""
    s = STEPS.c
    lost = s.status == StepStatus.RUNNING
    stmt = (update(STEPS)
            .where(s.id == step_run_id, s.tenant_id == tenant_id, _claimable(now))
            .values(status=StepStatus.RUNNING, claim=token,
                    attempt=s.attempt + case((lost, 0), else_=1),
                    interruptions=s.interruptions + case((lost, 1), else_=0),
                    lease_until=now + lease, started_at=db.func.coalesce(s.started_at, now))
            .returning(s.id, s.run_id, s.step_id, s.path, s.step_type, s.attempt, s.input,
                       s.started_at, s.interruptions))
    row = db.session.connection().execute(stmt).one_or_none()
    return ClaimedRow(*row) if row is not None else None


def waiting_parallel(step_run_id: uuid.UUID,
                     tenant_id: uuid.UUID) -> tuple[uuid.UUID, str, str] | None:
    """(run, step, path) of a parallel step run still waiting for its join, else None."""
    s = STEPS.c
    row = db.session.connection().execute(
        select(s.run_id, s.step_id, s.path).where(
            s.id == step_run_id, s.tenant_id == tenant_id, s.step_type == "parallel",
            s.status == StepStatus.WAITING)).one_or_none()
    return (row.run_id, row.step_id, row.path) if row is not None else None


def extend_lease(step_run_id: uuid.UUID, tenant_id: uuid.UUID, until: datetime) -> None:
    db.session.connection().execute(
        update(STEPS).where(STEPS.c.id == step_run_id, STEPS.c.tenant_id == tenant_id)
        .values(lease_until=until))


def run_facts(run_id: uuid.UUID, tenant_id: uuid.UUID) -> RunFacts:
    r = RUNS.c
    row = db.session.connection().execute(
        select(r.id, r.status, r.version_id, r.workflow_id, r.input, r.trigger, r.started_at,
               r.deadline_at, r.steps_executed, r.parent_step_run_id, r.mode)
        .where(r.id == run_id, r.tenant_id == tenant_id)).one()
    return RunFacts(*row)


# The claim and its run's facts in one statement (the run row is read, not locked). A
# row still running was lost with its worker: an interruption, not an attempt.
_CLAIM_WITH_RUN = """
UPDATE step_runs s SET status = 'running', claim = %(claim)s,
       attempt = s.attempt + CASE WHEN s.status = 'running' THEN 0 ELSE 1 END,
       interruptions = s.interruptions + CASE WHEN s.status = 'running' THEN 1 ELSE 0 END,
       lease_until = %(lease)s, started_at = coalesce(s.started_at, %(now)s)
FROM runs r
WHERE s.id = %(id)s AND r.id = s.run_id
  AND ((s.status = 'queued' AND (s.next_attempt_at IS NULL OR s.next_attempt_at <= %(now)s))
       OR (s.status = 'running' AND s.lease_until < %(now)s))
RETURNING s.id, s.run_id, s.step_id, s.path, s.step_type, s.attempt, s.input, s.started_at,
          s.interruptions, r.id AS r_id, r.status AS r_status, r.version_id, r.workflow_id,
          r.input AS r_input, r.trigger, r.started_at AS r_started_at, r.deadline_at,
          r.steps_executed, r.parent_step_run_id, r.mode AS r_mode
"""
# A queued step of a fan-out (a sibling branch, or a step inside one), taken by a
# worker that just ended a branch of it: one message need not be sent per branch.
SIBLING_OF = """
UPDATE step_runs t SET status = 'running', claim = %(sibling_claim)s, attempt = t.attempt + 1,
       lease_until = %(sibling_lease)s, started_at = coalesce(t.started_at, %(now)s)
FROM runs r
WHERE t.id = (SELECT q.id FROM step_runs q
              WHERE q.run_id = %(run_id)s AND q.status = 'queued'
                AND (q.next_attempt_at IS NULL OR q.next_attempt_at <= %(now)s)
                AND starts_with(q.path, %(prefix)s)
              ORDER BY q.id LIMIT 1 FOR UPDATE SKIP LOCKED)
  AND r.id = t.run_id AND r.status = 'running' AND t.status = 'queued'{guard}
RETURNING t.id, t.run_id, t.step_id, t.path, t.step_type, t.attempt, t.input, t.started_at,
          t.interruptions, r.id AS r_id, r.status AS r_status, r.version_id, r.workflow_id,
          r.input AS r_input, r.trigger, r.started_at AS r_started_at, r.deadline_at,
          r.steps_executed, r.parent_step_run_id, r.mode AS r_mode
"""
_SIBLING = SIBLING_OF.format(guard="")
# ... and how many of the fan-out's steps are still queued after it (the statement's
# snapshot still sees the claimed one as queued).
_CLAIM_SIBLING = f"""
WITH c AS ({_SIBLING})
SELECT c.*, (SELECT count(*) FROM step_runs q WHERE q.run_id = %(run_id)s
             AND q.status = 'queued' AND starts_with(q.path, %(prefix)s)) - 1 AS still_queued
FROM c
"""


@dataclass(frozen=True)
class DirectClaim:
    row: ClaimedRow
    run: RunFacts
    outputs: list[tuple[str, str, Any]]  # (step id, path, output) around the row's path
    still_queued: int = 0  # a sibling claim: the fan-out's steps still queued after it


_WAITING_FANOUT = ("SELECT run_id, step_id, path FROM step_runs WHERE id = %(id)s"
                   " AND step_type = 'parallel' AND status = 'waiting'")


def claim_direct(step_run_id: uuid.UUID, tenant_id: uuid.UUID, token: str, now: datetime,
                 lease: timedelta) -> tuple[DirectClaim | None, tuple[Any, str, str] | None]:
    """`claim_row`, `run_facts` and the outputs its scope needs, in one round trip; or,
    for a parallel step still waiting (a message asking to move its fan-out on), its
    (run, step, path). Raises pipeline.Declined."""
    params = {"id": step_run_id, "claim": token, "lease": now + lease, "now": now}
    with pipeline.transaction(libpq_url(), tenant_id) as batch:
        results = [batch.execute(sql, params)
                   for sql in (_CLAIM_WITH_RUN, OUTPUTS_OF_STEP, _WAITING_FANOUT)]
    waiting = results[2].fetchone()
    return (direct_claim(results[0].fetchone(), results[1].fetchall()),
            tuple(waiting) if waiting is not None else None)


_ROW, _FACTS = len(fields(ClaimedRow)), len(fields(RunFacts))


def direct_claim(claimed: Any, outputs: list[Any]) -> DirectClaim | None:
    if claimed is None or claimed[0] is None:  # none, or the empty side of a left join
        return None
    facts_end = _ROW + _FACTS
    return DirectClaim(ClaimedRow(*claimed[:_ROW]), RunFacts(*claimed[_ROW:facts_end]),
                       [(o.step_id, o.path, o.output) for o in outputs],
                       claimed[facts_end] if len(claimed) > facts_end else 0)


@dataclass(frozen=True)
class SiblingClaim:
    """Who takes a fan-out's next queued step: this worker's claim token and lease."""

    token: str
    lease_until: datetime
    # The claimer knows the outputs a sibling branch's first step sees (those around
    # the fan-out, the same for all its branches): no need to read them again.
    has_outputs: bool = False


def sibling_params(run_id: uuid.UUID, prefix: str, sibling: SiblingClaim,
                   now: datetime) -> dict[str, Any]:
    """Who claims a fan-out's next queued step."""
    return {"run_id": run_id, "prefix": prefix, "sibling_claim": sibling.token,
            "sibling_lease": sibling.lease_until, "now": now}


def outputs_for(batch: pipeline.Batch, sibling: SiblingClaim,
                params: dict[str, Any]) -> pipeline.Result | None:
    """Queue the read of the outputs a claimed sibling's scope needs, unless known."""
    return None if sibling.has_outputs else batch.execute(OUTPUTS_OF_CLAIMED, params)


def claim_sibling(tenant_id: uuid.UUID, run_id: uuid.UUID, prefix: str,
                  sibling: SiblingClaim, now: datetime) -> DirectClaim | None:
    """Take a queued step under `prefix` (a fan-out's branches), if one is due."""
    params = sibling_params(run_id, prefix, sibling, now)
    with pipeline.transaction(libpq_url(), tenant_id) as batch:
        claimed = batch.execute(_CLAIM_SIBLING, params)
        outputs = outputs_for(batch, sibling, params)
    return direct_claim(claimed.fetchone(), outputs.fetchall() if outputs else [])


def extend_lease_direct(step_run_id: uuid.UUID, tenant_id: uuid.UUID, until: datetime) -> None:
    with pipeline.transaction(libpq_url(), tenant_id) as batch:
        batch.execute("UPDATE step_runs SET lease_until = %(until)s WHERE id = %(id)s"
                     " AND status = 'running'", {"id": step_run_id, "until": until})
