"""A parallel step's join: complete the waiting step once enough of its branches
have ended, with their outputs in branch order, counting the steps they ran and
cancelling what is left of them. The caller holds the run's lock and commits."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from overture.orchestration.definition import Graph
from overture.orchestration.flow import succeed
from overture.orchestration.models import FINISHED_STEP, Run, RunStatus, StepRun, StepStatus
from overture.orchestration.step_rows import cancel_approvals, cancel_row
from overture.platform.db import db


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


def _cancel_children(run: Run, parent: StepRun) -> None:
    prefix = f"{parent.path}{parent.step_id}#"
    for child in db.session.scalars(select(StepRun).where(
            StepRun.run_id == run.id, StepRun.path.startswith(prefix, autoescape=True),
            StepRun.status.not_in(FINISHED_STEP))):
        cancel_row(child)
        cancel_approvals(child.id)
