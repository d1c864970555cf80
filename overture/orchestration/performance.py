"""How an agent and a workflow perform over a period, from what the engine recorded.

An agent's calls are the finished step runs it was invoked in: every invocation
writes an `agent_invocations` usage event naming the agent (by id, so a rename keeps
its history), the run and the step, in the step's own transaction, whatever the
outcome. What the agent answered is in the step's output (`status`, `confidence`,
`low_confidence`, and for `classify` who decided). Its tokens and cost are its usage
events (model calls in steps and in chats).

Percentiles are PostgreSQL's `percentile_cont`; elsewhere (SQLite, the embedded
mode) the same interpolation in Python over at most MAX_SAMPLES latencies.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, case, cast, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB

from overture.billing.usage import UsageEvent
from overture.orchestration.agents.runtime import INVOCATIONS
from overture.orchestration.failures import FAILED_RUN
from overture.orchestration.llm.metering import COST, INPUT_TOKENS, OUTPUT_TOKENS
from overture.orchestration.models import Run, RunMode, RunStatus, StepRun, StepStatus
from overture.platform.db import db

MAX_SAMPLES = 100_000
TOP_REASONS = 5
CALL_DONE = (StepStatus.SUCCEEDED, StepStatus.FAILED)


@dataclass(frozen=True)
class AgentPerformance:
    agent_id: uuid.UUID
    since: datetime
    until: datetime
    calls: int
    succeeded: int
    failed: int
    success_rate: float | None
    failure_rate: float | None
    asked_human: int
    below_threshold: int
    mean_confidence: float | None
    latency_p50: float | None  # seconds
    latency_p95: float | None
    tokens: int
    cost: Decimal


@dataclass(frozen=True)
class Reason:
    reason: str
    step_id: str | None
    count: int


@dataclass(frozen=True)
class WorkflowPerformance:
    workflow_id: uuid.UUID
    since: datetime
    until: datetime
    runs: int
    succeeded: int
    failed: int
    in_flight: int
    error_rate: float | None  # failed (or timed out) of the runs that ended
    top_reasons: list[Reason] = field(default_factory=list)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# --------------------------------------------------------------------------- agents


def agent_performance(agent_id: uuid.UUID, since: datetime, until: datetime) -> AgentPerformance:
    postgres = _postgres()
    calls = _calls(agent_id, since, until, postgres)
    aggregates = _call_aggregates(calls)
    if postgres:  # the percentiles in the same statement
        seconds = func.extract("epoch", calls.c.finished_at - calls.c.started_at)
        aggregates += [func.percentile_cont(q).within_group(seconds) for q in (0.5, 0.95)]
    row = db.session.execute(select(*aggregates)).one()
    total, succeeded, failed, human, low = (int(v) for v in row[:5])
    confidence = row[5]
    p50, p95 = (_seconds(row[6]), _seconds(row[7])) if postgres else _python_percentiles(calls)
    tokens, cost = _usage(agent_id, since, until)
    return AgentPerformance(
        agent_id=agent_id, since=since, until=until, calls=total, succeeded=succeeded,
        failed=failed, success_rate=_rate(succeeded, total), failure_rate=_rate(failed, total),
        asked_human=human, below_threshold=low,
        mean_confidence=None if confidence is None else round(float(confidence), 4),
        latency_p50=p50, latency_p95=p95, tokens=tokens, cost=cost)


def _postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _calls(agent_id: uuid.UUID, since: datetime, until: datetime, postgres: bool) -> Any:
    """The finished step runs the agent was invoked in. On PostgreSQL their `json`
    output and error are read once each as `jsonb`, in a materialized CTE: otherwise
    every key looked up would parse the whole text again."""
    invoked = (select(UsageEvent.run_id, UsageEvent.step_id).distinct()
               .where(UsageEvent.metric == INVOCATIONS, UsageEvent.agent_id == agent_id,
                      UsageEvent.run_id.is_not(None), UsageEvent.created_at >= since)
               .subquery())
    output = cast(StepRun.output, JSONB) if postgres else StepRun.output
    error = cast(StepRun.error, JSONB) if postgres else StepRun.error
    stmt = (select(StepRun.status, StepRun.step_type, StepRun.started_at, StepRun.finished_at,
                   output.label("output"), error.label("error"))
            .join(invoked, (invoked.c.run_id == StepRun.run_id)
                  & (invoked.c.step_id == StepRun.step_id))
            .where(StepRun.status.in_(CALL_DONE), StepRun.created_at >= since,
                   StepRun.created_at < until))
    calls = stmt.cte("agent_calls")
    return calls.prefix_with("MATERIALIZED") if postgres else calls


def _call_aggregates(calls: Any) -> list[Any]:
    output, error = calls.c.output, calls.c.error
    decided_by = output["decided_by"].as_string()
    asked_human = or_(output["status"].as_string() == "needs_human", decided_by == "human")
    # Below its threshold: an agent step routed to `low_confidence`, a classify step
    # that fell back to its rules or a human, or failed undecided.
    below = or_(output["low_confidence"].as_boolean().is_(True),
                (calls.c.step_type == "classify") & decided_by.in_(["rule", "human"]),
                error["code"].as_string() == "classify_undecided")

    def count(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    return [func.count(), count(calls.c.status == StepStatus.SUCCEEDED),
            count(calls.c.status == StepStatus.FAILED), count(asked_human), count(below),
            func.avg(cast(output["confidence"].as_float(), Float))]


def _usage(agent_id: uuid.UUID, since: datetime, until: datetime) -> tuple[int, Decimal]:
    rows = db.session.execute(
        select(UsageEvent.metric, func.sum(UsageEvent.quantity))
        .where(UsageEvent.agent_id == agent_id, UsageEvent.created_at >= since,
               UsageEvent.created_at < until,
               UsageEvent.metric.in_([INPUT_TOKENS, OUTPUT_TOKENS, COST]))
        .group_by(UsageEvent.metric)).all()
    totals = {metric: Decimal(str(total or 0)) for metric, total in rows}
    tokens = totals.get(INPUT_TOKENS, Decimal(0)) + totals.get(OUTPUT_TOKENS, Decimal(0))
    return int(tokens), totals.get(COST, Decimal(0)).quantize(Decimal("0.000001"))


# --------------------------------------------------------------------------- latency


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def _python_percentiles(calls: Any) -> tuple[float | None, float | None]:
    """p50 and p95 of the calls' latencies (seconds), where the database has no
    percentile_cont: over at most MAX_SAMPLES of them."""
    spans = db.session.execute(select(calls.c.started_at, calls.c.finished_at).where(
        calls.c.started_at.is_not(None), calls.c.finished_at.is_not(None))
        .limit(MAX_SAMPLES)).all()
    ordered = sorted((done - began).total_seconds() for began, done in spans)
    return percentile(ordered, 0.5), percentile(ordered, 0.95)


def percentile(ordered: list[float], fraction: float) -> float | None:
    """`percentile_cont`: linear interpolation between the closest ranks."""
    if not ordered:
        return None
    at = fraction * (len(ordered) - 1)
    low, high = math.floor(at), math.ceil(at)
    value = ordered[low] + (ordered[high] - ordered[low]) * (at - low)
    return round(value, 3)


# --------------------------------------------------------------------------- workflows


def workflow_performance(workflow_id: uuid.UUID, since: datetime,
                         until: datetime) -> WorkflowPerformance:
    """Runs of the workflow started in the period: outcomes, error rate, and its most
    frequent failure reasons (the error's code, and the step it failed in)."""
    period = (Run.workflow_id == workflow_id, Run.created_at >= since, Run.created_at < until,
              Run.mode == RunMode.LIVE)  # test runs are no measure of production
    by_status = dict(db.session.execute(select(Run.status, func.count()).where(*period)
                                        .group_by(Run.status)).all())
    failed = sum(by_status.get(s, 0) for s in FAILED_RUN)
    succeeded = by_status.get(RunStatus.SUCCEEDED, 0)
    in_flight = by_status.get(RunStatus.QUEUED, 0) + by_status.get(RunStatus.RUNNING, 0)
    ended = sum(by_status.values()) - in_flight
    code = func.coalesce(Run.error["code"].as_string(), "error")
    step = Run.error["step"].as_string()
    reasons = db.session.execute(
        select(code, step, func.count()).where(*period, Run.status.in_(FAILED_RUN))
        .group_by(code, step).order_by(func.count().desc(), code).limit(TOP_REASONS)).all()
    return WorkflowPerformance(
        workflow_id=workflow_id, since=since, until=until, runs=sum(by_status.values()),
        succeeded=succeeded, failed=failed, in_flight=in_flight,
        error_rate=_rate(failed, ended),
        top_reasons=[Reason(reason=r, step_id=s, count=n) for r, s, n in reasons])
