"""The durable engine: claim a step run, execute it outside any transaction, record
what happened in one commit, and move on.

1. `claim` takes a queued row (or one whose lease expired) in a short transaction.
   A row already taken or finished is left alone: duplicate messages are harmless.
2. The executor runs with no transaction open. Side effects get an idempotency key
   derived from the step run, the same on every attempt.
3. `record` commits the output, usage, audit and successor rows together; messages
   for the successors go out after that commit (`dispatch`).
4. The first ready successor runs at once in this process (bounded), since its row
   is already durable: a crash loses nothing, the sweeper picks it up.
"""

from __future__ import annotations

import ctypes
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import OperationalError

from overture.orchestration import flow
from overture.orchestration.models import Run, RunStatus, StepRun, StepStatus
from overture.orchestration.outcomes import Outcome, StepFailed
from overture.orchestration.steps import StepContext, executor_for
from overture.platform.db import db, scoped_to, utcnow
from overture.platform.logging import get_logger

log = get_logger(__name__)
LEASE_GRACE_ENV = "OVERTURE_LEASE_GRACE_SECONDS"
DEFAULT_TIMEOUT = 300.0
MAX_INLINE_STEPS = 50  # one message runs at most this many steps before yielding
DEADLOCK_RETRIES = 3
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock, serialization failure


@dataclass
class Claimed:
    """A claimed step run, as plain data: nothing here touches the database."""

    step_run_id: uuid.UUID
    claim: str
    context: StepContext
    step_type: str


def process(step_run_id: uuid.UUID, tenant_id: uuid.UUID) -> None:
    """Handle one message: run the step and then, inline, the ready successors."""
    with scoped_to(tenant_id):
        current: uuid.UUID | None = step_run_id
        for _ in range(MAX_INLINE_STEPS):
            if current is None:
                return
            current = run_one(current)
        if current is not None:
            flow.send_later(current, tenant_id)
            db.session.commit()


def run_one(step_run_id: uuid.UUID) -> uuid.UUID | None:
    """Claim, execute and record one step run; returns a successor to run inline."""
    claimed = claim(step_run_id)
    if claimed is None:
        return None
    try:
        outcome: Outcome | StepFailed = execute(claimed)
    except StepFailed as failure:
        outcome = failure
    except Exception as exc:  # a bug in an executor must not lose the run
        log.exception("step.crashed", step_run_id=str(step_run_id))
        outcome = StepFailed("error", f"{type(exc).__name__}: {exc}")
    # An executor that touched the database (connector audit and usage) may have left a
    # transaction open, or aborted by its error: the record must not inherit either.
    db.session.rollback()
    return record(claimed, outcome)


# --------------------------------------------------------------------------- claim


def claim(step_run_id: uuid.UUID) -> Claimed | None:
    return _retry_deadlocks(_claim_once, step_run_id)


