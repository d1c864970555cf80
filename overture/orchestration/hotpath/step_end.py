"""Recording a completed step in one statement: it hands over to the next step of its
block (`hand_over`), or it ends the run (`finish_run`); and the fragments every
statement that records a step shares (the branch statements build on them too): the
step finished if still ours, its `steps` usage metered, the successor queued."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Json

from overture.billing import meters, rollups
from overture.billing.usage import event_id, step_key
from overture.orchestration.hotpath import libpq_url
from overture.orchestration.hotpath.claiming import RunFacts
from overture.orchestration.models import RunStatus, StepStatus
from overture.platform import audit, pipeline
from overture.platform.ids import new_id

# Recording locks the run row before any step row, as cancelling and finishing a run
# do; every writer of a run's step states holds that lock, so once it is held, the
# next statement (a fresh snapshot) sees them as they are.
LOCK_RUN = "SELECT id FROM runs WHERE id = %(run_id)s FOR UPDATE"

FINISH_STEP = """
    UPDATE step_runs SET status = 'succeeded', output = %(output)s, finished_at = %(now)s,
           claim = NULL, lease_until = NULL, ends_block = %(ends_block)s
    WHERE id = %(step_run_id)s AND claim = %(claim)s AND status = 'running'
      AND EXISTS (SELECT 1 FROM ok)
    RETURNING id
"""
METER_STEP = rollups.HOT_STEP_METER  # u: the event, uh and ud: its roll-ups
STEP_IS_OURS = """
    SELECT 1 FROM runs r, step_runs s
    WHERE r.id = %(run_id)s AND r.status = 'running'
      AND s.id = %(step_run_id)s AND s.claim = %(claim)s AND s.status = 'running'
"""

QUEUE_NEXT = """
    INSERT INTO step_runs (id, tenant_id, created_at, run_id, step_id, path, step_type,
                           status, attempt, claim, lease_until, enqueued_at, started_at,
                           tokens, cost)
    SELECT %(next_id)s, %(tenant_id)s, %(now)s, %(run_id)s, %(next_step)s, %(path)s,
           %(next_type)s, %(next_status)s, %(next_attempt)s, %(next_claim)s,
           %(next_lease)s::timestamptz, %(now)s, %(next_started)s::timestamptz, 0, 0
    FROM s
    RETURNING id
"""
# At the top of a run, steps follow one another and each is counted on the run row:
# counting first locks the run (as every writer of a run does before its steps), and
# the step row is then updated only if it is still ours as committed, so a run
# cancelled meanwhile is seen. (Should the step's lease have run out and another
# worker taken it meanwhile, nothing but the count is written: the step ran twice.)
COUNT_ROOT_STEP = """
    UPDATE runs r SET steps_executed = r.steps_executed + 1
    WHERE r.id = %(run_id)s AND r.status = 'running'
      AND EXISTS (SELECT 1 FROM step_runs o WHERE o.id = %(step_run_id)s
                  AND o.claim = %(claim)s AND o.status = 'running')
    RETURNING r.steps_executed, r.deadline_at
"""
_HAND_OVER = f"""
WITH c AS ({COUNT_ROOT_STEP}),
ok AS (SELECT 1 FROM c),
s AS ({FINISH_STEP}),
{METER_STEP},
n AS ({QUEUE_NEXT})
SELECT c.steps_executed, c.deadline_at, (SELECT count(*) FROM n) AS queued,
       (SELECT count(*) FROM u) AS metered
FROM c
"""
# Inside a branch or an iteration, steps of one run may record at the same moment: they
# neither lock nor write the run row (the block's steps are counted when it ends). A
# run cancelled meanwhile is seen by the successor's own claim or record, which then
# cancels it.
_HAND_OVER_IN_BLOCK = f"""
WITH ok AS ({STEP_IS_OURS}),
s AS ({FINISH_STEP}),
{METER_STEP},
n AS ({QUEUE_NEXT})
SELECT r.steps_executed, r.deadline_at, (SELECT count(*) FROM n) AS queued,
       (SELECT count(*) FROM u) AS metered
