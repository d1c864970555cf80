"""Runs: start (with idempotency), start a child, cancel, replay, and read."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from overture.billing import enforce, usage
from overture.billing.meters import RUNS_STARTED
from overture.orchestration import flow, outbound_events, run_policy, step_rows
from overture.orchestration.definition import Graph, input_problems
from overture.orchestration.models import (
    FINISHED_STEP,
    Run,
    RunMode,
    RunStatus,
    StepRun,
    StepStatus,
    Workflow,
    WorkflowVersion,
)
from overture.orchestration.outcomes import StepFailed, budget_exceeded
from overture.platform import audit, metrics
from overture.platform.audit import AuditEvent
from overture.platform.db import db, get_or_404, utcnow
from overture.platform.errors import Conflict, PaymentRequired, ValidationFailed
from overture.platform.ids import parse_id
from overture.platform.pagination import Page, paginate

MAX_INPUT_BYTES = 1_000_000


class IdempotencyKeyReused(ValidationFailed):
    """A key names one request: the same key with another input is a client bug (two
    requests sharing a key), and answering with the first run would hide it (Stripe
    answers the same way)."""

    code = "idempotency-key-reused"
    title = "Idempotency key reused"

    def __init__(self, run: Run) -> None:
        super().__init__([{"field": "Idempotency-Key",
                           "message": "already used with a different input"}],
                         detail=f"this Idempotency-Key was first used with a different input "
                                f"(run {run.id}); use a new key for a new request, or resend "
                                "the first request unchanged to get its run")
        self.extra["run_id"] = str(run.id)


def start_run(workflow: Workflow, input: Any, trigger: str, *,
              idempotency_key: str | None = None, started_by: uuid.UUID | None = None,
              version: WorkflowVersion | None = None,
              check_reuse: bool = True, check_schema: bool = False) -> tuple[Run, bool]:
    """A new run of the workflow's current version, or the run this key already made.

    Returns (run, created). The first step is queued; its message leaves on commit.
    A key that made a run with a different input is refused (`IdempotencyKeyReused`),
    unless `check_reuse` is off: for keys the platform derives itself, whose repeats
    are the same event by construction. With `check_schema` (runs people start) the
    input must fit the version's `input_schema`; a trigger's payload is the sender's.
    """
    if idempotency_key is None:  # no key to collide on: no savepoint to wrap it in
        check_input(input)
        version = version or _current_version(workflow)
        if check_schema:
            check_input_schema(version, input)
        return _new_run(workflow, version, input, trigger, None, None, started_by), True
    fingerprint = input_fingerprint(input)
    existing = _by_key(workflow.id, idempotency_key)
    if existing is None:
        check_input(input)
        version = version or _current_version(workflow)
        if check_schema:
            check_input_schema(version, input)
        try:
            with db.session.begin_nested():
                return _new_run(workflow, version, input, trigger, idempotency_key,
                                fingerprint, started_by), True
        except IntegrityError:  # a concurrent request with this key won
            existing = _by_key(workflow.id, idempotency_key)
            if existing is None:
                raise
    if check_reuse and existing.input_fingerprint not in (None, fingerprint):
        raise IdempotencyKeyReused(existing)  # (None: a run from before fingerprints)
    return existing, False


def input_fingerprint(input: Any) -> str:
    """SHA-256 of the input's canonical JSON (sorted keys, no spaces, ASCII): the same
    input however its keys were ordered or its text spaced."""
    canonical = json.dumps(input, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_input(input: Any) -> None:
    """Refuse a run input over MAX_INPUT_BYTES: it is stored with the run and read into
    every step's scope."""
    if len(json.dumps(input, default=str)) > MAX_INPUT_BYTES:
        raise ValidationFailed.field("input", f"larger than {MAX_INPUT_BYTES} bytes as JSON")


def check_input_schema(version: WorkflowVersion, input: Any) -> None:
    """ValidationFailed naming each field (`input.<name>`) the input gets wrong."""
    problems = input_problems((version.definition or {}).get("input_schema"), input)
    if problems:
        raise ValidationFailed(problems)


def _by_key(workflow_id: uuid.UUID, key: str) -> Run | None:
    return db.session.scalars(select(Run).where(Run.workflow_id == workflow_id,
                                                Run.idempotency_key == key)).one_or_none()


def current_version(workflow: Workflow) -> WorkflowVersion:
    return _current_version(workflow)


def _current_version(workflow: Workflow) -> WorkflowVersion:
    if workflow.current_version_id is None:
        raise Conflict("publish the workflow before running it")
    return db.session.get(WorkflowVersion, workflow.current_version_id)


