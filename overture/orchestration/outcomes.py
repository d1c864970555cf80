"""What a step executor hands back to the engine, and the errors it may raise.

Executors run outside any transaction and touch no tables: they describe what
happened, and the engine records it in one commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from overture.platform.errors import PaymentRequired

DEFAULT_NEXT = object()  # "continue at the step's own `next`"


@dataclass(frozen=True)
class Completed:
    output: Any = None
    next: Any = DEFAULT_NEXT  # a step id, None to end the block, or DEFAULT_NEXT


@dataclass(frozen=True)
class Child:
    step_id: str
    path: str


@dataclass(frozen=True)
class Spawn:
    """Start child blocks (branches, loop iterations) and wait for them."""

    children: list[Child]
    state: dict[str, Any]


@dataclass(frozen=True)
class AwaitApproval:
    prompt: str
    data: Any
    editable_fields: list[str]
    assignee_role: str | None
    assignee_user_id: str | None
    timeout_seconds: float | None
    timeout_action: str
    escalate_to_role: str | None
    assignee_starter: bool = False  # the run's starter, where it has one


@dataclass(frozen=True)
class AwaitRun:
    """Start a child run of another workflow and wait for it."""

    workflow_id: str
    input: Any


@dataclass(frozen=True)
class Defer:
    """Come back at `until` (a delay step)."""

    until: datetime


@dataclass(frozen=True)
class Stop:
    status: str
    output: Any = None
    error: Any = None


Outcome = Completed | Spawn | AwaitApproval | AwaitRun | Defer | Stop


@dataclass
class StepFailed(Exception):
    """A step failed. `code` decides whether the retry policy retries it."""

    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    # False: refused before it ran (a cap on steps): not metered, not retried
    ran: bool = True

    def __post_init__(self) -> None:
        super().__init__(f"{self.code}: {self.message}")

    def as_error(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


@dataclass(frozen=True)
class Interrupted:
    """The attempt was lost to infrastructure (our database failed under the step): not
    the step's doing. It runs again, with the same idempotency key, and does not count
    against the step's retry policy."""

    reason: str

    def as_error(self) -> dict[str, Any]:
        return {"code": "interrupted", "message": self.reason}


Recordable = Outcome | StepFailed | Interrupted  # what recording a step takes (flow.apply)


BUDGET_EXCEEDED = "budget_exceeded"


def budget_exceeded(refused: PaymentRequired) -> StepFailed:
    """A limit (budget, quota or standing) stopped the step: `budget_exceeded`, which
    the workflow's error route can catch, with the limit the 402 problem names."""
    return StepFailed(BUDGET_EXCEEDED, refused.detail, {"problem": refused.code, **refused.extra})


def refused_to_start(refused: PaymentRequired) -> StepFailed:
    """A cap on steps let the step not start: `budget_exceeded`, and it never ran."""
    failure = budget_exceeded(refused)
    failure.ran = False
    return failure


def caught_refusal(scope: dict[str, Any]) -> bool:
    """Whether a step is the error route of a step a cap on steps refused: that one is
    let in past the cap, so that the workflow can say what happened."""
    error = scope.get("error")
    return isinstance(error, dict) and error.get("code") == BUDGET_EXCEEDED \
        and error.get("meter") == "steps"


# Codes retried when a step's policy names none.
TRANSIENT = frozenset({"timeout", "transient", "rate_limited", "http_5xx", "connection"})
