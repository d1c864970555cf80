"""Start a test run, or replay a run's input in test mode against another workflow
version or agent version."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from overture.orchestration import runs
from overture.orchestration.agents.models import Agent, AgentVersion
from overture.orchestration.definition import Graph
from overture.orchestration.models import Run, Workflow, WorkflowVersion
from overture.orchestration.testmode import options
from overture.platform import audit
from overture.platform.db import db
from overture.platform.errors import ValidationFailed
from overture.platform.ids import parse_id


def start(workflow: Workflow, input: Any, raw_options: dict[str, Any],
          started_by: uuid.UUID | None, *, version: WorkflowVersion | None = None,
          trigger: str = "test", replay_of: Run | None = None) -> Run:
    """A test run of the workflow's current version (or `version`) with this input."""
    version = version or runs.current_version(workflow)
    runs.check_input_schema(version, input)
    graph = Graph.of(version.definition)
    problems = [{"field": f"{name}.{step_id}", "message": "no such step in this version"}
                for name in ("mocks", "models")
                for step_id in (raw_options.get(name) or {} if isinstance(
                    raw_options.get(name), dict) else {})
                if step_id not in graph.steps]
    try:
        opts = options.checked(raw_options)
    except ValidationFailed as invalid:
        raise ValidationFailed(problems + invalid.errors) from invalid
    source = opts.get("source_run_id")
    if source:
        problems += _source_problems(workflow, str(source))
        opts["source_run_id"] = str(source)
    if problems:
        raise ValidationFailed(problems)
    return runs.start_test_run(workflow, version, input, trigger, started_by, opts,
                               replay_of=replay_of.id if replay_of else None)


def _source_problems(workflow: Workflow, source_id: str) -> list[dict[str, str]]:
    ident = parse_id(source_id)
    found = None if ident is None else db.session.scalars(
        select(Run).where(Run.id == ident)).one_or_none()
    if found is None:
        return [{"field": "source_run_id", "message": "no such run"}]
    if found.workflow_id != workflow.id:
        return [{"field": "source_run_id", "message": "a run of another workflow"}]
    return []


def replay(run: Run, started_by: uuid.UUID | None, *, version: int | str | None = None,
           agent_versions: list[dict[str, Any]] | None = None,
           extra: dict[str, Any] | None = None) -> Run:
    """The run's input again, in test mode, on `version` of its workflow (a number or a
    version id; default: the version it ran) with `agent_versions` ({agent_id, version})
    replacing the pinned ones; world-changing actions answer with the run's recorded
    outputs."""
    workflow, ran = runs.version_of(run)
    target = ran if version is None else target_version(workflow, version)
    pins = dict((target.pins or {}).get("agents") or {})
    overrides = agent_overrides(agent_versions or [], pins)
    raw = {**(extra or {}), "source_run_id": str(run.id)}
    if overrides:
        raw["agent_versions"] = overrides
    replayed = start(workflow, run.input, raw, started_by, version=target, trigger="replay",
                     replay_of=run)
    audit.record("run.test_replayed", target_type="run", target_id=replayed.id,
                 details={"replay_of": str(run.id), "version": target.number,
                          "agent_versions": overrides})
    return replayed


def target_version(workflow: Workflow, version: int | str) -> WorkflowVersion:
    """A version of this workflow, by number or id; 422 for another workflow's."""
    if isinstance(version, int) or (isinstance(version, str) and version.isdigit()):
        found = db.session.scalars(select(WorkflowVersion).where(
            WorkflowVersion.workflow_id == workflow.id,
            WorkflowVersion.number == int(version))).one_or_none()
    else:
        ident = parse_id(str(version))
        found = None if ident is None else db.session.scalars(
            select(WorkflowVersion).where(WorkflowVersion.id == ident)).one_or_none()
        if found is not None and found.workflow_id != workflow.id:
            raise ValidationFailed.field("version", "a version of another workflow")
    if found is None:
        raise ValidationFailed.field("version", f"workflow {workflow.name!r} has no such "
                                                "version")
    return found


def agent_overrides(wanted: list[dict[str, Any]], pins: dict[str, str]) -> dict[str, str]:
    """Agent name -> version id, for versions of agents the workflow version uses."""
    found: dict[str, str] = {}
    for index, item in enumerate(wanted):
        where = f"agent_versions.{index}"
        agent = _agent(item.get("agent_id"))
        if agent is None:
            raise ValidationFailed.field(f"{where}.agent_id", "no such agent")
        if agent.name not in pins:
            raise ValidationFailed.field(f"{where}.agent_id", f"the workflow version does not "
                                                              f"use agent {agent.name!r}")
        number = item.get("version")
        chosen = db.session.scalars(select(AgentVersion).where(
            AgentVersion.agent_id == agent.id, AgentVersion.number == number)).one_or_none() \
            if isinstance(number, int) else None
        if chosen is None:
            raise ValidationFailed.field(f"{where}.version", f"agent {agent.name!r} has no "
                                                             f"version {number!r}")
        found[agent.name] = str(chosen.id)
    return found


def _agent(raw: Any) -> Agent | None:
    ident = parse_id(str(raw)) if raw else None
    return None if ident is None else db.session.scalars(
        select(Agent).where(Agent.id == ident)).one_or_none()

