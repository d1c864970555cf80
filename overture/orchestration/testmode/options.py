"""A test run's options: checked when it starts, read (cached) by its steps.

    {"mocks": {"<step id>": {"output": ...} | {"error": {"code": ..., "message": ...}}},
     "action_mocks": {"<connector>.<action>": {"output": ...} | {"error": {...}}},
     "models": {"<step id>": [scripted turns]},
     "source_run_id": "<run id>",            # recorded outputs answer its actions
     "agent_versions": {"<agent name>": "<agent version id>"},
     "allow_live_models": false, "mock_reads": false}
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import OrderedDict
from typing import Any

from sqlalchemy import select

from overture.orchestration.llm.scripted_provider import script_problems
from overture.orchestration.models import Run, StepRun, StepStatus
from overture.platform.db import db
from overture.platform.errors import ValidationFailed

MAX_OPTIONS_BYTES = 1_000_000
MAX_TURNS = 200
SYNTHETIC_NOTE = "mocked: no response declared"


def checked(raw: dict[str, Any]) -> dict[str, Any]:
    """The options as stored on the run; ValidationFailed naming each bad field."""
    problems: list[dict[str, str]] = []
    options: dict[str, Any] = {}
    for name in ("mocks", "action_mocks"):
        mocks = raw.get(name) or {}
        if not isinstance(mocks, dict):
            problems.append({"field": name, "message": "an object of mocks by name"})
            continue
        for key, mock in mocks.items():
            problem = _mock_problem(mock)
            if problem:
                problems.append({"field": f"{name}.{key}", "message": problem})
        options[name] = dict(mocks)
    models = raw.get("models") or {}
    if not isinstance(models, dict):
        problems.append({"field": "models", "message": "an object: step id -> scripted turns"})
        models = {}
    for step_id, turns in models.items():
        if not isinstance(turns, list) or not turns or len(turns) > MAX_TURNS:
            problems.append({"field": f"models.{step_id}",
                             "message": f"a list of 1 to {MAX_TURNS} scripted turns"})
            continue
        problems += [{"field": f"models.{step_id}.{where}", "message": what}
                     for where, what in script_problems(turns)]
    options["models"] = dict(models)
    for flag in ("allow_live_models", "mock_reads"):
        options[flag] = bool(raw.get(flag, False))
    for name in ("source_run_id", "agent_versions", "comparison"):
        if raw.get(name):
            options[name] = raw[name]
    if len(json.dumps(options, default=str)) > MAX_OPTIONS_BYTES:
        problems.append({"field": "mocks", "message": f"the test options are larger than "
                                                      f"{MAX_OPTIONS_BYTES} bytes as JSON"})
    if problems:
        raise ValidationFailed(problems)
    return options


def _mock_problem(mock: Any) -> str | None:
    if not isinstance(mock, dict) or len(set(mock) & {"output", "error"}) != 1 \
            or set(mock) - {"output", "error"}:
        return 'either {"output": ...} or {"error": {"code": ..., "message": ...}}'
    error = mock.get("error")
    if "error" in mock and not (isinstance(error, dict) and isinstance(error.get("code"), str)
                                and error["code"]):
        return "an error needs a `code` (and may have a `message`)"
    return None


# --------------------------------------------------------------------------- reading


class _Cache:
    """Options by run id, for a process's steps: they never change once a run exists."""

    def __init__(self, size: int = 512) -> None:
        self.size, self.items = size, OrderedDict[str, dict[str, Any]]()
        self.lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.items.get(key)
            if found is not None:
                self.items.move_to_end(key)
            return found

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)


_cache = _Cache()


def of_run(run_id: str | uuid.UUID) -> dict[str, Any]:
    """The test options of a run of the scope tenant ({} for none)."""
    key = str(run_id)
    found = _cache.get(key)
    if found is None:
        stored = db.session.scalars(select(Run.test_options).where(
            Run.id == uuid.UUID(key))).one_or_none()
        found = dict(stored or {})
        _cache.put(key, found)
    return found


def recorded_output(source_run_id: str, step_id: str, path: str) -> tuple[bool, Any]:
    """(found, output) of the same step at the same path in the source run."""
    row = db.session.execute(select(StepRun.output).where(
        StepRun.run_id == uuid.UUID(str(source_run_id)), StepRun.step_id == step_id,
        StepRun.path == path,
        StepRun.status.in_([StepStatus.SUCCEEDED, StepStatus.SKIPPED]))).first()
    return (row is not None, row[0] if row is not None else None)
