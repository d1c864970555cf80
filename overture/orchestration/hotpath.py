"""The engine's most frequent transactions, on PostgreSQL, in one or two network
round trips each (`platform.pipeline`), with no ORM: claiming a step run, and
recording the three common outcomes of a completed step:

- it hands over to the next step of its block (`hand_over`);
- it ends a parallel branch whose join still waits for others (`branch_done`);
- it ends the run (`finish_run`).

Each returns None when it wrote nothing (the run is over, the claim was lost, the
case is not the common one, or the transaction could not happen); the engine then
records with the ORM (`flow`), which handles every case. The ORM claim (`claim_row`,
`SessionReader`) also serves SQLite, where the embedded mode runs.

Every statement here runs under row-level security in the tenant's scope.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Protocol

from psycopg.types.json import Json
from sqlalchemy import and_, case, or_, select, update

from overture.billing import meters, rollups
from overture.billing.usage import event_id, step_key
from overture.orchestration.models import Run, RunStatus, StepRun, StepStatus
from overture.platform import audit, pipeline
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


def available() -> bool:
    return db.engine.dialect.name == "postgresql"


_urls: dict[int, str] = {}


def _url() -> str:
    """The session's database as a libpq URL: the same server, the same role."""
    engine = db.engine
    url = _urls.get(id(engine))
    if url is None:
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        _urls[id(engine)] = url
    return url


# --------------------------------------------------------------------------- reading


class Reader(Protocol):
    def outputs_on(self, run_id: uuid.UUID, paths: list[str]) -> list[tuple[str, str, Any]]:
        """(step id, path, output) of the finished steps on these iteration paths."""

    def loop_state(self, run_id: uuid.UUID, step_id: str, path: str) -> dict[str, Any] | None:
        """The state of a loop step's row (its items)."""


@dataclass(frozen=True)
class SessionReader:
    """Reads through the ORM session's transaction (flush first: Core does not)."""

    tenant_id: uuid.UUID

    def outputs_on(self, run_id: uuid.UUID, paths: list[str]) -> list[tuple[str, str, Any]]:
        s = STEPS.c
        return [tuple(r) for r in db.session.connection().execute(
            select(s.step_id, s.path, s.output).where(
                s.tenant_id == self.tenant_id, s.run_id == run_id, s.path.in_(paths),
                s.status.in_([StepStatus.SUCCEEDED, StepStatus.SKIPPED])))]

    def loop_state(self, run_id: uuid.UUID, step_id: str, path: str) -> dict[str, Any] | None:
        s = STEPS.c
        return db.session.connection().execute(
            select(s.state).where(s.tenant_id == self.tenant_id, s.run_id == run_id,
                                  s.step_id == step_id, s.path == path)).scalar_one_or_none()


_LOOP_STATE = ("SELECT state FROM step_runs WHERE run_id = %(run_id)s AND step_id = %(step_id)s"
               " AND path = %(path)s")


@dataclass(frozen=True)
class DirectReader:
    """Reads in a pipelined transaction of their own (outputs never change once read);
    outputs already read with the claim are served from memory."""

    tenant_id: uuid.UUID
    outputs: list[tuple[str, str, Any]]

    def outputs_on(self, run_id: uuid.UUID, paths: list[str]) -> list[tuple[str, str, Any]]:
        return self.outputs

    def loop_state(self, run_id: uuid.UUID, step_id: str, path: str) -> dict[str, Any] | None:
        with pipeline.transaction(_url(), self.tenant_id) as batch:
            result = batch.execute(_LOOP_STATE, {"run_id": run_id, "step_id": step_id,
                                                "path": path})
        row = result.fetchone()
        return row.state if row else None


# --------------------------------------------------------------------------- claiming


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
# The outputs a claimed step's expressions see: finished steps on its own iteration
# path and the paths around it ("a#1/b#2/" -> "", "a#1/", "a#1/b#2/").
_OUTPUTS_OF = """
WITH me AS ({me})
SELECT o.step_id, o.path, o.output FROM step_runs o, me
WHERE o.run_id = me.run_id AND o.status IN ('succeeded', 'skipped')
  AND o.path = ANY(ARRAY(
      SELECT '' UNION ALL
      SELECT left(me.path, i) FROM me, generate_series(1, length(me.path)) AS i
      WHERE substr(me.path, i, 1) = '/'))
"""
_OUTPUTS_OF_STEP = _OUTPUTS_OF.format(
    me="SELECT run_id, path FROM step_runs WHERE id = %(id)s")
