"""The durable engine: claim a step run, execute it outside any transaction, record
what happened in one commit, and move on.

1. `claim` takes a queued row (or one whose lease expired) in a short transaction.
   A row already taken or finished is left alone: duplicate messages are harmless.
2. The executor runs with no transaction open. Side effects get an idempotency key
   derived from the step run, the same on every attempt.
3. `record` commits the output, usage, audit and successor rows together; messages
   for the successors go out after that commit (`dispatch`).
4. The first ready successor is claimed in that same commit ("claimed at birth") and
   runs at once in this process (bounded): its row is durable and leased, so a crash
   loses nothing, and the sweeper takes it back when the lease runs out.

The common case (a step completed, the next step of its block follows) is recorded by
`hotpath.hand_over` in one statement; everything else by `flow` on ORM objects.

Our database failing under a transaction (a restart, a deadlock: `database_outage`) is never the
step's fault: each transaction here is one that is harmless to repeat, and is done again
until the database answers (within the lease's grace). An executor that meets it gets
its attempt back (`Interrupted`), as does a step whose worker died: only a step's own
errors count against its retry policy. A step interrupted too often fails.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from overture.billing import step_caps
from overture.billing.budgets import Limit
from overture.orchestration import dispatch, flow, hotpath
from overture.orchestration.definition import Graph
from overture.orchestration.flow import Recordable
from overture.orchestration.models import Run, RunStatus, StepRun, StepStatus
from overture.orchestration.outcomes import (
    DEFAULT_NEXT,
    Completed,
    Interrupted,
    Outcome,
    Spawn,
    StepFailed,
    caught_refusal,
    refused_to_start,
)
from overture.orchestration.steps import StepContext, executor_for, join_needs_all
from overture.orchestration.testmode import mocks
from overture.orchestration.watchdog import StepTimeout, time_limit
from overture.platform import database_outage, metrics, pipeline, tracing
from overture.platform.db import db, scoped_to, utcnow
from overture.platform.errors import PaymentRequired
from overture.platform.logging import get_logger
from overture.tenants.events import outbox

log = get_logger(__name__)
LEASE_GRACE_ENV = "OVERTURE_LEASE_GRACE_SECONDS"
DEFAULT_TIMEOUT = 300.0
MAX_INLINE_STEPS = 50  # one message runs at most this many steps before yielding
MAX_INTERRUPTIONS = 5  # a step whose attempts keep getting lost (it kills its worker) fails
_SLOW = object()  # the fast path declined: record with the ORM


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
    run: hotpath.RunFacts
    graph: Graph
    # Outputs on the paths around this step's own (what its block's siblings see too),
    # when claimed by the hot path; None when not known.
    around: list[tuple[str, str, Any]] | None = None
    interruptions: int = 0  # attempts lost before this one (a dead worker)


def process(step_run_id: uuid.UUID, tenant_id: uuid.UUID) -> None:
    """Handle one message: run the step and then, inline, the ready successors."""
    with scoped_to(tenant_id):
        claimed = claim(step_run_id, tenant_id)
        budget = MAX_INLINE_STEPS
        # The caps on steps of the run's workflow, looked up once for the steps this
        # message runs (one run's: a step claimed at birth is of the same run); a test
        # run bills nothing, so no cap holds it.
        caps = (step_caps.capped(tenant_id, claimed.run.workflow_id)
                if claimed and not claimed.context.testing else [])
        while claimed is not None:
            budget -= 1
            claimed = record(claimed, run_step(claimed, caps), inline=budget > 0)


def run_step(claimed: Claimed, caps: list[Limit] | None = None) -> Recordable:
    """Run the step's executor, timed (and traced, when tracing is on); first, a step
    under `caps` must be let in by them."""
    started = time.perf_counter()
    if tracing.on:
        with tracing.span(f"step {claimed.step_type}", attributes={
                "overture.step.type": claimed.step_type, "overture.step.id": claimed.step_id,
                "overture.workflow_version.id": str(claimed.run.version_id),
                "overture.step.attempt": claimed.context.attempt}):
            outcome = _run_step(claimed, caps)
    else:
        outcome = _run_step(claimed, caps)
    metrics.step_ran(claimed.step_type, time.perf_counter() - started)
    return outcome


def _run_step(claimed: Claimed, caps: list[Limit] | None) -> Recordable:
    if claimed.interruptions > MAX_INTERRUPTIONS:
        return StepFailed("interrupted", f"the step was interrupted {claimed.interruptions} "
                          "times (its worker died, or lost the database, while it ran)")
    try:
        refused = _under_caps(claimed, caps) if caps else None
        outcome: Recordable = refused if refused is not None else execute(claimed)
    except StepFailed as failure:
        outcome = failure
    except Exception as exc:
        if database_outage.infrastructure_error(exc):  # our database, not the step: run it again
            log.warning("step.interrupted", step_run_id=str(claimed.step_run_id),
                        error=database_outage.summary(exc))
            outcome = Interrupted("the database failed under the step: "
                                  + database_outage.summary(exc))
        else:  # a bug in an executor must not lose the run
            log.exception("step.crashed", step_run_id=str(claimed.step_run_id))
            outcome = StepFailed("error", f"{type(exc).__name__}: {exc}")
    # An executor that touched the database (connector audit and usage) may have left a
    # transaction open, or aborted by its error: the record must not inherit either.
    if db.session().in_transaction():
        db.session.rollback()
    return outcome


def _under_caps(claimed: Claimed, caps: list[Limit]) -> StepFailed | None:
    """A step's first attempt under caps on steps: the failure of a step they refuse,
    else None (in memory, mostly: see `step_caps`)."""
    context = claimed.context
    if context.attempt != 1 or claimed.interruptions or (
            "error" in context.scope and caught_refusal(context.scope)):
        return None  # let in on its first attempt; an error route past the cap
    try:
        step_caps.admit(claimed.tenant_id, caps)
    except PaymentRequired as refused:
        return refused_to_start(refused)
    return None


def timeout_of(step: dict[str, Any]) -> float:
    return float(step.get("timeout_seconds", DEFAULT_TIMEOUT))


def lease_for(timeout: float) -> timedelta:
    return timedelta(seconds=timeout + lease_grace())


def lease_grace() -> float:
    """Seconds a lease outlasts the step's timeout, for recording the outcome; a worker
    that died is noticed this long after its step's timeout, never sooner."""
    return float(os.environ.get(LEASE_GRACE_ENV) or 30)


