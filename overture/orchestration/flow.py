"""How a run moves: what an outcome does to a step run and its successors, to the
block (branch or loop iteration) it ends, and to the run itself. Everything here runs
inside the one transaction that records a step (or decides an approval, or ends a
child run).

Outcomes, blocks and the run's end stay together: they call one another (a step ends
a loop iteration, which starts the next or ends the loop step; a run that ends
resumes its parent's waiting step, whose outcome moves the parent run on). Around
them, lower down: the graph (`graphs`), step rows (`step_rows`), scopes
(`step_scope`), what a step cost (`accounting`); on top: the run policies checked
before a step starts (`run_policy`) and parallel joins (`joins`)."""

from __future__ import annotations

import os
import random
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select

from overture.orchestration import expressions, notifications, outbound_events
from overture.orchestration.accounting import meter_step
from overture.orchestration.definition import Graph
from overture.orchestration.graphs import graph_of
from overture.orchestration.models import (
    FINISHED_STEP,
    Run,
    RunStatus,
    StepRun,
    StepStatus,
)
from overture.orchestration.outcomes import (
    DEFAULT_NEXT,
    TRANSIENT,
    AwaitApproval,
    AwaitRun,
    Child,
    Completed,
    Defer,
    Interrupted,
    Outcome,
    Recordable,
    Spawn,
    StepFailed,
    Stop,
)
from overture.orchestration.step_rows import (
    cancel_approvals,
    cancel_row,
    finish_row,
    ms_until,
    queue_step,
    send_later,
    step_row,
)
from overture.orchestration.step_scope import scope_for, split_last
from overture.platform import audit, metrics
from overture.platform.db import db, utcnow
from overture.platform.ids import new_id

FANOUT_ENV = "OVERTURE_FANOUT_MESSAGES"
FANOUT_RECHECK_MS = 1000  # then branches still queued are spread over more workers
INTERRUPTED_BACKOFF_CAP = 30.0  # seconds before a step interrupted again runs again


# --------------------------------------------------------------------------- outcomes


def apply(run: Run, row: StepRun, outcome: Recordable,
          resumed: bool = False) -> uuid.UUID | None:
    """Record `outcome` for `row`; returns a successor step run to run inline, if any.
    A resumed step (after waiting) was counted when it started waiting."""
    graph = graph_of(run)
    step = graph.step(row.step_id)
    now = utcnow()
    row.lease_until = None
    if isinstance(outcome, Interrupted):
        return _interrupted(row, outcome, now)
    if isinstance(outcome, StepFailed):
        return _failed(run, graph, row, step, outcome, now, resumed)
    if not resumed:
        if not row.path:  # steps inside blocks count when their block ends
            run.steps_executed += 1
        meter_step(run, row)
    if isinstance(outcome, Completed):
        next_id = step.get("next") if outcome.next is DEFAULT_NEXT else outcome.next
        return succeed(run, graph, row, outcome.output, next_id)
    if isinstance(outcome, Stop):
        finish_row(row, StepStatus.SUCCEEDED, output=outcome.output)
        status = RunStatus.FAILED if outcome.status == "failed" else RunStatus.SUCCEEDED
        error = {"code": "stopped", "message": str(outcome.error or "stopped by a stop step"),
                 "step": row.step_id} if status == RunStatus.FAILED else None
        finish_run(run, status, output=outcome.output, error=error)
        return None
    if isinstance(outcome, Defer):
        row.status, row.claim, row.next_attempt_at = StepStatus.QUEUED, None, outcome.until
        row.enqueued_at = now
        send_later(row.id, row.tenant_id, ms_until(outcome.until))
        return None
    row.status = StepStatus.WAITING
    if isinstance(outcome, Spawn):
        row.state = outcome.state
        # A fan-out's branches beyond the first few get no message of their own: the
        # workers that end branches take the queued ones on (a message per branch costs
        # more than a quick branch), and if branches are still queued a moment later,
        # a message for the parallel step starts spreading them over more workers
        # (recording.fan_out_asked). A loop's iterations each get a message.
        if step["type"] != "parallel":
            return _spawn(run, graph, outcome.children)
        first = _spawn(run, graph, outcome.children, fanout_messages())
        if len(outcome.children) > fanout_messages():
            send_later(row.id, row.tenant_id, FANOUT_RECHECK_MS)
        return first
    if isinstance(outcome, AwaitApproval):
        from overture.orchestration.approvals import open_approval

        open_approval(run, row, outcome)
        return None
    if isinstance(outcome, AwaitRun):
        from overture.orchestration.runs import start_child_run

        child = start_child_run(run, row, outcome.workflow_id, outcome.input)
        return child
    raise TypeError(f"unknown outcome {outcome!r}")


