"""A/B: two versions of one agent over a set of recorded runs, each run replayed in
test mode under both, and a table of how they did (statuses, whether the outputs are
equal, tokens, estimated cost, latency).

A comparison is the replays it started: each carries `comparison` in its test options
({"id", "arm": "a" | "b", "agent_id", "version"}), so it needs no table of its own.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from overture.orchestration.agents.models import Agent, AgentVersion
from overture.orchestration.models import FINISHED_RUN, Run, RunMode, WorkflowVersion
from overture.orchestration.testmode import diff, start
from overture.platform import audit
from overture.platform.db import db
from overture.platform.errors import NotFound, ValidationFailed
from overture.platform.ids import new_id, parse_id

MAX_RUNS = 20
ARMS = ("a", "b")


def _version(agent: Agent, number: Any, field: str) -> AgentVersion:
    found = db.session.scalars(select(AgentVersion).where(
        AgentVersion.agent_id == agent.id, AgentVersion.number == number)).one_or_none() \
        if isinstance(number, int) else None
    if found is None:
        raise ValidationFailed.field(field, f"agent {agent.name!r} has no version {number!r}")
    return found


def _uses(run: Run, agent: Agent) -> bool:
    version = db.session.get(WorkflowVersion, run.version_id)
    return version is not None and agent.name in ((version.pins or {}).get("agents") or {})


def source_runs(agent: Agent, run_ids: list[str] | None, last: int | None) -> list[Run]:
    """The recorded runs to replay: those named (each must use the agent), or the last
    `last` finished live runs of workflows that use it."""
    if run_ids:
        if len(run_ids) > MAX_RUNS:
            raise ValidationFailed.field("run_ids", f"at most {MAX_RUNS} runs")
        found = []
        for index, raw in enumerate(run_ids):
            ident = parse_id(str(raw))
            run = None if ident is None else db.session.scalars(
                select(Run).where(Run.id == ident)).one_or_none()
            if run is None:
                raise ValidationFailed.field(f"run_ids.{index}", "no such run")
            if not _uses(run, agent):
                raise ValidationFailed.field(f"run_ids.{index}", f"this run's workflow version "
                                                                 f"does not use {agent.name!r}")
            found.append(run)
        return found
    wanted = min(int(last or 5), MAX_RUNS)
    found = []
    for run in db.session.scalars(select(Run).where(
            Run.mode == RunMode.LIVE, Run.status.in_(FINISHED_RUN),
            Run.parent_run_id.is_(None)).order_by(Run.id.desc()).limit(500)):
        if _uses(run, agent):
            found.append(run)
            if len(found) == wanted:
                break
    if not found:
        raise ValidationFailed.field("last", f"no finished run uses agent {agent.name!r} yet")
    return found


def start_comparison(agent: Agent, version_a: Any, version_b: Any, run_ids: list[str] | None,
                     last: int | None, started_by: uuid.UUID | None) -> dict[str, Any]:
    versions = {"a": _version(agent, version_a, "version_a"),
                "b": _version(agent, version_b, "version_b")}
    sources = source_runs(agent, run_ids, last)
    comparison_id = str(new_id())
    for source in sources:
        for arm in ARMS:
            tag = {"id": comparison_id, "arm": arm, "agent_id": str(agent.id),
                   "version": versions[arm].number}
            start.replay(source, started_by,
                         agent_versions=[{"agent_id": str(agent.id),
                                          "version": versions[arm].number}],
                         extra={"comparison": tag})
    audit.record("agent.compared", target_type="agent", target_id=agent.id,
                 details={"comparison_id": comparison_id, "version_a": versions["a"].number,
                          "version_b": versions["b"].number,
                          "runs": [str(r.id) for r in sources]})
    return summary(agent, comparison_id)


def _replays(comparison_id: str) -> list[Run]:
    return list(db.session.scalars(select(Run).where(
        Run.mode == RunMode.TEST,
        Run.test_options["comparison"]["id"].as_string() == comparison_id).order_by(Run.id)))


def _arm(run: Run | None) -> dict[str, Any] | None:
    if run is None:
        return None
    latency = (run.finished_at - run.started_at).total_seconds() \
        if run.finished_at and run.started_at else None
    return {"run_id": run.id, "status": run.status, "output": run.output, "error": run.error,
            "tokens": run.tokens, "cost": str(run.cost), "latency_seconds": latency}


def summary(agent: Agent, comparison_id: str) -> dict[str, Any]:
    """The comparison's table; 404 when it is not one of this agent's."""
    replays = [r for r in _replays(comparison_id)
               if (r.test_options or {}).get("comparison", {}).get("agent_id") == str(agent.id)]
    if not replays:
        raise NotFound("no such comparison of this agent")
    pairs: dict[uuid.UUID, dict[str, Run]] = {}
    versions: dict[str, int] = {}
    for run in replays:
        tag = (run.test_options or {})["comparison"]
        assert run.replay_of_id is not None
        pairs.setdefault(run.replay_of_id, {})[tag["arm"]] = run
        versions[tag["arm"]] = tag["version"]
    rows = []
    for source_id, arms in pairs.items():
        a, b = arms.get("a"), arms.get("b")
        done = a is not None and b is not None and a.finished and b.finished
        rows.append({"source_run_id": source_id, "a": _arm(a), "b": _arm(b), "finished": done,
                     "outputs_equal": (not diff.structural(a.output, b.output)
                                       and a.status == b.status) if done and a and b else None,
                     "steps_changed": _steps_changed(a, b) if done and a and b else None})
    finished = all(r["finished"] for r in rows)
    return {"id": comparison_id, "agent_id": agent.id, "agent": agent.name,
            "version_a": versions.get("a"), "version_b": versions.get("b"),
            "finished": finished, "runs": rows, "totals": _totals(rows)}


def _steps_changed(a: Run, b: Run) -> int:
    return sum(1 for s in diff.compare(a, b) if s["change"] != "unchanged")


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    totals: dict[str, Any] = {"runs": len(rows),
                              "outputs_equal": sum(1 for r in rows if r["outputs_equal"]),
                              "outputs_differ": sum(1 for r in rows
                                                    if r["outputs_equal"] is False)}
    for arm in ARMS:
        arms = [r[arm] for r in rows if r[arm] is not None]
        latencies = [x["latency_seconds"] for x in arms if x["latency_seconds"] is not None]
        totals[arm] = {
            "succeeded": sum(1 for x in arms if x["status"] == "succeeded"),
            "failed": sum(1 for x in arms if x["status"] in ("failed", "timed_out")),
            "tokens": sum(x["tokens"] for x in arms),
            "cost": str(sum((Decimal(x["cost"]) for x in arms), Decimal(0))),
            "mean_latency_seconds": sum(latencies) / len(latencies) if latencies else None}
    return totals


__all__ = ["start_comparison", "summary"]