def _patiently(fn: Any, *args: Any) -> Any:
    """One of the engine's transactions, done again while the database fails under it,
    as long as a claim's lease surely holds (its grace); then the sweeper takes over."""
    return database_outage.patiently(fn, *args, within=lease_grace())


# --------------------------------------------------------------------------- claim


def claim(step_run_id: uuid.UUID, tenant_id: uuid.UUID) -> Claimed | None:
    """Claim the row a message names. A message for a row that cannot be claimed may
    be asking a waiting parallel step to move on (complete its join, or start one of
    its queued branches): a branch ended by the ORM path, or a worker out of inline
    budget, sends one."""
    if hotpath.available():
        try:
            return _claim_direct(step_run_id, tenant_id)
        except pipeline.Declined:
            pass  # the ORM path has its own retries and errors
    return _patiently(_claim_once, step_run_id, tenant_id) \
        or _join_asked(step_run_id, tenant_id)


def _claim_direct(step_run_id: uuid.UUID, tenant_id: uuid.UUID) -> Claimed | None:
    now = utcnow()
    token = uuid.uuid4().hex
    taken, waiting = hotpath.claim_direct(step_run_id, tenant_id, token, now,
                                          lease_for(DEFAULT_TIMEOUT))
    if taken is not None:
        return _taken(taken, token, tenant_id, now)
    return None if waiting is None else _fan_out_asked(step_run_id, *waiting, tenant_id)


def _taken(taken: hotpath.DirectClaim, token: str, tenant_id: uuid.UUID, now: datetime,
           sibling_of: Claimed | None = None) -> Claimed | None:
    """A row claimed by the hot path. `sibling_of`: the branch step whose worker took
    it, when the claim read no outputs."""
    row, facts = taken.row, taken.run
    graph = _patiently(_admit, row, facts, tenant_id, now, hotpath.extend_lease_direct)
    if graph is None:
        return None
    db.session.rollback()  # a version read for the graph: nothing to keep open
    outputs = taken.outputs
    if sibling_of is not None:
        outputs = sibling_of.around if _first_of_a_sibling_branch(graph, row, sibling_of) \
            else _patiently(hotpath.outputs_of, row.id, tenant_id)
    claimed = _patiently(_with_scope, row, facts, token, tenant_id, graph,
                         hotpath.DirectReader(tenant_id, outputs))
    claimed.around = [o for o in outputs if o[1] != row.path]
    return claimed