def _claim_once(step_run_id: uuid.UUID) -> Claimed | None:
    now = utcnow()
    token = uuid.uuid4().hex
    row = db.session.get(StepRun, step_run_id)
    if row is None:
        db.session.rollback()
        return None
    run = db.session.get(Run, row.run_id)
    graph = flow.graph_of(run)
    step = graph.step(row.step_id)
    timeout = float(step.get("timeout_seconds", DEFAULT_TIMEOUT))
    taken = db.session.execute(
        update(StepRun)
        .where(StepRun.id == step_run_id,
               or_(and_(StepRun.status == StepStatus.QUEUED,
                        or_(StepRun.next_attempt_at.is_(None), StepRun.next_attempt_at <= now)),
                   and_(StepRun.status == StepStatus.RUNNING, StepRun.lease_until < now)))
        .values(status=StepStatus.RUNNING, claim=token, attempt=StepRun.attempt + 1,
                lease_until=now + timedelta(seconds=timeout + lease_grace()))
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken != 1:
        db.session.rollback()
        return None
    db.session.refresh(row)
    if row.started_at is None:
        row.started_at = now
    refusal = flow.refuse_to_start(run, graph, row, now)
    if refusal is not None:
        db.session.commit()
        return None
    context = StepContext(
        step=step, path=row.path, scope=flow.scope_for(run, row), attempt=row.attempt,
        idempotency_key=f"ovt-{row.id}", timeout=timeout, tenant_id=str(row.tenant_id),
        started_at=row.started_at, run_id=str(run.id), workflow_id=str(run.workflow_id),
        step_run_id=str(row.id), pins=graph.pins)
    claimed = Claimed(row.id, token, context, row.step_type)
    db.session.commit()  # nothing stays open while the step runs
    return claimed


def lease_grace() -> float:
    """Seconds a lease outlasts the step's timeout, for recording the outcome; a worker
    that died is noticed this long after its step's timeout, never sooner."""
    return float(os.environ.get(LEASE_GRACE_ENV) or 30)


# --------------------------------------------------------------------------- execute


class StepTimeout(BaseException):
    """Raised inside a step's thread when it overruns (BaseException: not swallowed)."""


def execute(claimed: Claimed) -> Outcome:
    executor = executor_for(claimed.step_type)
    return _with_timeout(lambda: executor(claimed.context), claimed.context.timeout)


def _with_timeout(fn: Any, seconds: float) -> Any:
    """Run fn here; if it overruns, raise StepTimeout in this thread (as Dramatiq's
    time limit does). Blocking C calls end when their own timeouts do."""
    thread_id = ctypes.c_ulong(threading.get_ident())
    lock = threading.Lock()
    state = {"done": False, "fired": False}

    def interrupt() -> None:
        with lock:
            if not state["done"]:
                state["fired"] = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(thread_id,
                                                           ctypes.py_object(StepTimeout))

    timer = threading.Timer(seconds, interrupt)
    timer.daemon = True
    try:
        try:
            timer.start()
            return fn()
        finally:
            with lock:
                state["done"] = True
            timer.cancel()
            if state["fired"]:
                # fn ended as the timer fired: take back the exception not yet raised,
                # or it would surface later, outside any handler (mid-record, say)
                ctypes.pythonapi.PyThreadState_SetAsyncExc(thread_id, None)
    except StepTimeout as exc:
        raise StepFailed("timeout", f"the step ran longer than {seconds:g}s") from exc


# --------------------------------------------------------------------------- record


def record(claimed: Claimed, outcome: Outcome | StepFailed) -> uuid.UUID | None:
    """Record the outcome in one transaction if the claim still holds."""
    return _retry_deadlocks(_record_once, claimed, outcome)


def _retry_deadlocks(fn: Any, *args: Any) -> Any:
    """Run a transaction again when PostgreSQL picked it as a deadlock victim: both
    claim and record can meet a run being finished or cancelled by another worker."""
    for attempt in range(DEADLOCK_RETRIES):
        try:
            return fn(*args)
        except OperationalError as exc:
            db.session.rollback()
            if getattr(exc.orig, "sqlstate", None) not in RETRYABLE_SQLSTATES \
                    or attempt == DEADLOCK_RETRIES - 1:
                raise
            log.warning("step.transaction_retried", function=fn.__name__)
    return None


def _record_once(claimed: Claimed, outcome: Outcome | StepFailed) -> uuid.UUID | None:
    # The run first, then the step: the same order as cancelling and finishing a run,
    # which lock the run and then its steps.
    run_id = db.session.scalar(select(StepRun.run_id).where(StepRun.id == claimed.step_run_id))
    if run_id is None:
        db.session.rollback()
        return None
    run = db.session.scalars(select(Run).where(Run.id == run_id).with_for_update()
                             .execution_options(populate_existing=True)).one()
    row = db.session.scalars(
        select(StepRun).where(StepRun.id == claimed.step_run_id, StepRun.claim == claimed.claim,
                              StepRun.status == StepStatus.RUNNING)
        .with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if row is None:  # cancelled, or the lease ran out and another worker took over
        db.session.rollback()
        return None
    if run.status != RunStatus.RUNNING:
        row.status, row.finished_at = StepStatus.CANCELLED, utcnow()
        db.session.commit()
        return None
    outcome = flow.write_ledger(run, row, claimed.context.ledger, outcome)
    inline = flow.apply(run, row, outcome)
    db.session.commit()
    return inline


def due_now(row: StepRun, now: datetime) -> bool:
    return row.next_attempt_at is None or row.next_attempt_at <= now