_OUTPUTS_OF_CLAIMED = _OUTPUTS_OF.format(
    me="SELECT run_id, path FROM step_runs WHERE run_id = %(run_id)s"
       " AND claim = %(sibling_claim)s")
# A queued step of a fan-out (a sibling branch, or a step inside one), taken by a
# worker that just ended a branch of it: one message need not be sent per branch.
_SIBLING_OF = """
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
_SIBLING = _SIBLING_OF.format(guard="")
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
    with pipeline.transaction(_url(), tenant_id) as batch:
        results = [batch.execute(sql, params)
                   for sql in (_CLAIM_WITH_RUN, _OUTPUTS_OF_STEP, _WAITING_FANOUT)]
    waiting = results[2].fetchone()
    return (_direct_claim(results[0].fetchone(), results[1].fetchall()),
            tuple(waiting) if waiting is not None else None)


_ROW, _FACTS = len(fields(ClaimedRow)), len(fields(RunFacts))


def _direct_claim(claimed: Any, outputs: list[Any]) -> DirectClaim | None:
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


def _sibling_params(run_id: uuid.UUID, prefix: str, sibling: SiblingClaim,
                    now: datetime) -> dict[str, Any]:
    """Who claims a fan-out's next queued step."""
    return {"run_id": run_id, "prefix": prefix, "sibling_claim": sibling.token,
            "sibling_lease": sibling.lease_until, "now": now}


def _outputs_for(batch: pipeline.Batch, sibling: SiblingClaim,
                 params: dict[str, Any]) -> pipeline.Result | None:
    """Queue the read of the outputs a claimed sibling's scope needs, unless known."""
    return None if sibling.has_outputs else batch.execute(_OUTPUTS_OF_CLAIMED, params)


def outputs_of(step_run_id: uuid.UUID, tenant_id: uuid.UUID) -> list[tuple[str, str, Any]]:
    with pipeline.transaction(_url(), tenant_id) as batch:
        result = batch.execute(_OUTPUTS_OF_STEP, {"id": step_run_id})
    return [(o.step_id, o.path, o.output) for o in result.fetchall()]


def claim_sibling(tenant_id: uuid.UUID, run_id: uuid.UUID, prefix: str,
                  sibling: SiblingClaim, now: datetime) -> DirectClaim | None:
    """Take a queued step under `prefix` (a fan-out's branches), if one is due."""
    params = _sibling_params(run_id, prefix, sibling, now)
    with pipeline.transaction(_url(), tenant_id) as batch:
        claimed = batch.execute(_CLAIM_SIBLING, params)
        outputs = _outputs_for(batch, sibling, params)
    return _direct_claim(claimed.fetchone(), outputs.fetchall() if outputs else [])


def extend_lease_direct(step_run_id: uuid.UUID, tenant_id: uuid.UUID, until: datetime) -> None:
    with pipeline.transaction(_url(), tenant_id) as batch:
        batch.execute("UPDATE step_runs SET lease_until = %(until)s WHERE id = %(id)s"
                     " AND status = 'running'", {"id": step_run_id, "until": until})


# --------------------------------------------------------------------------- recording

# Recording locks the run row before any step row, as cancelling and finishing a run
# do; every writer of a run's step states holds that lock, so once it is held, the
# next statement (a fresh snapshot) sees them as they are.
_LOCK_RUN = "SELECT id FROM runs WHERE id = %(run_id)s FOR UPDATE"

_FINISH_STEP = """
    UPDATE step_runs SET status = 'succeeded', output = %(output)s, finished_at = %(now)s,
           claim = NULL, lease_until = NULL, ends_block = %(ends_block)s
    WHERE id = %(step_run_id)s AND claim = %(claim)s AND status = 'running'
      AND EXISTS (SELECT 1 FROM ok)
    RETURNING id
"""
_METER_STEP = rollups.HOT_STEP_METER  # u: the event, uh and ud: its roll-ups
_STEP_IS_OURS = """
    SELECT 1 FROM runs r, step_runs s
    WHERE r.id = %(run_id)s AND r.status = 'running'
      AND s.id = %(step_run_id)s AND s.claim = %(claim)s AND s.status = 'running'
"""