def _admit(row: hotpath.ClaimedRow, facts: hotpath.RunFacts, tenant_id: uuid.UUID,
           now: datetime, extend_lease: Any) -> Graph | None:
    """A row just claimed with the default lease: refuse it if its run may not go on
    (None), else fit its lease to its step's timeout; its run's graph."""
    graph = flow.graph_of_version(facts.version_id)
    if not flow.may_start(facts.status, facts.deadline_at, facts.steps_executed, graph, now):
        _refuse(row.id, row.run_id, graph, now)
        db.session.commit()
        return None
    timeout = timeout_of(graph.step(row.step_id))
    if timeout != DEFAULT_TIMEOUT:
        extend_lease(row.id, tenant_id, now + lease_for(timeout))
    return graph


def _with_scope(row: hotpath.ClaimedRow, facts: hotpath.RunFacts, token: str,
                tenant_id: uuid.UUID, graph: Graph, reader: hotpath.Reader) -> Claimed:
    scope = flow.build_scope(reader, graph, facts.id, facts.workflow_id, facts.input,
                             facts.trigger, facts.started_at, row.path, row.attempt, row.input)
    claimed = _claimed(row.id, token, row.step_id, row.path, row.attempt, row.started_at,
                       tenant_id, facts, graph, scope)
    claimed.interruptions = row.interruptions
    return claimed


def _first_of_a_sibling_branch(graph: Graph, row: hotpath.ClaimedRow, sibling: Claimed) -> bool:
    """Whether `row` starts a branch of the same fan-out as `sibling`: then nothing has
    run on its path yet, and the paths around it are the sibling's."""
    same_fanout = flow.split_last(row.path)[:2] == flow.split_last(sibling.path)[:2]
    return same_fanout and graph.blocks[graph.block_of[row.step_id]].start == row.step_id \
        and sibling.around is not None


def _claim_once(step_run_id: uuid.UUID, tenant_id: uuid.UUID) -> Claimed | None:
    now = utcnow()
    token = uuid.uuid4().hex
    row = hotpath.claim_row(step_run_id, tenant_id, token, now, lease_for(DEFAULT_TIMEOUT))
    if row is None:
        db.session.rollback()
        return None
    facts = hotpath.run_facts(row.run_id, tenant_id)
    graph = _admit(row, facts, tenant_id, now, hotpath.extend_lease)
    if graph is None:
        return None
    claimed = _with_scope(row, facts, token, tenant_id, graph, hotpath.SessionReader(tenant_id))
    db.session.commit()  # nothing stays open while the step runs
    return claimed


