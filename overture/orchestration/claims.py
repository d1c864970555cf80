"""Claiming a step run: a queued row (or one whose lease ran out) taken in one short
transaction, by the hot path's single statement when it can, else on ORM objects; and
the successor "claimed at birth" in the commit that recorded its predecessor (engine.py
tells the whole protocol)."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from overture.orchestration import graphs, hotpath, run_policy, step_scope
from overture.orchestration.definition import Graph
from overture.orchestration.hotpath import claiming, reading
from overture.orchestration.models import Run, StepRun
from overture.orchestration.steps import StepContext
from overture.platform import database_outage, pipeline
from overture.platform.db import db, utcnow
from overture.platform.logging import get_logger

log = get_logger(__name__)
LEASE_GRACE_ENV = "OVERTURE_LEASE_GRACE_SECONDS"

DEFAULT_TIMEOUT = 300.0




@dataclass
class Claimed:
    """A claimed step run, as plain data: nothing here touches the database."""

    step_run_id: uuid.UUID
    claim: str
    context: StepContext
    step_type: str
    step_id: str
    path: str
    tenant_id: uuid.UUID
    run: claiming.RunFacts
    graph: Graph
    # Outputs on the paths around this step's own (what its block's siblings see too),
    # when claimed by the hot path; None when not known.
    around: list[tuple[str, str, Any]] | None = None
    interruptions: int = 0  # attempts lost before this one (a dead worker)



def timeout_of(step: dict[str, Any]) -> float:
    return float(step.get("timeout_seconds", DEFAULT_TIMEOUT))


def lease_for(timeout: float) -> timedelta:
    return timedelta(seconds=timeout + lease_grace())


def lease_grace() -> float:
    """Seconds a lease outlasts the step's timeout, for recording the outcome; a worker
    that died is noticed this long after its step's timeout, never sooner."""
    return float(os.environ.get(LEASE_GRACE_ENV) or 30)


def patiently(fn: Any, *args: Any) -> Any:
    """One of the engine's transactions, done again while the database fails under it,
    as long as a claim's lease surely holds (its grace); then the sweeper takes over."""
    return database_outage.patiently(fn, *args, within=lease_grace())



# --------------------------------------------------------------------------- claim


def claim(step_run_id: uuid.UUID, tenant_id: uuid.UUID) -> Claimed | Waiting | None:
    """Claim the row a message names. A message for a row that cannot be claimed may
    be asking a waiting parallel step to move on (complete its join, or start one of
    its queued branches): a branch ended by the ORM path, or a worker out of inline
    budget, sends one."""
    if hotpath.available():
        try:
            return _claim_direct(step_run_id, tenant_id)
        except pipeline.Declined:
            pass  # the ORM path has its own retries and errors
    return patiently(_claim_once, step_run_id, tenant_id) or _waiting(step_run_id, tenant_id)


@dataclass(frozen=True)
class Waiting:
    """The message asks a waiting parallel step to move on (recording.fan_out_asked)."""

    parent_id: uuid.UUID
    run_id: uuid.UUID
    step_id: str
    path: str


def _waiting(step_run_id: uuid.UUID, tenant_id: uuid.UUID) -> Waiting | None:
    waiting = patiently(claiming.waiting_parallel, step_run_id, tenant_id)
    db.session.rollback()
    return None if waiting is None else Waiting(step_run_id, *waiting)


def _claim_direct(step_run_id: uuid.UUID, tenant_id: uuid.UUID) -> Claimed | Waiting | None:
    now = utcnow()
    token = uuid.uuid4().hex
    taken, waiting = claiming.claim_direct(step_run_id, tenant_id, token, now,
                                           lease_for(DEFAULT_TIMEOUT))
    if taken is not None:
        return from_direct_claim(taken, token, tenant_id, now)
    return None if waiting is None else Waiting(step_run_id, *waiting)


def from_direct_claim(taken: claiming.DirectClaim, token: str, tenant_id: uuid.UUID, now: datetime,
                      sibling_of: Claimed | None = None) -> Claimed | None:
    """A row claimed by the hot path. `sibling_of`: the branch step whose worker took
    it, when the claim read no outputs."""
    row, facts = taken.row, taken.run
    graph = patiently(_admit, row, facts, tenant_id, now, claiming.extend_lease_direct)
    if graph is None:
        return None
    db.session.rollback()  # a version read for the graph: nothing to keep open
    outputs = taken.outputs
    if sibling_of is not None:
        outputs = sibling_of.around if _first_of_a_sibling_branch(graph, row, sibling_of) \
            else patiently(reading.outputs_of, row.id, tenant_id)
    claimed = patiently(_with_scope, row, facts, token, tenant_id, graph,
                         reading.DirectReader(tenant_id, outputs))
    claimed.around = [o for o in outputs if o[1] != row.path]
    return claimed


def _admit(row: claiming.ClaimedRow, facts: claiming.RunFacts, tenant_id: uuid.UUID,
           now: datetime, extend_lease: Any) -> Graph | None:
    """A row just claimed with the default lease: refuse it if its run may not go on
    (None), else fit its lease to its step's timeout; its run's graph."""
    graph = graphs.graph_of_version(facts.version_id)
    if not run_policy.may_start(facts.status, facts.deadline_at, facts.steps_executed, graph, now):
        _refuse(row.id, row.run_id, graph, now)
        db.session.commit()
        return None
    timeout = timeout_of(graph.step(row.step_id))
    if timeout != DEFAULT_TIMEOUT:
        extend_lease(row.id, tenant_id, now + lease_for(timeout))
    return graph