_QUEUE_NEXT = """
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
_COUNT_ROOT_STEP = """
    UPDATE runs r SET steps_executed = r.steps_executed + 1
    WHERE r.id = %(run_id)s AND r.status = 'running'
      AND EXISTS (SELECT 1 FROM step_runs o WHERE o.id = %(step_run_id)s
                  AND o.claim = %(claim)s AND o.status = 'running')
    RETURNING r.steps_executed, r.deadline_at
"""
_HAND_OVER = f"""
WITH c AS ({_COUNT_ROOT_STEP}),
ok AS (SELECT 1 FROM c),
s AS ({_FINISH_STEP}),
{_METER_STEP},
n AS ({_QUEUE_NEXT})
SELECT c.steps_executed, c.deadline_at, (SELECT count(*) FROM n) AS queued,
       (SELECT count(*) FROM u) AS metered
FROM c
"""
# Inside a branch or an iteration, steps of one run may record at the same moment: they
# neither lock nor write the run row (the block's steps are counted when it ends). A
# run cancelled meanwhile is seen by the successor's own claim or record, which then
# cancels it.
_HAND_OVER_IN_BLOCK = f"""
WITH ok AS ({_STEP_IS_OURS}),
s AS ({_FINISH_STEP}),
{_METER_STEP},
n AS ({_QUEUE_NEXT})
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
        with pipeline.transaction(_url(), tenant_id) as batch:
            result = batch.execute(sql, params)  # writes nothing when not ours to record
        return result.fetchone()
    except pipeline.Declined:
        return None


def _step_params(*, tenant_id: uuid.UUID, run: RunFacts, step_run_id: uuid.UUID,
                 step_id: str, claim: str, output: Any, now: datetime) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "run_id": run.id, "workflow_id": run.workflow_id,
            "step_run_id": step_run_id, "step_id": step_id, "claim": claim,
            "output": Json(output), "now": now, "ends_block": False,
            "usage_id": event_id(step_key(step_run_id), meters.STEPS),
            "usage_slot": rollups.slot()}


def _successor_params(successor: Successor, path: str, now: datetime) -> dict[str, Any]:
    claimed = successor.claim is not None
    return {"next_id": new_id(), "next_step": successor.step_id, "path": path,
            "next_type": successor.step_type,
            "next_status": StepStatus.RUNNING if claimed else StepStatus.QUEUED,
            "next_attempt": 1 if claimed else 0, "next_claim": successor.claim,
            "next_lease": successor.lease_until, "next_started": now if claimed else None}


def hand_over(*, successor: Successor, path: str, **step: Any) -> Recorded | None:
    """Finish the step and queue the next one of its block, in one round trip."""
    params = _step_params(**step)
    params.update(_successor_params(successor, path, params["now"]))
    row = _record(step["tenant_id"], _HAND_OVER_IN_BLOCK if path else _HAND_OVER, params)
    if row is None or row.queued != 1:
        return None
    return Recorded(row.steps_executed, row.deadline_at, params["next_id"])


# Under the run's lock (taken by a statement of its own, so this one's snapshot sees
# every branch that ended before): a parallel step whose branches have all ended, with
# nothing left unfinished under it, succeeds with their outputs in branch order; the
# steps run in its branches are counted on the run, and the step after it is queued.
_ONE_LEVEL = ("strpos(substr({t}.path, length(%(prefix)s) + 1), '/')"
              " = length({t}.path) - length(%(prefix)s)")