def _new_run(workflow: Workflow, version: WorkflowVersion, input: Any, trigger: str,
             key: str | None, fingerprint: str | None, started_by: uuid.UUID | None,
             parent: StepRun | None = None, parent_run: Run | None = None, *,
             test_options: dict[str, Any] | None = None,
             replay_of: uuid.UUID | None = None) -> Run:
    """A run; with `test_options`, a test run (testmode): it is admitted whatever the
    limits (it uses none), meters nothing and tells no subscriber."""
    testing = test_options is not None
    if not testing:
        enforce.admit_run(workflow.id)  # 402 when the standing or a limit forbids it
    graph = Graph.of(version.definition)
    now = utcnow()
    run = Run(workflow_id=workflow.id, version_id=version.id, status=RunStatus.RUNNING,
              trigger=trigger, idempotency_key=key, input_fingerprint=fingerprint,
              input=input, started_by_id=started_by,
              started_at=now, parent_run_id=parent_run.id if parent_run else None,
              parent_step_run_id=parent.id if parent else None, replay_of_id=replay_of,
              mode=RunMode.TEST if testing else RunMode.LIVE, test_options=test_options,
              deadline_at=now + timedelta(seconds=graph.policy("max_duration_seconds",
                                                               run_policy.DEFAULT_MAX_DURATION)))
    db.session.add(run)
    db.session.flush()
    first = step_rows.queue_step(run, graph.start, "", graph)
    step_rows.send_later(first.id, run.tenant_id)
    metrics.run_started(db.session(), trigger)
    details = {"workflow_id": str(workflow.id), "version": version.number, "trigger": trigger}
    if testing:
        details["mode"] = RunMode.TEST
        if replay_of is not None:
            details["replay_of"] = str(replay_of)
    audit.record("run.started", target_type="run", target_id=run.id, details=details)
    if not testing:
        _meter_started(run)
        outbound_events.run_started(run)
    return run


def start_test_run(workflow: Workflow, version: WorkflowVersion, input: Any, trigger: str,
                   started_by: uuid.UUID | None, test_options: dict[str, Any],
                   replay_of: uuid.UUID | None = None) -> Run:
    """A test run (testmode.start checks its options first)."""
    check_input(input)
    return _new_run(workflow, version, input, trigger, None, None, started_by,
                    test_options=test_options, replay_of=replay_of)


def start_child_run(parent_run: Run, row: StepRun, workflow_id: str,
                    input: Any) -> uuid.UUID | None:
    """Hierarchical orchestration: a subworkflow step starts a child run and waits."""
    ident = parse_id(workflow_id)  # a malformed id is a step failure, not a crash
    workflow = (db.session.scalars(select(Workflow).where(Workflow.id == ident)).one_or_none()
                if ident is not None else None)
    if workflow is None or workflow.current_version_id is None:
        flow.apply(parent_run, row, StepFailed("subworkflow", f"no published workflow "
                                                              f"{workflow_id}"), resumed=True)
        return None
    version = db.session.get(WorkflowVersion, workflow.current_version_id)
    try:
        child = _new_run(workflow, version, input, "subworkflow", None, None, None,
                         parent=row, parent_run=parent_run,
                         test_options=child_test_options(parent_run))
    except PaymentRequired as refused:  # the parent's error route may take it
        flow.apply(parent_run, row, budget_exceeded(refused), resumed=True)
        return None
    row.state = {"child_run_id": str(child.id)}
    return None


def cancel_run(run: Run) -> Run:
    """Cancel a run, its queued and waiting steps, its approvals and its child runs."""
    locked = db.session.scalars(select(Run).where(Run.id == run.id).with_for_update()
                                .execution_options(populate_existing=True)).one()
    if locked.finished:  # checked under the lock: a worker may have just ended it
        raise Conflict(f"the run already ended ({locked.status})")
    flow.finish_run(locked, RunStatus.CANCELLED, error={"code": "cancelled",
                                                        "message": "cancelled on request"})
    return locked


def replay_run(run: Run, from_step: str, started_by: uuid.UUID | None) -> Run:
    """A new run of the same version that reuses the outputs of every step that runs
    before `from_step`, and runs again from there."""
    version = db.session.get(WorkflowVersion, run.version_id)
    graph = Graph.of(version.definition)
    if from_step not in graph.steps:
        raise ValidationFailed.field("from_step", f"no step {from_step!r} in this version")
    if graph.block_of[from_step] != "":
        raise ValidationFailed.field("from_step", "replay starts from a top-level step")
    again = graph.downstream(from_step)
    workflow = db.session.get(Workflow, run.workflow_id)
    if not run.is_test:  # a test run's replay is a test run too
        enforce.admit_run(workflow.id)
    now = utcnow()
    replay = Run(workflow_id=workflow.id, version_id=version.id, status=RunStatus.RUNNING,
                 trigger="replay", input=run.input, started_by_id=started_by, started_at=now,
                 replay_of_id=run.id, mode=run.mode, test_options=run.test_options,
                 deadline_at=now + timedelta(
                     seconds=graph.policy("max_duration_seconds", run_policy.DEFAULT_MAX_DURATION)))
    db.session.add(replay)
    db.session.flush()
    for old in db.session.scalars(select(StepRun).where(
            StepRun.run_id == run.id, StepRun.status.in_([StepStatus.SUCCEEDED,
                                                          StepStatus.SKIPPED]))):
        if old.step_id not in again and _outside(old.path, again):
            db.session.add(StepRun(run_id=replay.id, step_id=old.step_id, path=old.path,
                                   step_type=old.step_type, status=StepStatus.SKIPPED,
                                   input=old.input, output=old.output, state=old.state,
                                   finished_at=now))
    first = step_rows.queue_step(replay, from_step, "", graph)
    step_rows.send_later(first.id, replay.tenant_id)
    audit.record("run.replayed", target_type="run", target_id=replay.id,
                 details={"replay_of": str(run.id), "from_step": from_step,
                          **({"mode": RunMode.TEST} if replay.is_test else {})})
    if not replay.is_test:
        _meter_started(replay)
        outbound_events.run_started(replay)
    return replay