def _claimed(step_run_id: uuid.UUID, token: str, step_id: str, path: str, attempt: int,
             started_at: datetime, tenant_id: uuid.UUID, facts: hotpath.RunFacts,
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


def _refuse_and_commit(step_run_id: uuid.UUID, run_id: uuid.UUID, graph: Graph,
                       now: datetime) -> None:
    _refuse(step_run_id, run_id, graph, now)
    db.session.commit()


def _refuse(step_run_id: uuid.UUID, run_id: uuid.UUID, graph: Graph, now: datetime) -> None:
    """The run may not go on: cancel the step, or end the run when it is due to end."""
    run = _locked_run(run_id)
    row = db.session.get(StepRun, step_run_id, populate_existing=True)
    flow.refuse_to_start(run, graph, row, now)


def _locked_run(run_id: uuid.UUID) -> Run | None:
    """The run, locked, as the database has it now. Locking the run before its steps
    is the order every writer of a run keeps (no deadlocks between them)."""
    return db.session.scalars(select(Run).where(Run.id == run_id).with_for_update()
                              .execution_options(populate_existing=True)).one_or_none()


def _facts_of(run: Run) -> hotpath.RunFacts:
    return hotpath.RunFacts(run.id, run.status, run.version_id, run.workflow_id, run.input,
                            run.trigger, run.started_at, run.deadline_at, run.steps_executed,
                            run.parent_step_run_id, run.mode)


def _claim_at_birth(run: Run, graph: Graph, step_run_id: uuid.UUID) -> Claimed | None:
    """Claim a successor queued by this very transaction, to run it next in this
    process; None leaves it queued for a message (another run's step, or a run that
    may not go on: its claim will say why)."""
    now = utcnow()
    db.session.flush()
    pending = db.session.get(StepRun, step_run_id)  # usually in the identity map
    if pending is None or pending.run_id != run.id:
        return None
    if not flow.may_start(run.status, run.deadline_at, run.steps_executed, graph, now):
        return None
    token = uuid.uuid4().hex
    timeout = timeout_of(graph.step(pending.step_id))
    row = hotpath.claim_row(step_run_id, run.tenant_id, token, now, lease_for(timeout))
    if row is None:
        return None
    db.session.expire(pending)
    scope = flow.build_scope(hotpath.SessionReader(run.tenant_id), graph, run.id,
                             run.workflow_id, run.input, run.trigger, run.started_at, row.path,
                             row.attempt, row.input)
    return _claimed(row.id, token, row.step_id, row.path, row.attempt, row.started_at,
                    run.tenant_id, _facts_of(run), graph, scope)


# --------------------------------------------------------------------------- execute


def execute(claimed: Claimed) -> Outcome:
    if claimed.context.testing:  # a test run: a step's declared mock answers for it
        mocked = mocks.declared(claimed.context)
        if mocked is not None:
            return mocked
    executor = executor_for(claimed.step_type)
    return with_time_limit(lambda: executor(claimed.context), claimed.context.timeout)


def with_time_limit(fn: Any, seconds: float) -> Any:
    try:
        with time_limit(seconds):
            return fn()
    except StepTimeout as exc:
        raise StepFailed("timeout", f"the step ran longer than {seconds:g}s") from exc


# --------------------------------------------------------------------------- record


def record(claimed: Claimed, outcome: Recordable, inline: bool = True) -> Claimed | None:
    """Record the outcome in one transaction if the claim still holds; returns the
    successor claimed at birth, to run next, if any."""
    # A test run's steps are recorded by flow, which meters nothing for them.
    if claimed.context.ledger.empty and hotpath.available() and not claimed.context.testing:
        recorded: object = _SLOW
        if isinstance(outcome, Completed):
            recorded = _record_direct(claimed, outcome, inline)
        elif isinstance(outcome, Spawn) and claimed.step_type == "parallel" and inline:
            recorded = _fan_out_direct(claimed, outcome)
        if recorded is not _SLOW:
            return recorded  # type: ignore[return-value]
    return _patiently(_record_once, claimed, outcome, inline)


def _record_direct(claimed: Claimed, outcome: Completed, inline: bool) -> object:
    """The common outcomes of a completed step, without the ORM; _SLOW for the rest."""
    step = claimed.context.step
    next_id = step.get("next") if outcome.next is DEFAULT_NEXT else outcome.next
    if next_id:
        return _hand_over(claimed, outcome, next_id, inline)
    facts = {"tenant_id": claimed.tenant_id, "run": claimed.run,
             "step_run_id": claimed.step_run_id, "step_id": claimed.step_id,
             "claim": claimed.claim, "output": outcome.output, "now": utcnow()}
    if not claimed.path:
        if claimed.graph.definition.get("output") is not None:
            return _SLOW  # rendered by flow, which reports a bad template on the run
        if outbox.wanted(claimed.tenant_id, "run.succeeded"):
            return _SLOW  # flow writes the event in the run's transaction (cached: cheap)
        done = hotpath.finish_run(run_output=outcome.output, **facts)
        if done is None:
            return _SLOW
        metrics.run_finished(RunStatus.SUCCEEDED, claimed.run.started_at, facts["now"])
        return None
    parent_path, parent_step, _ = flow.split_last(claimed.path)
    parent = claimed.graph.steps.get(parent_step, {})
    if parent.get("type") != "parallel":
        return _SLOW  # a loop iteration: flow starts the next one
    now = facts["now"]
    sibling = hotpath.SiblingClaim(uuid.uuid4().hex, now + lease_for(DEFAULT_TIMEOUT),
                                   has_outputs=claimed.around is not None) if inline else None
    ended = hotpath.branch_done(parent_step=parent_step, parent_path=parent_path,
                                waits_for_all=join_needs_all(parent), sibling=sibling,
                                **facts)
    if ended is None:
        return _SLOW
    if ended.joined:  # a sibling taken meanwhile is cancelled by the join (any, n of m)
        joined = _join_direct(claimed, parent, parent_path, ended.parent_id, inline) \
            if ended.sibling is None else _SLOW
        if joined is not _SLOW:
            return joined
        return _patiently(_join_once, claimed.run.id, parent_step, parent_path, inline)
    if ended.sibling is not None and sibling is not None:
        return _taken(ended.sibling, sibling.token, claimed.tenant_id, now,
                      claimed if sibling.has_outputs else None)
    if not inline and ended.parent_id is not None:
        dispatch.send_now(ended.parent_id, claimed.tenant_id)  # another goes on with it
    return None


def _fan_out_direct(claimed: Claimed, outcome: Spawn) -> object:
    """A parallel step starts its branches without the ORM: the first runs next in
    this process, a few others get messages, and the step is looked at again a moment
    later (see flow.apply); _SLOW when the hot path declined."""
    now, token = utcnow(), uuid.uuid4().hex
    graph = claimed.graph
    first = graph.step(outcome.children[0].step_id)
    done = hotpath.fan_out(
        branches=[hotpath.Branch(c.step_id, c.path, graph.step(c.step_id)["type"])
                  for c in outcome.children],
        state=outcome.state, path=claimed.path, first_claim=token,
        first_lease=now + lease_for(timeout_of(first)), tenant_id=claimed.tenant_id,
        run=claimed.run, step_run_id=claimed.step_run_id, step_id=claimed.step_id,
        claim=claimed.claim, output=None, now=now)
    if done is None:
        return _SLOW
    recorded, ids, outputs = done
    messages = flow.fanout_messages()
    recheck = [(claimed.step_run_id, claimed.tenant_id, flow.FANOUT_RECHECK_MS)] \
        if len(ids) > messages else []
    dispatch.send_committed([(i, claimed.tenant_id, None) for i in ids[1:messages]] + recheck)
    return _go_on_read(claimed, recorded, first["id"], outcome.children[0].path, token, now,
                       outputs)


def _join_direct(branch: Claimed, parent: dict[str, Any], parent_path: str,
                 parent_id: uuid.UUID | None, inline: bool) -> object:
    """The common join (every branch ended, a step after it) without the ORM: the
    step after it is queued, claimed at birth to run next if `inline`; _SLOW else."""
    next_id = parent.get("next")
    if not next_id or parent_id is None or not join_needs_all(parent):
        return _SLOW
    now, token = utcnow(), uuid.uuid4().hex if inline else None
    step = branch.graph.step(next_id)
    done = hotpath.join_all(
        tenant_id=branch.tenant_id, run_id=branch.run.id, parent_id=parent_id,
        parent_step=parent["id"], parent_path=parent_path, branches=len(parent["branches"]),
        now=now, successor=hotpath.Successor(next_id, step["type"], token,
                                             now + lease_for(timeout_of(step)) if inline
                                             else None))
    if done is None:
        return _SLOW
    recorded, outputs = done
    return _go_on_read(branch, recorded, next_id, parent_path, token, now, outputs)


def _go_on_read(before: Claimed, recorded: hotpath.Recorded, next_id: str, path: str,
                token: str | None, now: datetime,
                outputs: list[tuple[str, str, Any]]) -> Claimed | None:
    """_go_on_direct for a step whose scope is built from `outputs`, read with its
    record (the step starts a new path, or follows a fan-out)."""
    return _go_on_direct(before, recorded, next_id, path, token, now,
                         lambda: flow.build_scope(
                             hotpath.DirectReader(before.tenant_id, outputs), before.graph,
                             before.run.id, before.run.workflow_id, before.run.input,
                             before.run.trigger, before.run.started_at, path, 1, None),
                         [o for o in outputs if o[1] != path])


def _go_on_direct(before: Claimed, recorded: hotpath.Recorded, next_id: str, path: str,
                  token: str | None, now: datetime, scope: Any,
                  around: list[tuple[str, str, Any]] | None) -> Claimed | None:
    """After the hot path queued step `next_id`: send its message, or, claimed at birth
    (`token`), refuse it if the run may not go on, else hand it over to run next."""
    if recorded.successor_id is None:
        return None
    if token is None:
        dispatch.send_now(recorded.successor_id, before.tenant_id)
        return None
    if not flow.may_start(RunStatus.RUNNING, recorded.deadline_at, recorded.steps_executed,
                          before.graph, now):
        _patiently(_refuse_and_commit, recorded.successor_id, before.run.id, before.graph, now)
        return None
    successor = _claimed(recorded.successor_id, token, next_id, path, 1, now, before.tenant_id,
                         before.run, before.graph, _patiently(scope))
    successor.around = around
    return successor


def _hand_over(claimed: Claimed, outcome: Completed, next_id: str, inline: bool) -> object:
    now = utcnow()
    step = claimed.graph.step(next_id)
    token = uuid.uuid4().hex if inline else None
    done = hotpath.hand_over(
        tenant_id=claimed.tenant_id, run=claimed.run, step_run_id=claimed.step_run_id,
        step_id=claimed.step_id, claim=claimed.claim, path=claimed.path,
        output=outcome.output, now=now,
        successor=hotpath.Successor(next_id, step["type"], token,
                                    now + lease_for(timeout_of(step)) if inline else None))
    if done is None or done.successor_id is None:
        return _SLOW
    return _go_on_direct(claimed, done, next_id, claimed.path, token, now,
                         lambda: flow.next_scope(claimed.context.scope, claimed.step_id,
                                                 outcome.output), claimed.around)


def _record_once(claimed: Claimed, outcome: Recordable, inline: bool) -> Claimed | None:
    # The run first, then the step: the same order as cancelling and finishing a run,
    # which lock the run and then its steps.
    run = _locked_run(claimed.run.id)
    row = db.session.scalars(
        select(StepRun).where(StepRun.id == claimed.step_run_id, StepRun.claim == claimed.claim,
                              StepRun.status == StepStatus.RUNNING)
        .with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if run is None or row is None:  # cancelled, or the lease ran out and another took over
        db.session.rollback()
        return None
    if run.status != RunStatus.RUNNING:
        row.status, row.finished_at = StepStatus.CANCELLED, utcnow()
        db.session.commit()
        return None
    outcome = flow.write_ledger(run, row, claimed.context.ledger, outcome)
    return _go_on(run, claimed.graph, flow.apply(run, row, outcome), inline)


def _go_on(run: Run, graph: Graph, next_id: uuid.UUID | None, inline: bool) -> Claimed | None:
    """Commit, with the step that follows claimed at birth to run next, or queued."""
    successor = None
    if next_id is not None:
        successor = _claim_at_birth(run, graph, next_id) if inline else None
        if successor is None:
            flow.send_later(next_id, run.tenant_id)
    db.session.commit()
    return successor


# --------------------------------------------------------------------------- joins


def _join_once(run_id: uuid.UUID, step_id: str, path: str, inline: bool) -> Claimed | None:
    """Complete a parallel step's join if its branches have ended (once: under the
    run's lock, the first to look completes it, the others find it done)."""
    run = _locked_run(run_id)
    parent = db.session.scalars(
        select(StepRun).where(StepRun.run_id == run_id, StepRun.step_id == step_id,
                              StepRun.path == path)
        .with_for_update().execution_options(populate_existing=True)).one_or_none()
    if run is None or parent is None:
        db.session.rollback()
        return None
    graph = flow.graph_of(run)
    return _go_on(run, graph, flow.join_if_ready(run, graph, parent), inline)


def _join_asked(step_run_id: uuid.UUID, tenant_id: uuid.UUID) -> Claimed | None:
    waiting = _patiently(hotpath.waiting_parallel, step_run_id, tenant_id)
    db.session.rollback()
    return None if waiting is None else _fan_out_asked(step_run_id, *waiting, tenant_id)


def _fan_out_asked(parent_id: uuid.UUID, run_id: uuid.UUID, step_id: str, path: str,
                   tenant_id: uuid.UUID) -> Claimed | None:
    """Complete the parallel step's join, or take on one of its queued branches."""
    joined = _patiently(_join_once, run_id, step_id, path, True)
    if joined is not None or not hotpath.available():
        return joined
    now, token = utcnow(), uuid.uuid4().hex
    try:
        taken = hotpath.claim_sibling(tenant_id, run_id, f"{path}{step_id}#",
                                      hotpath.SiblingClaim(token, now + lease_for(DEFAULT_TIMEOUT)),
                                      now)
    except pipeline.Declined:
        return None  # the sweeper sends queued branches their own messages
    if taken is None:
        return None
    if taken.still_queued > 0:  # branches are still waiting: ask one more worker
        dispatch.send_now(parent_id, tenant_id)
    return _taken(taken, token, tenant_id, now)


def due_now(row: StepRun, now: datetime) -> bool:
    return row.next_attempt_at is None or row.next_attempt_at <= now