_JOIN_ALL = f"""
WITH b AS (
    SELECT substr(e.path, length(%(prefix)s) + 1,
                  length(e.path) - length(%(prefix)s) - 1)::int AS i, e.output
    FROM step_runs e
    WHERE e.run_id = %(run_id)s AND e.ends_block AND e.status = 'succeeded'
      AND starts_with(e.path, %(prefix)s) AND {_ONE_LEVEL.format(t="e")}
),
ran AS (
    SELECT count(*) AS n FROM step_runs e
    WHERE e.run_id = %(run_id)s AND e.status IN ('succeeded', 'failed')
      AND starts_with(e.path, %(prefix)s) AND {_ONE_LEVEL.format(t="e")}
),
s AS (
    UPDATE step_runs p SET status = 'succeeded', finished_at = %(now)s, claim = NULL,
           lease_until = NULL,
           output = (SELECT json_agg(b.output ORDER BY b.i) FROM b),
           state = (p.state::jsonb || jsonb_build_object(
               'done', (SELECT jsonb_object_agg(b.i::text, true) FROM b),
               'outputs', (SELECT jsonb_agg(b.output ORDER BY b.i) FROM b)))::json
    WHERE p.id = %(parent_id)s AND p.status = 'waiting'
      AND EXISTS (SELECT 1 FROM runs r WHERE r.id = %(run_id)s AND r.status = 'running')
      AND (SELECT count(*) FROM b) = %(branches)s
      AND NOT EXISTS (SELECT 1 FROM step_runs o WHERE o.run_id = %(run_id)s
                      AND starts_with(o.path, %(prefix)s)
                      AND o.status IN ('queued', 'running', 'waiting'))
    RETURNING p.id
),
c AS (
    UPDATE runs SET steps_executed = steps_executed + (SELECT n FROM ran)
    WHERE id = %(run_id)s AND EXISTS (SELECT 1 FROM s)
    RETURNING steps_executed, deadline_at
),
n AS ({_QUEUE_NEXT})
SELECT c.steps_executed, c.deadline_at, (SELECT count(*) FROM n) AS queued FROM c
"""


def join_all(*, tenant_id: uuid.UUID, run_id: uuid.UUID, parent_id: uuid.UUID,
             parent_step: str, parent_path: str, branches: int, successor: Successor,
             now: datetime) -> tuple[Recorded, list[tuple[str, str, Any]]] | None:
    """Complete a parallel step whose every branch has ended and queue the step after
    it, in one round trip; with the outputs the successor's scope needs. None when it
    is not that case (a branch still running, one that failed, nothing after it, the
    run over): the ORM path decides."""
    params = {"tenant_id": tenant_id, "run_id": run_id, "parent_id": parent_id,
              "prefix": f"{parent_path}{parent_step}#", "branches": branches, "now": now,
              **_successor_params(successor, parent_path, now)}
    try:
        with pipeline.pipelined(_url()) as batch, pipeline.scoped(batch, tenant_id):
            batch.execute(_LOCK_RUN, params)
            joined = batch.execute(_JOIN_ALL, params)
            outputs = batch.execute(_OUTPUTS_OF_STEP, {"id": params["next_id"]})
    except pipeline.Declined:
        return None
    row = joined.fetchone()
    if row is None or row.queued != 1:
        return None
    return (Recorded(row.steps_executed, row.deadline_at, params["next_id"]),
            [(o.step_id, o.path, o.output) for o in outputs.fetchall()])


# A parallel step starts its branches: it waits, and their first steps are queued in
# one statement, the first claimed at birth by this worker (`fan_out`).
_WAIT_ON_BRANCHES = """
    UPDATE step_runs SET status = 'waiting', state = %(state)s, lease_until = NULL
    WHERE id = %(step_run_id)s AND claim = %(claim)s AND status = 'running'
      AND EXISTS (SELECT 1 FROM ok)
    RETURNING id
"""
_QUEUE_BRANCHES = """
    INSERT INTO step_runs (id, tenant_id, created_at, run_id, step_id, path, step_type,
                           status, attempt, claim, lease_until, enqueued_at, started_at,
                           tokens, cost)
    SELECT k.id, %(tenant_id)s, %(now)s, %(run_id)s, k.step_id, k.path, k.step_type,
           CASE WHEN k.i = 1 THEN 'running' ELSE 'queued' END,
           CASE WHEN k.i = 1 THEN 1 ELSE 0 END,
           CASE WHEN k.i = 1 THEN %(first_claim)s END,
           CASE WHEN k.i = 1 THEN %(first_lease)s::timestamptz END,
           %(now)s, CASE WHEN k.i = 1 THEN %(now)s::timestamptz END, 0, 0
    FROM unnest(%(ids)s::uuid[], %(step_ids)s::text[], %(paths)s::text[], %(types)s::text[])
         WITH ORDINALITY AS k(id, step_id, path, step_type, i)
    WHERE EXISTS (SELECT 1 FROM s)
    RETURNING id
"""
_FAN_OUT = f"""
WITH c AS ({_COUNT_ROOT_STEP}),
ok AS (SELECT 1 FROM c),
s AS ({_WAIT_ON_BRANCHES}),
{_METER_STEP},
k AS ({_QUEUE_BRANCHES})
SELECT c.steps_executed, c.deadline_at, (SELECT count(*) FROM k) AS queued FROM c
"""
_FAN_OUT_IN_BLOCK = f"""
WITH ok AS ({_STEP_IS_OURS}),
s AS ({_WAIT_ON_BRANCHES}),
{_METER_STEP},
k AS ({_QUEUE_BRANCHES})
SELECT r.steps_executed, r.deadline_at, (SELECT count(*) FROM k) AS queued
FROM runs r WHERE r.id = %(run_id)s
"""