def child_test_options(parent: Run) -> dict[str, Any] | None:
    """A test run's child runs are test runs: its per-action mocks and model choice go
    down to them; its per-step mocks name the parent's steps and stay there."""
    if not parent.is_test:
        return None
    options = dict(parent.test_options or {})
    return {k: v for k, v in options.items()
            if k in ("action_mocks", "allow_live_models", "mock_reads")}


def _meter_started(run: Run) -> None:
    """`runs_started`, in the transaction that creates the run, once per run."""
    usage.record([usage.Entry(RUNS_STARTED, Decimal(1))], key=f"run:{run.id}",
                 attribution=usage.Attribution(workflow_id=run.workflow_id, run_id=run.id))


def _outside(path: str, again: set[str]) -> bool:
    """A nested row is reused only if none of the steps around it runs again."""
    return not any(part.split("#")[0] in again for part in path.split("/") if part)


# --------------------------------------------------------------------------- reading


def get_run(run_id: str) -> Run:
    return get_or_404(Run, run_id, "run")


def list_runs(cursor: str | None, limit: int | None, workflow_id: str | None = None,
              status: str | None = None, trigger: str | None = None, *,
              since: datetime | None = None, before: datetime | None = None,
              newest_first: bool = False, mode: str | None = None) -> Page[Run]:
    """Runs filtered as the API and the console ask; `since`/`before` bound when they
    were created; `mode` 'live' or 'test' (both when None)."""
    stmt = select(Run)
    if mode:
        if mode not in set(RunMode):
            raise ValidationFailed.field("mode", f"one of {', '.join(RunMode)}")
        stmt = stmt.where(Run.mode == mode)
    if since is not None:
        stmt = stmt.where(Run.created_at >= since)
    if before is not None:
        stmt = stmt.where(Run.created_at < before)
    if workflow_id:
        stmt = stmt.where(Run.workflow_id == _uuid(workflow_id, "workflow_id"))
    if status:
        if status not in set(RunStatus):
            raise ValidationFailed.field("status", f"one of {', '.join(RunStatus)}")
        stmt = stmt.where(Run.status == status)
    if trigger:
        stmt = stmt.where(Run.trigger == trigger)
    return paginate(stmt, Run.id, cursor, limit, newest_first)


def workflow_ids(run_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """The workflow of each run, by run id, in one statement."""
    wanted = set(run_ids)
    if not wanted:
        return {}
    return dict(db.session.execute(select(Run.id, Run.workflow_id)
                                   .where(Run.id.in_(wanted))).all())


def timeline(run: Run) -> list[StepRun]:
    """Every step run of a run, in the order they were created."""
    return list(db.session.scalars(select(StepRun).where(StepRun.run_id == run.id)
                                   .order_by(StepRun.id)))


def unfinished_steps(run: Run) -> int:
    return len(db.session.scalars(select(StepRun.id).where(
        StepRun.run_id == run.id, StepRun.status.not_in(FINISHED_STEP))).all())


def _uuid(raw: str, field: str) -> uuid.UUID:
    value = parse_id(raw)
    if value is None:
        raise ValidationFailed.field(field, "not an id")
    return value



def recent_runs(limit: int) -> list[Run]:
    """The latest runs of the tenant in scope, newest first (a home page's list): the
    first of the runs list, by id as it pages (ids follow time, and the primary key
    gives them in order; sorting on created_at sorted every run of the tenant)."""
    return list(db.session.scalars(select(Run).order_by(Run.id.desc()).limit(limit)))


def version_of(run: Run) -> tuple[Workflow, WorkflowVersion]:
    """The workflow and the version a run is pinned to (also of an archived workflow:
    its runs stay readable)."""
    return (db.session.get(Workflow, run.workflow_id),
            db.session.get(WorkflowVersion, run.version_id))


TOOL_EVENTS = ("agent.tool_called", "agent.tool_refused")


def tool_calls(run: Run, limit: int = 500) -> dict[str, list[AuditEvent]]:
    """The tools a run's agents called or were refused, by step id, as the audit trail
    recorded them (the tool's name and a digest of its input, never the input)."""
    rows = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action.in_(TOOL_EVENTS), AuditEvent.occurred_at >= run.created_at,
        AuditEvent.details["run_id"].as_string() == str(run.id))
        .order_by(AuditEvent.seq).limit(limit))
    calls: dict[str, list[AuditEvent]] = {}
    for event in rows:
        calls.setdefault(str(event.details.get("step_id")), []).append(event)
    return calls
