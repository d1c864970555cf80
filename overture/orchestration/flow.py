"""How a run moves: what an outcome does to a step run, its successors, the joins
and loops around it, and the run itself. Everything here runs inside the one
transaction that records a step (or decides an approval, or ends a child run)."""

from __future__ import annotations

import os
import random
import threading
import uuid
from collections import OrderedDict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select

from overture.billing import enforce, usage
from overture.billing.meters import STEPS
from overture.orchestration import dispatch, expressions, hotpath, notifications, outbound_events
from overture.orchestration.definition import Graph
from overture.orchestration.ledger import Ledger
from overture.orchestration.models import (
    FINISHED_STEP,
    Approval,
    ApprovalStatus,
    Run,
    RunStatus,
    StepRun,
    StepStatus,
    WorkflowVersion,
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
    Spawn,
    StepFailed,
    Stop,
)
from overture.platform import audit, metrics
from overture.platform.db import db, utcnow
from overture.platform.ids import new_id

DEFAULT_MAX_STEPS = 10_000
FANOUT_ENV = "OVERTURE_FANOUT_MESSAGES"
FANOUT_RECHECK_MS = 1000  # then branches still queued are spread over more workers
DEFAULT_MAX_DURATION = 7 * 86400
INTERRUPTED_BACKOFF_CAP = 30.0  # seconds before a step interrupted again runs again
Recordable = Outcome | StepFailed | Interrupted
_graphs: OrderedDict[uuid.UUID, Graph] = OrderedDict()
_graphs_lock = threading.Lock()


def graph_of(run: Run) -> Graph:
    return graph_of_version(run.version_id)


def graph_of_version(version_id: uuid.UUID) -> Graph:
    """The frozen graph of a version (versions never change, so cache them)."""
    graph = _graphs.get(version_id)
    if graph is None:
        version = db.session.get(WorkflowVersion, version_id)
        graph = Graph.of(version.definition)
        graph.pins = dict(version.pins or {})
        with _graphs_lock:
            _graphs[version_id] = graph
            if len(_graphs) > 512:
                _graphs.popitem(last=False)
    return graph


# --------------------------------------------------------------------------- queueing


def queue_step(run: Run, step_id: str, path: str, graph: Graph,
               input: Any = None) -> StepRun:
    row = StepRun(run_id=run.id, step_id=step_id, path=path,
                  step_type=graph.step(step_id)["type"], status=StepStatus.QUEUED,
                  input=input, enqueued_at=utcnow())
    db.session.add(row)
    db.session.flush()
    return row


def send_later(step_run_id: uuid.UUID, tenant_id: uuid.UUID, delay_ms: int | None = None) -> None:
    dispatch.after_commit(db.session(), step_run_id, tenant_id, delay_ms)


def _ms_until(when: datetime) -> int:
    return max(0, int((when - utcnow()).total_seconds() * 1000))


# --------------------------------------------------------------------------- scope


def scope_for(run: Run, row: StepRun) -> dict[str, Any]:
    db.session.flush()  # the scope is read with Core, which does not flush
    return build_scope(hotpath.SessionReader(run.tenant_id), graph_of(run), run.id,
                       run.workflow_id, run.input, run.trigger, run.started_at, row.path,
                       row.attempt, row.input)


def build_scope(reader: hotpath.Reader, graph: Graph, run_id: uuid.UUID,
                workflow_id: uuid.UUID, run_input: Any, trigger: str,
                run_started_at: datetime | None, path: str, attempt: int,
                step_input: Any) -> dict[str, Any]:
    """What expressions in a step see: the run input, outputs of steps in this
    iteration and the blocks around it, run metadata, and the loop item."""
    paths = ancestor_paths(path)
    depth = {p: i for i, p in enumerate(paths)}
    steps: dict[str, Any] = {}
    for step_id, _path, output in sorted(reader.outputs_on(run_id, paths),
                                         key=lambda o: depth[o[1]]):
        steps[step_id] = output
    scope: dict[str, Any] = {"input": run_input, "steps": steps,
                             "run": {"id": str(run_id), "workflow_id": str(workflow_id),
                                     "attempt": attempt, "trigger": trigger,
                                     "started_at": run_started_at.isoformat()
                                     if run_started_at else None}}
    scope.update(_loop_item(reader, graph, run_id, path))
    if isinstance(step_input, dict) and "error" in step_input:
        scope["error"] = step_input["error"]
    return scope


def next_scope(scope: dict[str, Any], step_id: str, output: Any) -> dict[str, Any]:
    """The scope of the step after `step_id` in the same block, from `step_id`'s own:
    the same, plus its output, on a first attempt."""
    following = {k: v for k, v in scope.items() if k != "error"}
    following["steps"] = {**scope["steps"], step_id: output}
    following["run"] = {**scope["run"], "attempt": 1}
    return following