@dataclass(frozen=True)
class Branch:
    step_id: str
    path: str
    step_type: str


def fan_out(*, branches: list[Branch], state: dict[str, Any], path: str, first_claim: str,
            first_lease: datetime,
            **step: Any) -> tuple[Recorded, list[uuid.UUID], list[tuple[str, str, Any]]] | None:
    """Record a parallel step as waiting and queue its branches' first steps, the first
    claimed at birth (`first_claim`), in one round trip; their ids, and the outputs the
    first one's scope needs. None when nothing was written."""
    params = _step_params(**step)
    ids = [new_id() for _ in branches]
    params.update({"state": Json(state), "ids": ids, "first_claim": first_claim,
                   "first_lease": first_lease, "step_ids": [b.step_id for b in branches],
                   "paths": [b.path for b in branches],
                   "types": [b.step_type for b in branches]})
    try:
        with pipeline.transaction(_url(), step["tenant_id"]) as batch:
            done = batch.execute(_FAN_OUT_IN_BLOCK if path else _FAN_OUT, params)
            outputs = batch.execute(_OUTPUTS_OF_STEP, {"id": ids[0]})
    except pipeline.Declined:
        return None
    row = done.fetchone()
    if row is None or row.queued != len(branches):
        return None
    return (Recorded(row.steps_executed, row.deadline_at, ids[0]), ids,
            [(o.step_id, o.path, o.output) for o in outputs.fetchall()])


_BRANCH_DONE = f"""
WITH ok AS ({_STEP_IS_OURS}),
s AS ({_FINISH_STEP}),
{_METER_STEP}
SELECT (SELECT count(*) FROM s) AS finished, (SELECT count(*) FROM u) AS metered
"""


# A branch's step ends, and the same worker takes the fan-out's next queued step, if
# its own step was recorded. While a step of the fan-out was still queued, a join
# that waits for every branch cannot be satisfied: nothing else is needed.
_SIBLING_IF_RECORDED = _SIBLING_OF.format(guard=" AND EXISTS (SELECT 1 FROM s)")
_BRANCH_DONE_TAKING_SIBLING = f"""
WITH ok AS ({_STEP_IS_OURS}),
s AS ({_FINISH_STEP}),
{_METER_STEP},
c AS ({_SIBLING_IF_RECORDED})
SELECT (SELECT count(*) FROM s) AS finished, (SELECT count(*) FROM u) AS metered, c.*
FROM (SELECT 1) one LEFT JOIN c ON true
"""
_DONE_COLUMNS = 2
# Otherwise the join is looked at after the commit that ended the branch, in a
# transaction of its own: then it sees every branch that committed before, so of two
# last branches ending at once, the one that commits second always sees both.
_JOIN_STATE = f"""
SELECT p.id AS parent_id, p.status AS parent_status,
       (p.state::jsonb ->> 'needed')::int AS needed,
       (SELECT count(*) FROM step_runs b
        WHERE b.run_id = p.run_id AND b.ends_block AND b.status = 'succeeded'
          AND starts_with(b.path, %(prefix)s) AND {_ONE_LEVEL.format(t="b")}) AS ended
FROM step_runs p
WHERE p.run_id = %(run_id)s AND p.step_id = %(parent_step)s AND p.path = %(parent_path)s
"""


@dataclass(frozen=True)
class BranchEnded:
    joined: bool  # the join looks satisfied: complete it under the run's lock
    sibling: DirectClaim | None  # a queued step of the fan-out, now claimed by this worker
    parent_id: uuid.UUID | None = None  # the parallel step's row, when the join was read


