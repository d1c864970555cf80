"""Workflows, versions, runs, step runs, approvals and schedules."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from overture.platform.db import TenantOwned, db, utcnow


class Workflow(TenantOwned, db.Model):
    __tablename__ = "workflows"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    draft: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    current_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("workflow_versions.id", use_alter=True, ondelete="SET NULL"))
    webhook_token: Mapped[str] = mapped_column(String(64), index=True)
    # A vault credential whose `secret` field signs webhook calls (HMAC-SHA256), if set.
    webhook_credential_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="SET NULL"))
    # Off: the webhook keeps its URL and secret but refuses calls (409) and starts nothing.
    webhook_enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Calls a minute the webhook takes (429 past it); None: the installation's default.
    webhook_rate_per_minute: Mapped[int | None] = mapped_column(Integer)
    # Mail the failure of a run (orchestration/notifications.py): to these members'
    # addresses, or (empty) to the workflow's maker, else the owners and admins.
    failure_alerts: Mapped[bool] = mapped_column(default=False, server_default=false())
    failure_recipients: Mapped[list[str]] = mapped_column(JSON, default=list,
                                                          server_default="[]")
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    archived_at: Mapped[datetime | None]


class WorkflowVersion(TenantOwned, db.Model):
    """A frozen definition. Runs point at one; nothing ever changes it."""

    __tablename__ = "workflow_versions"
    __table_args__ = (UniqueConstraint("tenant_id", "workflow_id", "number"),)

    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    # What publishing resolved and froze beside the definition (agent versions by name).
    pins: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    published_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


class RunMode(StrEnum):
    LIVE = "live"
    # Sends nothing and bills nothing: world-changing actions answer with mocks, models
    # are scripted or offline (orchestration/testmode/).
    TEST = "test"


FINISHED_RUN = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED,
                          RunStatus.TIMED_OUT})


class Run(TenantOwned, db.Model):
    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "workflow_id", "idempotency_key"),
        # A portal customer's own runs (migration 0025).
        Index("ix_runs_tenant_started_by", "tenant_id", "started_by_id"),
        # A status since a moment: failures, the agency's overview (migration 0021).
        Index("ix_runs_tenant_status_created", "tenant_id", "status", "created_at"),
        # The replays of a run; few runs are one (migration 0021).
        Index("ix_runs_replay_of_id", "replay_of_id",
              postgresql_where=text("replay_of_id IS NOT NULL"),
              sqlite_where=text("replay_of_id IS NOT NULL")),
        # The few test runs, listed apart (migration 0034).
        Index("ix_runs_tenant_test", "tenant_id", "created_at",
              postgresql_where=text("mode = 'test'"), sqlite_where=text("mode = 'test'")),
        # Room in each page for the step counter's update in place (migration 0012).
        {"postgresql_with": {"fillfactor": 70}},
    )

    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"),
                                                   index=True)
    version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflow_versions.id"))
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.QUEUED)
    trigger: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # SHA-256 (hex) of the canonical JSON of the input of a run started with a key: the
    # same key with another input is refused (runs.start_run; migration 0014).
    input_fingerprint: Mapped[str | None] = mapped_column(String(64))
    input: Mapped[Any] = mapped_column(JSON, default=dict)
    output: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    parent_run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id"), index=True)
    parent_step_run_id: Mapped[uuid.UUID | None]
    replay_of_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id"))
    started_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    deadline_at: Mapped[datetime | None] = mapped_column(index=True)
    steps_executed: Mapped[int] = mapped_column(Integer, default=0)
    agent_calls: Mapped[int] = mapped_column(Integer, default=0)
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[Decimal] = mapped_column(Numeric(14, 6), default=Decimal(0))
    mode: Mapped[str] = mapped_column(String(8), default=RunMode.LIVE, server_default="live")
    # A test run's mocks, scripted model turns, source run and agent overrides
    # (testmode.options); None for a live run.
    test_options: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_RUN

    @property
    def is_test(self) -> bool:
        return self.mode == RunMode.TEST


class StepStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"  # on children, an approval, a child run, or a timer
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # reused from an earlier run by a replay


FINISHED_STEP = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.CANCELLED,
                           StepStatus.SKIPPED})


class StepRun(TenantOwned, db.Model):
    """One execution of one step at one iteration path: the unit of durable work."""

    __tablename__ = "step_runs"
    __tenant_fk__ = False  # several writes per step: see TenantOwned; reached via its run
    __table_args__ = (
        # The step's identity, and the index for reading a run's steps by path (a run
        # belongs to one tenant; migration 0013).
        UniqueConstraint("run_id", "path", "step_id"),
        # No index on status: recording a step then updates its row in place, with
        # room left in each page for that (migration 0012). Unfinished rows are found
        # through their run.
        {"postgresql_with": {"fillfactor": 80}},
    )

    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step_id: Mapped[str] = mapped_column(String(80))
    path: Mapped[str] = mapped_column(String(400), default="")
    step_type: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16), default=StepStatus.QUEUED)
    # Attempts that ran and ended (or run now): what the retry policy counts.
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    # Attempts lost to infrastructure (a worker that died, our database failing under
    # the step): run again without counting against the retry policy (engine.process).
    interruptions: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    input: Mapped[Any | None] = mapped_column(JSON)
    output: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # joins and loops keep count here
    # This step ended a parallel branch: its join counts such rows (see joins.join_if_ready).
    ends_block: Mapped[bool] = mapped_column(default=False, server_default=false())
    claim: Mapped[str | None] = mapped_column(String(40))
    lease_until: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    enqueued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[Decimal] = mapped_column(Numeric(14, 6), default=Decimal(0))


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    ESCALATED = "escalated"
    CANCELLED = "cancelled"


class Approval(TenantOwned, db.Model):
    __tablename__ = "approvals"

    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"),
                                              index=True)
    step_run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("step_runs.id",
                                                              ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=ApprovalStatus.PENDING)
    prompt: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[Any] = mapped_column(JSON, default=dict)
    editable_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    assignee_role: Mapped[str | None] = mapped_column(String(16))
    assignee_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    deadline_at: Mapped[datetime | None] = mapped_column(index=True)
    timeout_action: Mapped[str] = mapped_column(String(16), default="reject")
    escalate_to_role: Mapped[str | None] = mapped_column(String(16))
    link_nonce: Mapped[str] = mapped_column(String(40))
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)
    edited_values: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Schedule(TenantOwned, db.Model):
    __tablename__ = "schedules"

    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"),
                                                   index=True)
    cron: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    input: Mapped[Any] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(default=True)
    next_fire_at: Mapped[datetime] = mapped_column(index=True)
    last_fired_at: Mapped[datetime | None]


class ScheduleFire(TenantOwned, db.Model):
    """One tick of one schedule: the unique key makes each tick fire exactly once."""

    __tablename__ = "schedule_fires"
    __table_args__ = (UniqueConstraint("tenant_id", "schedule_id", "fire_at"),)

    schedule_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    fire_at: Mapped[datetime]
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id"))
