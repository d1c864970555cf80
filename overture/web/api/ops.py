"""The numbers behind the console's agency home and operator pages: each client
workspace's overview (agencies), failures and dead letters, bulk retry, and the
performance of agents and workflows."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from overture.orchestration import failures, overview, performance, workflows
from overture.orchestration.agents import service as agents
from overture.platform.db import db, utcnow
from overture.platform.errors import ValidationFailed
from overture.tenants import access as tenant_access
from overture.tenants import lifecycle
from overture.web.api import api
from overture.web.api.ops_schemas import (
    AgentPerformanceOut,
    FailuresOut,
    FailuresQuery,
    OverviewOut,
    OverviewQuery,
    PeriodQuery,
    RetryIn,
    RetryOut,
    WorkflowPerformanceOut,
)
from overture.web.auth import current_access, require

DEFAULT_PERIOD = timedelta(days=7)
READ_RUNS = "run.read"


def _utc(value: datetime | None) -> datetime | None:
    """A time without a zone is taken as UTC (the columns hold UTC only)."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _period(query: dict[str, Any]) -> tuple[datetime, datetime]:
    until = _utc(query["until"]) or utcnow()
    since = _utc(query["since"]) or until - DEFAULT_PERIOD
    if since >= until:
        raise ValidationFailed.field("until", "must be after since")
    return since, until


def _view(value: Any) -> dict[str, Any]:
    """A result's fields, one level deep: the schema serialises what is inside (a
    nested dataclass by its attributes). `dataclasses.asdict` deep-copied every value,
    which was a third of the time of a page of 200 failure groups."""
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


# --------------------------------------------------------------------------- agency overview


@api.get("/overview")
@require("workspace.manage")
@api.input(OverviewQuery, location="query", arg_name="query")
@api.output(OverviewOut)
@api.doc(tags=["Tenants"], summary="An agency's client workspaces, each with its runs in "
         "the last 7 days, waiting runs, open approvals, model usage this month and last "
         "failure")
def get_overview(query: dict[str, Any]) -> dict[str, Any]:
    access = current_access()
    access.require(READ_RUNS)
    if not access.tenant.is_agency:
        raise ValidationFailed.field("X-Overture-Tenant", "name an agency: the overview "
                                                          "lists its client workspaces")
    page = lifecycle.managed_tenants(access, query["cursor"], query["limit"])
    shown = tenant_access.permitted(access, page.items, READ_RUNS)
    numbers = overview.workspace_overview([t.id for t in shown], utcnow())
    items = [{"tenant": t, **_view(numbers[t.id]), "cost_month": str(numbers[t.id].cost_month)}
             for t in shown]
    return page.body(items)


# --------------------------------------------------------------------------- failures


@api.get("/failures")
@require(READ_RUNS)
@api.input(FailuresQuery, location="query", arg_name="query")
@api.output(FailuresOut)
@api.doc(tags=["Runs"], summary="Failed runs grouped by workflow, step and reason, and the "
         "dead letters: steps the platform could not process")
def get_failures(query: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    since = _utc(query["since"]) or now - DEFAULT_PERIOD
    workflow_id = query["workflow_id"]
    if workflow_id is not None:
        workflow_id = workflows.get_workflow(workflow_id).id  # unknown: 404
    return {"since": since,
            "groups": [_view(g) for g in failures.failure_groups(since, workflow_id)],
            "dead_letters": [_view(d) for d in failures.dead_letters(now, since, workflow_id)]}


@api.post("/failures/retry")
@require("run.cancel")
@api.input(RetryIn, arg_name="body")
@api.output(RetryOut)
@api.doc(tags=["Runs"], summary="Retry failed runs from the step that failed (a replay "
         "each); says per run what happened")
def retry_failures(body: dict[str, Any]) -> dict[str, Any]:
    results = failures.retry_runs(body["run_ids"], current_access().principal.user.id)
    db.session.commit()
    return {"results": [_view(r) for r in results]}


# --------------------------------------------------------------------------- performance


@api.get("/agents/<agent_id>/performance")
@require(READ_RUNS)
@api.input(PeriodQuery, location="query", arg_name="query")
@api.output(AgentPerformanceOut)
@api.doc(tags=["Agents"], summary="An agent's calls, outcomes, confidence, latency, tokens "
         "and cost over a period")
def agent_performance(agent_id: str, query: dict[str, Any]) -> dict[str, Any]:
    agent = agents.get_agent(agent_id)
    since, until = _period(query)
    numbers = performance.agent_performance(agent.id, since, until)
    return {**_view(numbers), "cost": str(numbers.cost)}


@api.get("/workflows/<workflow_id>/performance")
@require(READ_RUNS)
@api.input(PeriodQuery, location="query", arg_name="query")
@api.output(WorkflowPerformanceOut)
@api.doc(tags=["Workflows"], summary="A workflow's runs, error rate and most frequent "
         "failure reasons over a period")
def workflow_performance(workflow_id: str, query: dict[str, Any]) -> dict[str, Any]:
    workflow = workflows.get_workflow(workflow_id)
    since, until = _period(query)
    return _view(performance.workflow_performance(workflow.id, since, until))
