"""What a step's expressions see (its scope): the run input, the outputs of the steps
on its iteration path and the blocks around it, run metadata and the loop item; and
the iteration paths themselves ("a#1/b#2/": step `b`'s iteration 2 inside `a`'s 1)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from overture.orchestration.definition import Graph
from overture.orchestration.graphs import graph_of
from overture.orchestration.hotpath import reading
from overture.orchestration.models import Run, StepRun
from overture.platform.db import db


def scope_for(run: Run, row: StepRun) -> dict[str, Any]:
    db.session.flush()  # the scope is read with Core, which does not flush
    return build_scope(reading.SessionReader(run.tenant_id), graph_of(run), run.id,
                       run.workflow_id, run.input, run.trigger, run.started_at, row.path,
                       row.attempt, row.input)


def build_scope(reader: reading.Reader, graph: Graph, run_id: uuid.UUID,
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


def _loop_item(reader: reading.Reader, graph: Graph, run_id: uuid.UUID,
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