def ancestor_paths(path: str) -> list[str]:
    """"a#1/b#2/" -> ["", "a#1/", "a#1/b#2/"]."""
    parts = [p for p in path.split("/") if p]
    return ["".join(f"{p}/" for p in parts[:i]) for i in range(len(parts) + 1)]


def split_last(path: str) -> tuple[str, str, int]:
    """"a#1/b#2/" -> ("a#1/", "b", 2): the enclosing path, step and index."""
    parts = [p for p in path.split("/") if p]
    step_id, index = parts[-1].rsplit("#", 1)
    return "".join(f"{p}/" for p in parts[:-1]), step_id, int(index)


def _loop_item(reader: hotpath.Reader, graph: Graph, run_id: uuid.UUID,
               path: str) -> dict[str, Any]:
    """`item` and `index` of the innermost loop iteration this path is in."""
    if not path:
        return {}
    parent_path, step_id, index = split_last(path)
    if graph.steps.get(step_id, {}).get("type") != "loop":  # a parallel branch
        return _loop_item(reader, graph, run_id, parent_path)
    state = reader.loop_state(run_id, step_id, parent_path) or {}
    items = state.get("items") or []
    if state.get("mode") != "for_each":
        return {"index": index, "item": None}
    return {"index": index, "item": items[index] if index < len(items) else None}


def _step_row(run_id: uuid.UUID, step_id: str, path: str, lock: bool = False) -> StepRun | None:
    stmt = select(StepRun).where(StepRun.run_id == run_id, StepRun.step_id == step_id,
                                 StepRun.path == path)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return db.session.scalars(stmt).one_or_none()


# --------------------------------------------------------------------------- run policies


def may_start(status: str, deadline_at: datetime | None, steps_executed: int, graph: Graph,
              now: datetime) -> bool:
    """Whether a step of a run in this state may start (else `refuse_to_start` says why)."""
    return (status == RunStatus.RUNNING and (deadline_at is None or deadline_at > now)
            and steps_executed < graph.policy("max_steps", DEFAULT_MAX_STEPS))


def refuse_to_start(run: Run, graph: Graph, row: StepRun, now: datetime) -> str | None:
    """Cancel the claimed step when its run may not go on; says why, or None."""
    if run.status != RunStatus.RUNNING:
        _cancel_row(row)
        return "run finished"
    if run.deadline_at and run.deadline_at <= now:
        finish_run(run, RunStatus.TIMED_OUT, error={"code": "run_timeout", "message":
                   "the run passed its maximum duration"})
        return "run timed out"
    if run.steps_executed >= graph.policy("max_steps", DEFAULT_MAX_STEPS):
        finish_run(run, RunStatus.FAILED, error={"code": "max_steps", "message":
                   "the run reached its maximum number of steps"})
        return "too many steps"
    return None


# --------------------------------------------------------------------------- ledger


def write_ledger(run: Run, row: StepRun, ledger: Ledger, outcome: Recordable) -> Recordable:
    """Write what the step used and did; a run past its `max_agent_calls` fails here.
    The usage is keyed by the claim that ran the step: this attempt's, written once
    however often this transaction is tried (a later attempt has a claim of its own)."""
    if ledger.empty:
        return outcome
    usage.record(ledger.usage, attribution=attribution(run, row),
                 key=f"claim:{row.id}:{row.claim}")
    enforce.settle(ledger.holds)  # what the calls held now shows as used
    for note in ledger.audit:
        audit.record(note.action, target_type=note.target_type, target_id=note.target_id,
                     details={**note.details, "run_id": str(run.id), "step_id": row.step_id},
                     actor=note.actor)
    add_cost(run, row, ledger.tokens, ledger.cost)
    run.agent_calls += ledger.agent_calls
    limit = (graph_of(run).definition.get("policy") or {}).get("max_agent_calls")
    if limit is not None and ledger.agent_calls and run.agent_calls > int(limit):
        return StepFailed("max_agent_calls", f"the run made {run.agent_calls} agent calls, "
                          f"more than its maximum of {limit}")
    return outcome


def attribution(run: Run, row: StepRun) -> usage.Attribution:
    return usage.Attribution(workflow_id=run.workflow_id, run_id=run.id, step_id=row.step_id,
                             step_run_id=row.id, billed=not run.is_test)


def meter_step(run: Run, row: StepRun) -> None:
    """Count the step run as executed: once, whatever happens to it later (a delay
    that comes back, a wait that resumes), as the hot path does."""
    usage.record([usage.Entry(STEPS, Decimal(1))], attribution=attribution(run, row),
                 key=usage.step_key(row.id))


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
        _finish_row(row, StepStatus.SUCCEEDED, output=outcome.output)
        status = RunStatus.FAILED if outcome.status == "failed" else RunStatus.SUCCEEDED
        error = {"code": "stopped", "message": str(outcome.error or "stopped by a stop step"),
                 "step": row.step_id} if status == RunStatus.FAILED else None
        finish_run(run, status, output=outcome.output, error=error)
        return None
    if isinstance(outcome, Defer):
        row.status, row.claim, row.next_attempt_at = StepStatus.QUEUED, None, outcome.until
        row.enqueued_at = now
        send_later(row.id, row.tenant_id, _ms_until(outcome.until))
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
    _finish_row(row, StepStatus.SUCCEEDED, output=output)
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
    _finish_row(row, StepStatus.FAILED, error=error)
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


