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
`hotpath.step_end.hand_over` in one statement; everything else by `flow` on ORM objects.

Our database failing under a transaction (a restart, a deadlock: `database_outage`) is never the
step's fault: each transaction here is one that is harmless to repeat, and is done again
until the database answers (within the lease's grace). An executor that meets it gets
its attempt back (`Interrupted`), as does a step whose worker died: only a step's own
errors count against its retry policy. A step interrupted too often fails.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from overture.billing import step_caps
from overture.billing.budgets import Limit
from overture.orchestration import claims, recording
from overture.orchestration.claims import Claimed, lease_for, lease_grace, timeout_of
from overture.orchestration.outcomes import (
    Interrupted,
    Outcome,
    Recordable,
    StepFailed,
    caught_refusal,
    refused_to_start,
)
from overture.orchestration.recording import due_now, record
from overture.orchestration.steps import executor_for
from overture.orchestration.testmode import mocks
from overture.orchestration.watchdog import StepTimeout, time_limit
from overture.platform import database_outage, metrics, tracing
from overture.platform.db import db, scoped_to
from overture.platform.errors import PaymentRequired
from overture.platform.logging import get_logger

__all__ = ["Claimed", "claim", "due_now", "execute", "lease_for", "lease_grace", "process",
           "record", "run_step", "timeout_of", "with_time_limit"]

log = get_logger(__name__)

MAX_INLINE_STEPS = 50  # one message runs at most this many steps before yielding
MAX_INTERRUPTIONS = 5  # a step whose attempts keep getting lost (it kills its worker) fails




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


def claim(step_run_id: uuid.UUID, tenant_id: uuid.UUID) -> Claimed | None:
    """Claim the row a message names, or, when the message asks a waiting parallel step
    to move on, complete its join or take one of its queued branches."""
    found = claims.claim(step_run_id, tenant_id)
    if isinstance(found, claims.Waiting):
        return recording.fan_out_asked(found.parent_id, found.run_id, found.step_id,
                                       found.path, tenant_id)
    return found


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