def _with_scope(row: claiming.ClaimedRow, facts: claiming.RunFacts, token: str,
                tenant_id: uuid.UUID, graph: Graph, reader: reading.Reader) -> Claimed:
    scope = step_scope.build_scope(reader, graph, facts.id, facts.workflow_id, facts.input,
                                   facts.trigger, facts.started_at, row.path, row.attempt,
                                   row.input)
    claimed = build_claimed(row.id, token, row.step_id, row.path, row.attempt, row.started_at,
                       tenant_id, facts, graph, scope)
    claimed.interruptions = row.interruptions
    return claimed


def _first_of_a_sibling_branch(graph: Graph, row: claiming.ClaimedRow, sibling: Claimed) -> bool:
    """Whether `row` starts a branch of the same fan-out as `sibling`: then nothing has
    run on its path yet, and the paths around it are the sibling's."""
    same_fanout = step_scope.split_last(row.path)[:2] == step_scope.split_last(sibling.path)[:2]
    return same_fanout and graph.blocks[graph.block_of[row.step_id]].start == row.step_id \
        and sibling.around is not None


def _claim_once(step_run_id: uuid.UUID, tenant_id: uuid.UUID) -> Claimed | None:
    now = utcnow()
    token = uuid.uuid4().hex
    row = claiming.claim_row(step_run_id, tenant_id, token, now, lease_for(DEFAULT_TIMEOUT))
    if row is None:
        db.session.rollback()
        return None
    facts = claiming.run_facts(row.run_id, tenant_id)
    graph = _admit(row, facts, tenant_id, now, claiming.extend_lease)
    if graph is None:
        return None
    claimed = _with_scope(row, facts, token, tenant_id, graph, reading.SessionReader(tenant_id))
    db.session.commit()  # nothing stays open while the step runs
    return claimed


def build_claimed(step_run_id: uuid.UUID, token: str, step_id: str, path: str, attempt: int,
             started_at: datetime, tenant_id: uuid.UUID, facts: claiming.RunFacts,
             graph: Graph, scope: dict[str, Any]) -> Claimed:
    step = graph.step(step_id)
    context = StepContext(
        step=step, path=path, scope=scope, attempt=attempt,
        idempotency_key=f"ovt-{step_run_id}", timeout=timeout_of(step),
        tenant_id=str(tenant_id), started_at=started_at, run_id=str(facts.id),
        workflow_id=str(facts.workflow_id), step_run_id=str(step_run_id), pins=graph.pins,
        mode=facts.mode)
    return Claimed(step_run_id, token, context, step["type"], step_id, path, tenant_id,
                   facts, graph)


def refuse_and_commit(step_run_id: uuid.UUID, run_id: uuid.UUID, graph: Graph,
                       now: datetime) -> None:
    _refuse(step_run_id, run_id, graph, now)
    db.session.commit()


def _refuse(step_run_id: uuid.UUID, run_id: uuid.UUID, graph: Graph, now: datetime) -> None:
    """The run may not go on: cancel the step, or end the run when it is due to end."""
    run = locked_run(run_id)
    row = db.session.get(StepRun, step_run_id, populate_existing=True)
    run_policy.refuse_to_start(run, graph, row, now)


def locked_run(run_id: uuid.UUID) -> Run | None:
    """The run, locked, as the database has it now. Locking the run before its steps
    is the order every writer of a run keeps (no deadlocks between them)."""
    return db.session.scalars(select(Run).where(Run.id == run_id).with_for_update()
                              .execution_options(populate_existing=True)).one_or_none()


def _facts_of(run: Run) -> claiming.RunFacts:
    return claiming.RunFacts(run.id, run.status, run.version_id, run.workflow_id, run.input,
                            run.trigger, run.started_at, run.deadline_at, run.steps_executed,
                            run.parent_step_run_id, run.mode)


def claim_at_birth(run: Run, graph: Graph, step_run_id: uuid.UUID) -> Claimed | None:
    """Claim a successor queued by this very transaction, to run it next in this
    process; None leaves it queued for a message (another run's step, or a run that
    may not go on: its claim will say why)."""
    now = utcnow()
    db.session.flush()
    pending = db.session.get(StepRun, step_run_id)  # usually in the identity map
    if pending is None or pending.run_id != run.id:
        return None
    if not run_policy.may_start(run.status, run.deadline_at, run.steps_executed, graph, now):
        return None
    token = uuid.uuid4().hex
    timeout = timeout_of(graph.step(pending.step_id))
    row = claiming.claim_row(step_run_id, run.tenant_id, token, now, lease_for(timeout))
    if row is None:
        return None
    db.session.expire(pending)
    scope = step_scope.build_scope(reading.SessionReader(run.tenant_id), graph, run.id,
                                   run.workflow_id, run.input, run.trigger, run.started_at,
                                   row.path, row.attempt, row.input)
    return build_claimed(row.id, token, row.step_id, row.path, row.attempt, row.started_at,
                    run.tenant_id, _facts_of(run), graph, scope)