def _finish_row(row: StepRun, status: StepStatus, output: Any = None,
                error: dict[str, Any] | None = None) -> None:
    row.status, row.finished_at, row.claim, row.lease_until = status, utcnow(), None, None
    if output is not None:
        row.output = output
    if error is not None:
        row.error = error


def _cancel_row(row: StepRun) -> None:
    row.status, row.finished_at, row.claim, row.lease_until = (StepStatus.CANCELLED, utcnow(),
                                                               None, None)


# --------------------------------------------------------------------------- blocks and joins


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
        parent = _step_row(run.id, parent_id, parent_path)
        if parent is not None:
            send_later(parent.id, run.tenant_id)
        return None
    parent = _step_row(run.id, parent_id, parent_path, lock=True)
    if parent is None or parent.status != StepStatus.WAITING:
        return None  # cancelled meanwhile
    return _iteration_done(run, graph, parent, dict(parent.state or {}), index, output, row)


# --------------------------------------------------------------------------- joins


def join_if_ready(run: Run, graph: Graph, parent: StepRun) -> uuid.UUID | None:
    """Complete a waiting parallel step whose join is satisfied, once: the caller holds
    the run's lock and commits. Returns the step that follows, if any."""
    if run.status != RunStatus.RUNNING or parent.status != StepStatus.WAITING:
        return None
    state = dict(parent.state or {})
    db.session.flush()
    ended = ended_branches(run.id, parent)
    if len(ended) < state["needed"]:
        return None
    outputs: list[Any] = [None] * len(state.get("outputs") or ended)
    for index, output in ended.items():
        if index < len(outputs):
            outputs[index] = output
    parent.state = {**state, "done": {str(i): True for i in ended}, "outputs": outputs}
    run.steps_executed += _steps_in_branches(run.id, parent)
    _cancel_children(run, parent)
    return succeed(run, graph, parent, outputs, graph.step(parent.step_id).get("next"))


def _branch_paths(parent: StepRun) -> tuple[str, Any]:
    """The prefix of the parallel step's branch paths, and a test for "exactly one
    branch deep" ("fan#3/", not "fan#3/inner#0/")."""
    prefix = f"{parent.path}{parent.step_id}#"

    def branch_index(path: str) -> int | None:
        rest = path[len(prefix):]
        return int(rest[:-1]) if rest.endswith("/") and rest[:-1].isdigit() else None

    return prefix, branch_index


def ended_branches(run_id: uuid.UUID, parent: StepRun) -> dict[int, Any]:
    """Branch index -> output, for the branches of `parent` that have ended."""
    prefix, branch_index = _branch_paths(parent)
    ended: dict[int, Any] = {}
    for path, output in db.session.execute(select(StepRun.path, StepRun.output).where(
            StepRun.run_id == run_id, StepRun.ends_block.is_(True),
            StepRun.status == StepStatus.SUCCEEDED,
            StepRun.path.startswith(prefix, autoescape=True))):
        index = branch_index(path)
        if index is not None:
            ended[index] = output
    return ended


def _steps_in_branches(run_id: uuid.UUID, parent: StepRun) -> int:
    """Steps run directly in the parallel step's branches: they are counted on the run
    when the join completes (deeper blocks count their own when they end)."""
    prefix, branch_index = _branch_paths(parent)
    paths = db.session.scalars(select(StepRun.path).where(
        StepRun.run_id == run_id, StepRun.path.startswith(prefix, autoescape=True),
        StepRun.status.in_([StepStatus.SUCCEEDED, StepStatus.FAILED])))
    return sum(1 for path in paths if branch_index(path) is not None)


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


def _cancel_children(run: Run, parent: StepRun) -> None:
    prefix = f"{parent.path}{parent.step_id}#"
    for child in db.session.scalars(select(StepRun).where(
            StepRun.run_id == run.id, StepRun.path.startswith(prefix, autoescape=True),
            StepRun.status.not_in(FINISHED_STEP))):
        _cancel_row(child)
        _cancel_approvals(child.id)


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
        _cancel_row(row)
        _cancel_approvals(row.id)
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


def _cancel_approvals(step_run_id: uuid.UUID) -> None:
    for approval in db.session.scalars(select(Approval).where(
            Approval.step_run_id == step_run_id, Approval.status == ApprovalStatus.PENDING)):
        approval.status = ApprovalStatus.CANCELLED


def add_cost(run: Run, row: StepRun, tokens: int, cost: Decimal) -> None:
    row.tokens += tokens
    row.cost += cost
    run.tokens += tokens
    run.cost += cost