def branch_done(*, parent_step: str, parent_path: str, waits_for_all: bool,
                sibling: SiblingClaim | None, **step: Any) -> BranchEnded | None:
    """Finish the step that ends a parallel branch, marked as such, without waiting for
    the other branches (no run lock), and take the fan-out's next queued step if asked
    (`sibling`); then, unless that settles it, look at the join in a transaction of its
    own. None when nothing was written."""
    params = _step_params(**step)
    params.update({"ends_block": True, "parent_step": parent_step, "parent_path": parent_path,
                   "prefix": f"{parent_path}{parent_step}#"})
    tenant_id = step["tenant_id"]
    try:
        if sibling is None:
            return _branch_done_then_join(tenant_id, params)
        taken = _branch_done_taking(tenant_id, params, sibling)
    except pipeline.Declined:
        return None
    if taken is None or (taken.sibling is not None and waits_for_all):
        return taken
    try:
        return _join_state(tenant_id, params, taken.sibling)
    except pipeline.Declined:
        return taken  # recorded: the sweeper looks at a join nobody looked at


def _branch_done_taking(tenant_id: uuid.UUID, params: dict[str, Any],
                        sibling: SiblingClaim) -> BranchEnded | None:
    params.update(_sibling_params(params["run_id"], params["prefix"], sibling, params["now"]))
    with pipeline.transaction(_url(), tenant_id) as batch:
        done = batch.execute(_BRANCH_DONE_TAKING_SIBLING, params)
        outputs = _outputs_for(batch, sibling, params)
    row = done.fetchone()
    if row is None or row.finished != 1:
        return None
    claimed = _direct_claim(row[_DONE_COLUMNS:], outputs.fetchall() if outputs else [])
    return BranchEnded(False, claimed)


def _branch_done_then_join(tenant_id: uuid.UUID, params: dict[str, Any]) -> BranchEnded | None:
    """The branch's step and then its join, two transactions in one round trip."""
    with pipeline.pipelined(_url()) as batch:
        with pipeline.scoped(batch, tenant_id):
            done = batch.execute(_BRANCH_DONE, params)
        pipeline.begin_implicit(batch, tenant_id)
        join = batch.execute(_JOIN_STATE, params)
        finished, state = done.fetchone(), join.fetchone()
    if finished is None or finished.finished != 1:
        return None
    return _joined(state, None)


def _join_state(tenant_id: uuid.UUID, params: dict[str, Any],
                sibling: DirectClaim | None) -> BranchEnded:
    with pipeline.transaction(_url(), tenant_id) as batch:
        join = batch.execute(_JOIN_STATE, params)
    return _joined(join.fetchone(), sibling)


def _joined(state: Any, sibling: DirectClaim | None) -> BranchEnded:
    if state is None:  # no parallel step row: nothing to join
        return BranchEnded(False, sibling)
    joined = state.parent_status == StepStatus.WAITING and state.ended >= state.needed
    return BranchEnded(joined, sibling, state.parent_id)


_FINISH_RUN = f"""
WITH ok AS (
    {_STEP_IS_OURS}
      -- nothing else of the run is unfinished, and no child run is running:
      -- finishing then cancels nothing (else the ORM path does it)
      AND NOT EXISTS (SELECT 1 FROM step_runs o WHERE o.run_id = %(run_id)s
                      AND o.id <> %(step_run_id)s
                      AND o.status IN ('queued', 'running', 'waiting'))
      AND NOT EXISTS (SELECT 1 FROM runs k WHERE k.parent_run_id = %(run_id)s
                      AND k.status = 'running')
      AND EXISTS (SELECT 1 FROM audit_heads WHERE tenant_id = %(tenant_id)s)
),
s AS ({_FINISH_STEP}),
{_METER_STEP},
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
    params = _step_params(**step)
    event = audit.unsealed(step["tenant_id"], f"run.{RunStatus.SUCCEEDED}", target_type="run",
                           target_id=run.id,
                           details={"workflow_id": str(run.workflow_id), "error": None})
    params.update({**event.params(), "run_output": Json(run_output)})
    try:
        with pipeline.transaction(_url(), step["tenant_id"]) as batch:
            batch.execute(_LOCK_RUN, params)
            result = batch.execute(_FINISH_RUN, params)  # nothing written if not ours
    except pipeline.Declined:
        return None
    row = result.fetchone()
    if row is None or row.audited != 1:
        return None
    return Recorded(row.steps_executed, row.deadline_at)