FROM runs r WHERE r.id = %(run_id)s
"""


@dataclass(frozen=True)
class Successor:
    step_id: str
    step_type: str
    claim: str | None  # claimed at birth by this worker, or None: queued for a message
    lease_until: datetime | None


@dataclass(frozen=True)
class Recorded:
    steps_executed: int
    deadline_at: datetime | None
    successor_id: uuid.UUID | None = None


def _record(tenant_id: uuid.UUID, sql: str, params: dict[str, Any]) -> Any:
    """Run `sql`; its row, or None when it wrote nothing."""
    try:
        with pipeline.transaction(libpq_url(), tenant_id) as batch:
            result = batch.execute(sql, params)  # writes nothing when not ours to record
        return result.fetchone()
    except pipeline.Declined:
        return None


def step_params(*, tenant_id: uuid.UUID, run: RunFacts, step_run_id: uuid.UUID,
                step_id: str, claim: str, output: Any, now: datetime) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "run_id": run.id, "workflow_id": run.workflow_id,
            "step_run_id": step_run_id, "step_id": step_id, "claim": claim,
            "output": Json(output), "now": now, "ends_block": False,
            "usage_id": event_id(step_key(step_run_id), meters.STEPS),
            "usage_slot": rollups.slot()}


def successor_params(successor: Successor, path: str, now: datetime) -> dict[str, Any]:
    claimed = successor.claim is not None
    return {"next_id": new_id(), "next_step": successor.step_id, "path": path,
            "next_type": successor.step_type,
            "next_status": StepStatus.RUNNING if claimed else StepStatus.QUEUED,
            "next_attempt": 1 if claimed else 0, "next_claim": successor.claim,
            "next_lease": successor.lease_until, "next_started": now if claimed else None}


def hand_over(*, successor: Successor, path: str, **step: Any) -> Recorded | None:
    """Finish the step and queue the next one of its block, in one round trip."""
    params = step_params(**step)
    params.update(successor_params(successor, path, params["now"]))
    row = _record(step["tenant_id"], _HAND_OVER_IN_BLOCK if path else _HAND_OVER, params)
    if row is None or row.queued != 1:
        return None
    return Recorded(row.steps_executed, row.deadline_at, params["next_id"])


_FINISH_RUN = f"""
WITH ok AS (
    {STEP_IS_OURS}
      -- nothing else of the run is unfinished, and no child run is running:
      -- finishing then cancels nothing (else the ORM path does it)
      AND NOT EXISTS (SELECT 1 FROM step_runs o WHERE o.run_id = %(run_id)s
                      AND o.id <> %(step_run_id)s
                      AND o.status IN ('queued', 'running', 'waiting'))
      AND NOT EXISTS (SELECT 1 FROM runs k WHERE k.parent_run_id = %(run_id)s
                      AND k.status = 'running')
      AND EXISTS (SELECT 1 FROM audit_heads WHERE tenant_id = %(tenant_id)s)
),
s AS ({FINISH_STEP}),
{METER_STEP},
c AS (
    UPDATE runs SET steps_executed = steps_executed + 1, status = 'succeeded',
           finished_at = %(now)s, output = %(run_output)s, error = NULL
    WHERE id = %(run_id)s AND EXISTS (SELECT 1 FROM s)
    RETURNING steps_executed, deadline_at
),
-- the tenant's chain head, locked: the run's event follows it (see audit.append_sql)
{audit.append_sql(' AND EXISTS (SELECT 1 FROM c)')}
SELECT c.steps_executed, c.deadline_at, (SELECT count(*) FROM u) AS metered,
       (SELECT count(*) FROM a) AS audited, (SELECT count(*) FROM m) AS moved
FROM c
"""


def finish_run(*, run_output: Any, **step: Any) -> Recorded | None:
    """Finish the last step of the run's top block and the run (succeeded), with its
    audit event, in one round trip; None for any run that has more to settle
    (unfinished steps, running child runs, a parent to resume)."""
    run: RunFacts = step["run"]
    if run.parent_step_run_id is not None:
        return None
    params = step_params(**step)
    event = audit.unsealed(step["tenant_id"], f"run.{RunStatus.SUCCEEDED}", target_type="run",
                           target_id=run.id,
                           details={"workflow_id": str(run.workflow_id), "error": None})
    params.update({**event.params(), "run_output": Json(run_output)})
    try:
        with pipeline.transaction(libpq_url(), step["tenant_id"]) as batch:
            batch.execute(LOCK_RUN, params)
            result = batch.execute(_FINISH_RUN, params)  # nothing written if not ours
    except pipeline.Declined:
        return None
    row = result.fetchone()
    if row is None or row.audited != 1:
        return None
    return Recorded(row.steps_executed, row.deadline_at)
