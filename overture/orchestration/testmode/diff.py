"""A replay compared with its source run, step by step.

Each step (by iteration path and id) gets: both statuses, both outputs, `change`
(`unchanged`, `changed`, `added`: only the replay ran it, `removed`: only the source
did), a structural JSON diff (`changes`: the paths added, removed or changed, with
their values) and, for each text that changed, a unified line diff (`text_diffs`).
"""

from __future__ import annotations

import difflib
from typing import Any

from overture.orchestration import runs
from overture.orchestration.models import Run, StepRun
from overture.platform.errors import ValidationFailed

MAX_CHANGES = 200  # paths listed per step; a larger diff says how many were left out
MAX_TEXT_LINES = 400


def structural(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """The paths where `after` differs from `before` (`$` is the whole value)."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[dict[str, Any]] = []
        for key in list(before) + [k for k in after if k not in before]:
            where = f"{path}.{key}" if path else str(key)
            if key not in after:
                found.append({"op": "removed", "path": where, "before": before[key]})
            elif key not in before:
                found.append({"op": "added", "path": where, "after": after[key]})
            else:
                found += structural(before[key], after[key], where)
        return found
    if isinstance(before, list) and isinstance(after, list):
        found = []
        for index in range(max(len(before), len(after))):
            where = f"{path}[{index}]"
            if index >= len(after):
                found.append({"op": "removed", "path": where, "before": before[index]})
            elif index >= len(before):
                found.append({"op": "added", "path": where, "after": after[index]})
            else:
                found += structural(before[index], after[index], where)
        return found
    if before == after and type(before) is type(after):
        return []
    return [{"op": "changed", "path": path or "$", "before": before, "after": after}]


def unified(before: str, after: str, label: str) -> str:
    lines = list(difflib.unified_diff(before.splitlines(), after.splitlines(),
                                      fromfile=f"source/{label}", tofile=f"replay/{label}",
                                      lineterm=""))
    if len(lines) > MAX_TEXT_LINES:
        lines = [*lines[:MAX_TEXT_LINES], f"... {len(lines) - MAX_TEXT_LINES} more lines"]
    return "\n".join(lines)


def step_diff(step_id: str, path: str, old: StepRun | None, new: StepRun | None
              ) -> dict[str, Any]:
    before = old.output if old is not None else None
    after = new.output if new is not None else None
    changes = structural(before, after) if old is not None and new is not None else []
    texts = [{"path": c["path"], "diff": unified(c["before"], c["after"], c["path"])}
             for c in changes if c["op"] == "changed"
             and isinstance(c["before"], str) and isinstance(c["after"], str)]
    status_before = old.status if old is not None else None
    status_after = new.status if new is not None else None
    if old is None:
        change = "added"
    elif new is None:
        change = "removed"
    else:
        change = "changed" if changes or status_before != status_after \
            or (old.error or None) != (new.error or None) else "unchanged"
    return {"step_id": step_id, "path": path,
            "type": (new or old).step_type if (new or old) is not None else None,
            "change": change, "status_before": status_before, "status_after": status_after,
            "output_before": before, "output_after": after,
            "error_before": old.error if old is not None else None,
            "error_after": new.error if new is not None else None,
            "changes": changes[:MAX_CHANGES], "changes_left_out": max(0, len(changes)
                                                                       - MAX_CHANGES),
            "text_diffs": texts,
            "tokens_before": old.tokens if old is not None else None,
            "tokens_after": new.tokens if new is not None else None}


def compare(source: Run, replay: Run) -> list[dict[str, Any]]:
    """Per step (the replay's order, then steps only the source ran)."""
    old = {(r.path, r.step_id): r for r in runs.timeline(source)}
    new = {(r.path, r.step_id): r for r in runs.timeline(replay)}
    order = list(new) + [k for k in old if k not in new]
    return [step_diff(step_id, path, old.get((path, step_id)), new.get((path, step_id)))
            for path, step_id in order]


def of_replay(replay: Run) -> dict[str, Any]:
    """The diff body of a replay (`GET /runs/<id>/diff`)."""
    if replay.replay_of_id is None:
        raise ValidationFailed.field("run_id", "this run is not a replay: it has no source "
                                               "run to compare with")
    source = runs.get_run(str(replay.replay_of_id))
    steps = compare(source, replay)
    counts = {c: sum(1 for s in steps if s["change"] == c)
              for c in ("unchanged", "changed", "added", "removed")}
    return {"run_id": replay.id, "source_run_id": source.id, "mode": replay.mode,
            "status_before": source.status, "status_after": replay.status,
            "finished": replay.finished, "output_before": source.output,
            "output_after": replay.output,
            "output_changed": bool(structural(source.output, replay.output)),
            "summary": counts, "steps": steps}
