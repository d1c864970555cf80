"""A parallel step's statements: it starts its branches, their first steps queued in
one statement and the first claimed at birth (`fan_out`); a step ends a branch
without waiting for the others, taking the fan-out's next queued step if asked
(`branch_done`); the join of branches that have all ended completes the step and
queues the one after it (`join_all`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Json

from overture.orchestration.hotpath import libpq_url
from overture.orchestration.hotpath.claiming import (
    SIBLING_OF,
    DirectClaim,
    SiblingClaim,
    direct_claim,
    outputs_for,
    sibling_params,
)
from overture.orchestration.hotpath.reading import OUTPUTS_OF_STEP
from overture.orchestration.hotpath.step_end import (
    COUNT_ROOT_STEP,
    FINISH_STEP,
    LOCK_RUN,
    METER_STEP,
    QUEUE_NEXT,
    STEP_IS_OURS,
    Recorded,
    Successor,
    step_params,
    successor_params,
)
from overture.orchestration.models import StepStatus
from overture.platform import pipeline
from overture.platform.ids import new_id

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
n AS ({QUEUE_NEXT})
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
              **successor_params(successor, parent_path, now)}
    try:
        with pipeline.pipelined(libpq_url()) as batch, pipeline.scoped(batch, tenant_id):
            batch.execute(LOCK_RUN, params)
            joined = batch.execute(_JOIN_ALL, params)
            outputs = batch.execute(OUTPUTS_OF_STEP, {"id": params["next_id"]})
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
WITH c AS ({COUNT_ROOT_STEP}),
ok AS (SELECT 1 FROM c),
s AS ({_WAIT_ON_BRANCHES}),
{METER_STEP},
k AS ({_QUEUE_BRANCHES})
SELECT c.steps_executed, c.deadline_at, (SELECT count(*) FROM k) AS queued FROM c
"""
_FAN_OUT_IN_BLOCK = f"""
WITH ok AS ({STEP_IS_OURS}),
s AS ({_WAIT_ON_BRANCHES}),
{METER_STEP},
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
    params = step_params(**step)
    ids = [new_id() for _ in branches]
    params.update({"state": Json(state), "ids": ids, "first_claim": first_claim,
                   "first_lease": first_lease, "step_ids": [b.step_id for b in branches],
                   "paths": [b.path for b in branches],
                   "types": [b.step_type for b in branches]})
    try:
        with pipeline.transaction(libpq_url(), step["tenant_id"]) as batch:
            done = batch.execute(_FAN_OUT_IN_BLOCK if path else _FAN_OUT, params)
            outputs = batch.execute(OUTPUTS_OF_STEP, {"id": ids[0]})
    except pipeline.Declined:
        return None
    row = done.fetchone()
    if row is None or row.queued != len(branches):
        return None
    return (Recorded(row.steps_executed, row.deadline_at, ids[0]), ids,
            [(o.step_id, o.path, o.output) for o in outputs.fetchall()])


_BRANCH_DONE = f"""
WITH ok AS ({STEP_IS_OURS}),
s AS ({FINISH_STEP}),
{METER_STEP}
SELECT (SELECT count(*) FROM s) AS finished, (SELECT count(*) FROM u) AS metered
"""


# A branch's step ends, and the same worker takes the fan-out's next queued step, if
# its own step was recorded. While a step of the fan-out was still queued, a join
# that waits for every branch cannot be satisfied: nothing else is needed.
_SIBLING_IF_RECORDED = SIBLING_OF.format(guard=" AND EXISTS (SELECT 1 FROM s)")
_BRANCH_DONE_TAKING_SIBLING = f"""
WITH ok AS ({STEP_IS_OURS}),
s AS ({FINISH_STEP}),
{METER_STEP},
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
    params = step_params(**step)
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
    params.update(sibling_params(params["run_id"], params["prefix"], sibling, params["now"]))
    with pipeline.transaction(libpq_url(), tenant_id) as batch:
        done = batch.execute(_BRANCH_DONE_TAKING_SIBLING, params)
        outputs = outputs_for(batch, sibling, params)
    row = done.fetchone()
    if row is None or row.finished != 1:
        return None
    claimed = direct_claim(row[_DONE_COLUMNS:], outputs.fetchall() if outputs else [])
    return BranchEnded(False, claimed)


def _branch_done_then_join(tenant_id: uuid.UUID, params: dict[str, Any]) -> BranchEnded | None:
    """The branch's step and then its join, two transactions in one round trip."""
    with pipeline.pipelined(libpq_url()) as batch:
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
    with pipeline.transaction(libpq_url(), tenant_id) as batch:
        join = batch.execute(_JOIN_STATE, params)
    return _joined(join.fetchone(), sibling)


def _joined(state: Any, sibling: DirectClaim | None) -> BranchEnded:
    if state is None:  # no parallel step row: nothing to join
        return BranchEnded(False, sibling)
    joined = state.parent_status == StepStatus.WAITING and state.ended >= state.needed
    return BranchEnded(joined, sibling, state.parent_id)