def fanout_messages() -> int:
    """Messages sent when a parallel step starts its branches (the first runs inline)."""
    return max(1, int(os.environ.get(FANOUT_ENV) or 4))


def _spawn(run: Run, graph: Graph, children: list[Child],
           messages: int | None = None) -> uuid.UUID | None:
    if not children:
        return None
    now = utcnow()
    ids = [new_id() for _ in children]
    # One INSERT for all children (a fan-out can be hundreds of rows): no ORM objects.
    # (Executed once per row, pipelined; a multi-row VALUES would be compiled anew.)
    db.session.flush()
    db.session.connection().execute(insert(StepRun.__table__), [
        {"id": step_run_id, "tenant_id": run.tenant_id, "created_at": now, "run_id": run.id,
         "step_id": c.step_id, "path": c.path, "step_type": graph.step(c.step_id)["type"],
         "status": StepStatus.QUEUED, "attempt": 0, "enqueued_at": now, "tokens": 0,
         "cost": Decimal(0), "ends_block": False}
        for step_run_id, c in zip(ids, children, strict=True)])
    for extra in ids[1:messages]:
        send_later(extra, run.tenant_id)
    return ids[0]


def succeed(run: Run, graph: Graph, row: StepRun, output: Any,
            next_id: str | None) -> uuid.UUID | None:
    finish_row(row, StepStatus.SUCCEEDED, output=output)
    if next_id:
        return queue_step(run, next_id, row.path, graph).id
    return finish_block(run, graph, row, output)


def _failed(run: Run, graph: Graph, row: StepRun, step: dict[str, Any], failure: StepFailed,
            now: datetime, resumed: bool = False) -> uuid.UUID | None:
    error = {**failure.as_error(), "step": row.step_id, "attempt": row.attempt}
    policy = step.get("retry") or {}
    retry_on = set(policy.get("retry_on") or TRANSIENT)
    retryable = failure.code in retry_on and not resumed and failure.ran
    if retryable and row.attempt < int(policy.get("max_attempts", 1)):
        base = float(policy.get("backoff_seconds", 1.0))
        cap = float(policy.get("max_backoff_seconds", 300.0))
        delay = min(cap, base * 2 ** (row.attempt - 1)) * random.uniform(0.5, 1.0)  # noqa: S311
        asked = failure.details.get("retry_after")  # the app said when to come back
        if isinstance(asked, int | float):
            delay = max(delay, float(asked))
        row.status, row.claim, row.error = StepStatus.QUEUED, None, error
        row.next_attempt_at = now + timedelta(seconds=delay)
        row.enqueued_at = now
        send_later(row.id, row.tenant_id, int(delay * 1000))
        return None
    if not resumed and failure.ran:  # a step refused before it ran did nothing
        if not row.path:
            run.steps_executed += 1
        meter_step(run, row)
    finish_row(row, StepStatus.FAILED, error=error)
    if step.get("on_error"):
        return queue_step(run, step["on_error"], row.path, graph, input={"error": error}).id
    fail_run(run, error)
    return None


def _interrupted(row: StepRun, outcome: Interrupted, now: datetime) -> None:
    """Give the lost attempt back (the retry policy never sees it) and run the step
    again shortly, as the sweeper does for a step whose worker died."""
    delay = min(INTERRUPTED_BACKOFF_CAP, 0.5 * 2 ** row.interruptions) \
        * random.uniform(0.5, 1.0)  # noqa: S311
    row.interruptions += 1
    row.attempt -= 1
    row.status, row.claim, row.error = StepStatus.QUEUED, None, outcome.as_error()
    row.next_attempt_at = now + timedelta(seconds=delay)
    row.enqueued_at = now
    send_later(row.id, row.tenant_id, int(delay * 1000))
    return None


# --------------------------------------------------------------------------- blocks


def finish_block(run: Run, graph: Graph, row: StepRun, output: Any) -> uuid.UUID | None:
    """The last step of a block finished: end the run, a branch, or an iteration."""
    if not row.path:
        finish_run(run, RunStatus.SUCCEEDED, output=_run_output(run, graph, row, output))
        return None
    parent_path, parent_id, index = split_last(row.path)
    if graph.step(parent_id)["type"] == "parallel":
        # Counted by the join after this commits (a message for the parallel step's row
        # asks for it): checked inside this transaction, two last branches ending at
        # once could each miss the other.
        row.ends_block = True
        parent = step_row(run.id, parent_id, parent_path)
        if parent is not None:
            send_later(parent.id, run.tenant_id)
        return None
    parent = step_row(run.id, parent_id, parent_path, lock=True)
    if parent is None or parent.status != StepStatus.WAITING:
        return None  # cancelled meanwhile
    return _iteration_done(run, graph, parent, dict(parent.state or {}), index, output, row)


