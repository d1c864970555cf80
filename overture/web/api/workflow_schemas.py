"""Request and response shapes of workflows, runs and approvals."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import UUID, Boolean, DateTime, Dict, Integer, List, Nested, Raw, String
from apiflask.validators import Length, OneOf, Range

from overture.orchestration.models import RunMode, RunStatus
from overture.web.api.schemas import INT32_MAX, Multiline, PageQuery, Strict


class WorkflowCreate(Strict):
    name = String(required=True, validate=Length(1, 120))
    description = Multiline(load_default="", validate=Length(0, 5000))
    definition = Dict(load_default=None, metadata={"description": "the draft definition"})


class WorkflowUpdate(Strict):
    name = String(validate=Length(1, 120))
    description = Multiline(validate=Length(0, 5000))
    definition = Dict()
    webhook_credential_id = UUID(allow_none=True, metadata={
        "description": "a credential whose `secret` field signs webhook calls"})
    webhook_enabled = Boolean(metadata={
        "description": "false turns the webhook off: calls get 409 and start nothing"})
    webhook_rate_per_minute = Integer(allow_none=True, strict=True, metadata={
        "description": "calls a minute the webhook URL takes (past it: 429 with "
                       "`Retry-After`), at most the installation's ceiling; null: the "
                       "installation's default"})
    failure_alerts = Boolean(metadata={
        "description": "true mails each failed (or timed out) run to `failure_recipients`"})
    failure_recipients = List(String(validate=Length(1, 320)), validate=Length(0, 20),
                              metadata={"description": (
                                  "addresses of staff members of this workspace; empty: "
                                  "the person who made the workflow, else its owners and "
                                  "admins")})


class WorkflowOut(Schema):
    id = UUID()
    name = String()
    description = String()
    definition = Dict(attribute="draft")
    current_version = Integer(allow_none=True)
    webhook_url = String()
    webhook_signed = Boolean()
    webhook_enabled = Boolean()
    webhook_rate_per_minute = Integer(metadata={
        "description": "calls a minute the webhook URL takes now"})
    webhook_rate_ceiling = Integer(metadata={
        "description": "the most calls a minute this installation lets a webhook take"})
    failure_alerts = Boolean()
    failure_recipients = List(String())
    created_at = DateTime()
    updated_at = DateTime()


class WorkflowPage(Schema):
    items = List(Nested(WorkflowOut))
    next_cursor = String(allow_none=True)


class VersionOut(Schema):
    id = UUID()
    number = Integer()
    definition = Dict()
    published_by_id = UUID(allow_none=True)
    created_at = DateTime()


class VersionList(Schema):
    items = List(Nested(VersionOut))


class RollbackIn(Strict):
    version = Integer(required=True, validate=Range(1, INT32_MAX))


class RunStart(Strict):
    input = Raw(load_default=dict, metadata={"description": "any JSON value"})


class RunQuery(PageQuery):
    workflow_id = String(load_default=None)
    status = String(load_default=None, validate=OneOf([s.value for s in RunStatus]))
    trigger = String(load_default=None, validate=Length(1, 16))
    mode = String(load_default=None, validate=OneOf([m.value for m in RunMode]),
                  metadata={"description": "live or test runs only (both by default)"})


class RunOut(Schema):
    id = UUID()
    workflow_id = UUID()
    version = Integer()
    status = String()
    trigger = String()
    idempotency_key = String(allow_none=True)
    input = Raw()
    output = Raw(allow_none=True)
    error = Raw(allow_none=True)
    parent_run_id = UUID(allow_none=True)
    replay_of_id = UUID(allow_none=True)
    mode = String(metadata={"description": "`live`, or `test`: a test run sent nothing outside "
                                           "and was not billed"})
    test_options = Raw(allow_none=True, metadata={
        "description": "a test run's mocks, scripted model turns, source run and agent "
                       "version overrides"})
    created_at = DateTime()
    started_at = DateTime(allow_none=True)
    finished_at = DateTime(allow_none=True)
    steps_executed = Integer()
    agent_calls = Integer()
    tokens = Integer()
    cost = String()


class StepRunOut(Schema):
    id = UUID()
    step_id = String()
    path = String()
    type = String(attribute="step_type")
    status = String()
    attempt = Integer(metadata={"description": "attempts that ran: what `retry` counts"})
    interruptions = Integer(metadata={"description": "attempts lost to infrastructure (a "
                                      "worker that died): run again, never counted by `retry`"})
    input = Raw(allow_none=True)
    output = Raw(allow_none=True)
    error = Raw(allow_none=True)
    created_at = DateTime()
    started_at = DateTime(allow_none=True)
    finished_at = DateTime(allow_none=True)
    tokens = Integer()
    cost = String()


class RunDetail(RunOut):
    steps = List(Nested(StepRunOut), metadata={"description": "the timeline"})


class RunPage(Schema):
    items = List(Nested(RunOut))
    next_cursor = String(allow_none=True)


class AgentVersionPick(Strict):
    agent_id = UUID(required=True)
    version = Integer(required=True, validate=Range(1, INT32_MAX))


class ReplayIn(Strict):
    """Either `from_step` (a live run again from that step, reusing earlier outputs), or
    a test-mode replay: the same input against `version` and/or `agent_versions`."""

    from_step = String(load_default=None, validate=Length(1, 80))
    test = Boolean(load_default=False, metadata={
        "description": "replay in test mode (implied by `version` or `agent_versions`)"})
    version = Raw(load_default=None, metadata={
        "description": "a version of the run's workflow, by number or id (test mode)"})
    agent_versions = List(Nested(AgentVersionPick), load_default=None,
                          validate=Length(1, 20), metadata={
                              "description": "agent versions replacing the pinned ones"})


class ApprovalOut(Schema):
    id = UUID()
    run_id = UUID()
    status = String()
    prompt = String()
    data = Raw()
    editable_fields = List(String())
    assignee_role = String(allow_none=True)
    assignee_user_id = UUID(allow_none=True)
    deadline_at = DateTime(allow_none=True)
    timeout_action = String()
    decided_by_id = UUID(allow_none=True)
    decided_at = DateTime(allow_none=True)
    edited_values = Raw(allow_none=True)
    created_at = DateTime()


class ApprovalPage(Schema):
    items = List(Nested(ApprovalOut))
    next_cursor = String(allow_none=True)


class ApprovalQuery(PageQuery):
    status = String(load_default="pending",
                    validate=OneOf(["pending", "approved", "rejected", "timed_out", "escalated",
                                    "cancelled"]))


class DecisionIn(Strict):
    decision = String(required=True, validate=OneOf(["approve", "reject"]))
    edits = Dict(load_default=dict)
    note = Multiline(load_default=None, validate=Length(0, 2000))


class ApprovalLinkOut(Schema):
    url = String()


class ScheduleCreate(Strict):
    cron = String(required=True, validate=Length(1, 120), metadata={
        "description": "five fields (minute hour day month weekday), or six with seconds last"})
    timezone = String(load_default="UTC", validate=Length(1, 64),
                      metadata={"description": "an IANA zone, e.g. `Europe/Paris`"})
    input = Raw(load_default=dict, metadata={"description": "the input of every run it starts"})


class ScheduleUpdate(Strict):
    enabled = Boolean()
    cron = String(validate=Length(1, 120))
    timezone = String(validate=Length(1, 64))
    input = Raw()


class ScheduleOut(Schema):
    id = UUID()
    workflow_id = UUID()
    cron = String()
    timezone = String()
    input = Raw()
    enabled = Boolean()
    next_fire_at = DateTime()
    last_fired_at = DateTime(allow_none=True)
    created_at = DateTime()


class SchedulePage(Schema):
    items = List(Nested(ScheduleOut))
    next_cursor = String(allow_none=True)
