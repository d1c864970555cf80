"""Request and response shapes of the operator's and the agency's numbers: the
workspace overview, failures and dead letters, retries, and performance."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import UUID, DateTime, Dict, Float, Integer, List, Nested, String
from apiflask.validators import Length

from overture.orchestration.failures import MAX_RETRY
from overture.web.api.schemas import PageQuery, Strict, TenantOut

PERIOD = {"description": "ISO 8601; a time without a zone is UTC"}


class PeriodQuery(Strict):
    since = DateTime(load_default=None, metadata={**PERIOD, "description":
                     "inclusive, ISO 8601 (a time without a zone is UTC); default: 7 days "
                     "before `until`"})
    until = DateTime(load_default=None, metadata={**PERIOD, "description":
                     "exclusive, ISO 8601 (a time without a zone is UTC); default: now"})


class OverviewQuery(PageQuery):
    pass


class WorkspaceNumbers(Schema):
    tenant = Nested(TenantOut)
    runs_succeeded_7d = Integer()
    runs_failed_7d = Integer(metadata={"description": "failed or timed out"})
    runs_waiting = Integer(metadata={"description": "queued, running or waiting (approval, "
                                                    "timer, child run)"})
    open_approvals = Integer()
    cost_month = String(metadata={"description": "model cost this calendar month (UTC), "
                                                "a decimal string"})
    tokens_month = Integer()
    last_failure_at = DateTime(allow_none=True)
    last_failure_reason = String(allow_none=True, metadata={
        "description": "the error code and the step, e.g. `http_5xx in charge`"})


class OverviewOut(Schema):
    items = List(Nested(WorkspaceNumbers))
    next_cursor = String(allow_none=True)


class FailuresQuery(Strict):
    workflow_id = UUID(load_default=None)
    since = DateTime(load_default=None, metadata={"description": "runs started since (ISO "
                                                                "8601); default: 7 days ago"})


class FailureGroupOut(Schema):
    workflow_id = UUID()
    workflow_name = String()
    step_id = String(allow_none=True)
    reason = String(metadata={"description": "the error's code"})
    count = Integer()
    retried = Integer(metadata={"description": "of these runs, how many were retried"})
    first_seen = DateTime(allow_none=True)
    last_seen = DateTime(allow_none=True)
    sample_run_ids = List(UUID(), metadata={"description": "the latest few"})


class DeadLetterOut(Schema):
    step_run_id = UUID()
    run_id = UUID()
    workflow_id = UUID()
    step_id = String()
    kind = String(metadata={"description": "`failed`: the platform gave up on the step "
                                           "(interrupted too often, or crashed); `stalled`: "
                                           "not processed for minutes"})
    status = String()
    attempts = Integer()
    interruptions = Integer()
    last_error = Dict(allow_none=True)
    since = DateTime(allow_none=True)


class FailuresOut(Schema):
    since = DateTime()
    groups = List(Nested(FailureGroupOut))
    dead_letters = List(Nested(DeadLetterOut))


class RetryIn(Strict):
    run_ids = List(String(validate=Length(1, 64)), required=True,
                   validate=Length(1, MAX_RETRY))


class RetryResultOut(Schema):
    run_id = String()
    outcome = String(metadata={"description": "retried | already_retried | not_failed | "
                                              "not_found | refused"})
    new_run_id = UUID(allow_none=True)
    from_step = String(allow_none=True)
    detail = String(allow_none=True)


class RetryOut(Schema):
    results = List(Nested(RetryResultOut))


class AgentPerformanceOut(Schema):
    agent_id = UUID()
    since = DateTime()
    until = DateTime()
    calls = Integer(metadata={"description": "finished step runs the agent was invoked in"})
    succeeded = Integer()
    failed = Integer()
    success_rate = Float(allow_none=True)
    failure_rate = Float(allow_none=True)
    asked_human = Integer()
    below_threshold = Integer()
    mean_confidence = Float(allow_none=True)
    latency_p50 = Float(allow_none=True, metadata={"description": "seconds"})
    latency_p95 = Float(allow_none=True, metadata={"description": "seconds"})
    tokens = Integer()
    cost = String(metadata={"description": "a decimal string"})


class ReasonOut(Schema):
    reason = String()
    step_id = String(allow_none=True)
    count = Integer()


class WorkflowPerformanceOut(Schema):
    workflow_id = UUID()
    since = DateTime()
    until = DateTime()
    runs = Integer()
    succeeded = Integer()
    failed = Integer()
    in_flight = Integer()
    error_rate = Float(allow_none=True, metadata={"description": "failed of the runs that "
                                                                "ended"})
    top_reasons = List(Nested(ReasonOut))