def _steps_at(run_id: uuid.UUID, path: str) -> int:
    db.session.flush()
    return len(db.session.scalars(select(StepRun.id).where(
        StepRun.run_id == run_id, StepRun.path == path,
        StepRun.status.in_([StepStatus.SUCCEEDED, StepStatus.FAILED]))).all())


def _iteration_done(run: Run, graph: Graph, parent: StepRun, state: dict[str, Any], index: int,
                    output: Any, last: StepRun) -> uuid.UUID | None:
    step = graph.step(parent.step_id)
    body_start = graph.blocks[parent.step_id].start
    run.steps_executed += _steps_at(run.id, last.path)  # the iteration's own steps
    state["done"] = {**state["done"], str(index): True}
    if state["mode"] == "for_each":
        results = list(state["results"])
        results[index] = output
        state["results"] = results
        if state["started"] < len(state["items"]):
            nxt = state["started"]
            state["started"] = nxt + 1
            parent.state = state
            return queue_step(run, body_start, f"{parent.path}{parent.step_id}#{nxt}/", graph).id
        parent.state = state
        if len(state["done"]) < len(state["items"]):
            return None
        return succeed(run, graph, parent, results, step.get("next"))
    state["results"] = [*state["results"], output]
    scope = scope_for(run, last) | {"index": index, "item": output}
    try:
        finished = expressions.evaluate(step["until"], scope) is True
    except expressions.ExpressionError as exc:
        parent.state = state
        return _failed(run, graph, parent, step, StepFailed("expression", exc.detail), utcnow(),
                       resumed=True)
    if finished or state["started"] >= state["max"]:
        parent.state = state
        return succeed(run, graph, parent, state["results"], step.get("next"))
    state["started"] += 1
    parent.state = state
    return queue_step(run, body_start, f"{parent.path}{parent.step_id}#{index + 1}/", graph).id


def _run_output(run: Run, graph: Graph, row: StepRun, last_output: Any) -> Any:
    template = graph.definition.get("output")
    if template is None:
        return last_output
    scope = scope_for(run, row)
    return expressions.render(template, scope | {"steps": {**scope["steps"],
                                                           row.step_id: last_output}})


# --------------------------------------------------------------------------- run end


def fail_run(run: Run, error: dict[str, Any]) -> None:
    finish_run(run, RunStatus.FAILED, error=error)


def finish_run(run: Run, status: RunStatus, output: Any = None,
               error: dict[str, Any] | None = None) -> None:
    """End a run once: record it, cancel what is left, and tell a waiting parent."""
    if run.finished:
        return
    run.status, run.finished_at = status, utcnow()
    run.output, run.error = output, error
    started_at, finished_at = run.started_at, run.finished_at
    metrics.on_commit(db.session(), lambda: metrics.run_finished(status, started_at, finished_at))
    for row in db.session.scalars(select(StepRun).where(
            StepRun.run_id == run.id, StepRun.status.not_in(FINISHED_STEP))):
        cancel_row(row)
        cancel_approvals(row.id)
    for child in db.session.scalars(select(Run).where(Run.parent_run_id == run.id,
                                                      Run.status == RunStatus.RUNNING)):
        finish_run(child, RunStatus.CANCELLED, error={"code": "parent_finished",
                                                      "message": "the parent run ended"})
    audit.record(f"run.{status}", target_type="run", target_id=run.id,
                 details={"workflow_id": str(run.workflow_id), "error": error})
    if not run.is_test:  # a test run mails nobody and tells no subscriber
        notifications.run_failed(run)  # when the workflow asks for failure alerts
        outbound_events.run_finished(run)
    if run.parent_step_run_id is not None:
        _resume_parent(run)


def _resume_parent(child: Run) -> None:
    parent_row = db.session.scalars(select(StepRun).where(StepRun.id == child.parent_step_run_id)
                                    .with_for_update()).one_or_none()
    if parent_row is None or parent_row.status != StepStatus.WAITING:
        return
    parent_run = db.session.get(Run, parent_row.run_id)
    if parent_run is None or parent_run.status != RunStatus.RUNNING:
        return
    outcome: Outcome | StepFailed = (
        Completed(child.output) if child.status == RunStatus.SUCCEEDED else
        StepFailed("child_run_" + child.status, f"child run {child.id} ended {child.status}",
                   {"child_run_id": str(child.id), "child_error": child.error}))
    parent_row.status = StepStatus.RUNNING
    inline = apply(parent_run, parent_row, outcome, resumed=True)
    if inline is not None:
        send_later(inline, parent_run.tenant_id)


def resume_waiting(run: Run, row: StepRun, outcome: Outcome | StepFailed) -> None:
    """Finish a waiting step from outside a worker (an approval decided, a timer)."""
    row.status = StepStatus.RUNNING
    inline = apply(run, row, outcome, resumed=True)
    if inline is not None:
        send_later(inline, run.tenant_id)
