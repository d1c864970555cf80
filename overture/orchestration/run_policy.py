"""The run's policies a step is held to before it starts: the run still running, its
deadline (`max_duration_seconds`) not passed, its `max_steps` not reached."""

from __future__ import annotations

from datetime import datetime

from overture.orchestration import flow
from overture.orchestration.definition import Graph
from overture.orchestration.models import Run, RunStatus, StepRun
from overture.orchestration.step_rows import cancel_row

DEFAULT_MAX_STEPS = 10_000
DEFAULT_MAX_DURATION = 7 * 86400


def may_start(status: str, deadline_at: datetime | None, steps_executed: int, graph: Graph,
              now: datetime) -> bool:
    """Whether a step of a run in this state may start (else `refuse_to_start` says why)."""
    return (status == RunStatus.RUNNING and (deadline_at is None or deadline_at > now)
            and steps_executed < graph.policy("max_steps", DEFAULT_MAX_STEPS))


def refuse_to_start(run: Run, graph: Graph, row: StepRun, now: datetime) -> str | None:
    """Cancel the claimed step when its run may not go on; says why, or None."""
    if run.status != RunStatus.RUNNING:
        cancel_row(row)
        return "run finished"
    if run.deadline_at and run.deadline_at <= now:
        flow.finish_run(run, RunStatus.TIMED_OUT, error={"code": "run_timeout", "message":
                        "the run passed its maximum duration"})
        return "run timed out"
    if run.steps_executed >= graph.policy("max_steps", DEFAULT_MAX_STEPS):
        flow.finish_run(run, RunStatus.FAILED, error={"code": "max_steps", "message":
                        "the run reached its maximum number of steps"})
        return "too many steps"
    return None
