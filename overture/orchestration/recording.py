"""Recording a step's outcome in one commit (output, usage, audit and successor rows
together), by the hot path's single statement in the common case, else by `flow`; and
the joins and fan-outs that follow (engine.py tells the whole protocol)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from overture.orchestration import (
    accounting,
    dispatch,
    flow,
    graphs,
    hotpath,
    joins,
    run_policy,
    step_rows,
    step_scope,
)
from overture.orchestration.claims import (
    DEFAULT_TIMEOUT,
    Claimed,
    build_claimed,
    claim_at_birth,
    from_direct_claim,
    lease_for,
    locked_run,
    patiently,
    refuse_and_commit,
    timeout_of,
)
from overture.orchestration.definition import Graph
from overture.orchestration.hotpath import branches, claiming, reading, step_end
from overture.orchestration.models import Run, RunStatus, StepRun, StepStatus
from overture.orchestration.outcomes import (
    DEFAULT_NEXT,
    Completed,
    Recordable,
    Spawn,
)
from overture.orchestration.steps import join_needs_all
from overture.platform import metrics, pipeline
from overture.platform.db import db, utcnow
from overture.platform.logging import get_logger
from overture.tenants.events import outbox

log = get_logger(__name__)
_SLOW = object()  # the fast path declined: record with the ORM


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
    return patiently(_record_once, claimed, outcome, inline)


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
        done = step_end.finish_run(run_output=outcome.output, **facts)
        if done is None:
            return _SLOW
        metrics.run_finished(RunStatus.SUCCEEDED, claimed.run.started_at, facts["now"])
        return None
    parent_path, parent_step, _ = step_scope.split_last(claimed.path)
    parent = claimed.graph.steps.get(parent_step, {})
    if parent.get("type") != "parallel":
        return _SLOW  # a loop iteration: flow starts the next one
    now = facts["now"]
    sibling = claiming.SiblingClaim(uuid.uuid4().hex, now + lease_for(DEFAULT_TIMEOUT),
                                    has_outputs=claimed.around is not None) if inline else None
    ended = branches.branch_done(parent_step=parent_step, parent_path=parent_path,
                                 waits_for_all=join_needs_all(parent), sibling=sibling,
                                 **facts)
    if ended is None:
        return _SLOW
    if ended.joined:  # a sibling taken meanwhile is cancelled by the join (any, n of m)
        joined = _join_direct(claimed, parent, parent_path, ended.parent_id, inline) \
            if ended.sibling is None else _SLOW
        if joined is not _SLOW:
            return joined
        return patiently(_join_once, claimed.run.id, parent_step, parent_path, inline)
    if ended.sibling is not None and sibling is not None:
        return from_direct_claim(ended.sibling, sibling.token, claimed.tenant_id, now,
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
    done = branches.fan_out(
        branches=[branches.Branch(c.step_id, c.path, graph.step(c.step_id)["type"])
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
    done = branches.join_all(
        tenant_id=branch.tenant_id, run_id=branch.run.id, parent_id=parent_id,
        parent_step=parent["id"], parent_path=parent_path, branches=len(parent["branches"]),
        now=now, successor=step_end.Successor(next_id, step["type"], token,
                                              now + lease_for(timeout_of(step)) if inline
                                              else None))
    if done is None:
        return _SLOW
    recorded, outputs = done
    return _go_on_read(branch, recorded, next_id, parent_path, token, now, outputs)


def _go_on_read(before: Claimed, recorded: step_end.Recorded, next_id: str, path: str,
                token: str | None, now: datetime,
                outputs: list[tuple[str, str, Any]]) -> Claimed | None:
    """_go_on_direct for a step whose scope is built from `outputs`, read with its
    record (the step starts a new path, or follows a fan-out)."""
    return _go_on_direct(before, recorded, next_id, path, token, now,
                         lambda: step_scope.build_scope(
                             reading.DirectReader(before.tenant_id, outputs), before.graph,
                             before.run.id, before.run.workflow_id, before.run.input,
                             before.run.trigger, before.run.started_at, path, 1, None),
                         [o for o in outputs if o[1] != path])


def _go_on_direct(before: Claimed, recorded: step_end.Recorded, next_id: str, path: str,
                  token: str | None, now: datetime, scope: Any,
                  around: list[tuple[str, str, Any]] | None) -> Claimed | None:
    """After the hot path queued step `next_id`: send its message, or, claimed at birth
    (`token`), refuse it if the run may not go on, else hand it over to run next."""
    if recorded.successor_id is None:
        return None
    if token is None:
        dispatch.send_now(recorded.successor_id, before.tenant_id)
        return None
    if not run_policy.may_start(RunStatus.RUNNING, recorded.deadline_at, recorded.steps_executed,
                          before.graph, now):
        patiently(refuse_and_commit, recorded.successor_id, before.run.id, before.graph, now)
        return None
    successor = build_claimed(recorded.successor_id, token, next_id, path, 1, now, before.tenant_id,
                         before.run, before.graph, patiently(scope))
    successor.around = around
    return successor


def _hand_over(claimed: Claimed, outcome: Completed, next_id: str, inline: bool) -> object:
    now = utcnow()
    step = claimed.graph.step(next_id)
    token = uuid.uuid4().hex if inline else None
    done = step_end.hand_over(
        tenant_id=claimed.tenant_id, run=claimed.run, step_run_id=claimed.step_run_id,
        step_id=claimed.step_id, claim=claimed.claim, path=claimed.path,
        output=outcome.output, now=now,
        successor=step_end.Successor(next_id, step["type"], token,
                                     now + lease_for(timeout_of(step)) if inline else None))
    if done is None or done.successor_id is None:
        return _SLOW
    return _go_on_direct(claimed, done, next_id, claimed.path, token, now,
                         lambda: step_scope.next_scope(claimed.context.scope, claimed.step_id,
                                                 outcome.output), claimed.around)


def _record_once(claimed: Claimed, outcome: Recordable, inline: bool) -> Claimed | None:
    # The run first, then the step: the same order as cancelling and finishing a run,
    # which lock the run and then its steps.
    run = locked_run(claimed.run.id)
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
    outcome = accounting.write_ledger(run, row, claimed.context.ledger, outcome)
    return _go_on(run, claimed.graph, flow.apply(run, row, outcome), inline)


def _go_on(run: Run, graph: Graph, next_id: uuid.UUID | None, inline: bool) -> Claimed | None:
    """Commit, with the step that follows claimed at birth to run next, or queued."""
    successor = None
    if next_id is not None:
        successor = claim_at_birth(run, graph, next_id) if inline else None
        if successor is None:
            step_rows.send_later(next_id, run.tenant_id)
    db.session.commit()
    return successor


# --------------------------------------------------------------------------- joins


def _join_once(run_id: uuid.UUID, step_id: str, path: str, inline: bool) -> Claimed | None:
    """Complete a parallel step's join if its branches have ended (once: under the
    run's lock, the first to look completes it, the others find it done)."""
    run = locked_run(run_id)
    parent = db.session.scalars(
        select(StepRun).where(StepRun.run_id == run_id, StepRun.step_id == step_id,
                              StepRun.path == path)
        .with_for_update().execution_options(populate_existing=True)).one_or_none()
    if run is None or parent is None:
        db.session.rollback()
        return None
    graph = graphs.graph_of(run)
    return _go_on(run, graph, joins.join_if_ready(run, graph, parent), inline)


def fan_out_asked(parent_id: uuid.UUID, run_id: uuid.UUID, step_id: str, path: str,
                   tenant_id: uuid.UUID) -> Claimed | None:
    """Complete the parallel step's join, or take on one of its queued branches."""
    joined = patiently(_join_once, run_id, step_id, path, True)
    if joined is not None or not hotpath.available():
        return joined
    now, token = utcnow(), uuid.uuid4().hex
    try:
        taken = claiming.claim_sibling(
            tenant_id, run_id, f"{path}{step_id}#",
            claiming.SiblingClaim(token, now + lease_for(DEFAULT_TIMEOUT)), now)
    except pipeline.Declined:
        return None  # the sweeper sends queued branches their own messages
    if taken is None:
        return None
    if taken.still_queued > 0:  # branches are still waiting: ask one more worker
        dispatch.send_now(parent_id, tenant_id)
    return from_direct_claim(taken, token, tenant_id, now)


def due_now(row: StepRun, now: datetime) -> bool:
    return row.next_attempt_at is None or row.next_attempt_at <= now
