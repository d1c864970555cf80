"""The built-in step types: their schemas and executors. The registry is open:
agent step types register themselves the same way."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from overture.billing.usage import Attribution
from overture.orchestration import actions, expressions
from overture.orchestration.definition import EXPR, ID, NEXT, POSITIVE, StepSchema
from overture.orchestration.definition import register_step_schema as _register_schema
from overture.orchestration.ledger import Ledger
from overture.orchestration.outcomes import (
    AwaitApproval,
    AwaitRun,
    Child,
    Completed,
    Defer,
    Outcome,
    Spawn,
    StepFailed,
    Stop,
)
from overture.orchestration.testmode import mocks
from overture.tenants.roles import Role

MAX_LOOP_ITEMS = 10_000
# A run lasts at most 30 days (policy max_duration_seconds); a longer delay could never
# end, and a huge one overflowed the date arithmetic.
MAX_DELAY_SECONDS = 30 * 86400


def _id(value: str) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


@dataclass
class StepContext:
    """Everything an executor may know. It touches no tables."""

    step: dict[str, Any]
    path: str
    scope: dict[str, Any]
    idempotency_key: str
    attempt: int
    timeout: float
    tenant_id: str
    started_at: datetime  # of the first attempt: a delay counts from here
    run_id: str = ""
    workflow_id: str = ""
    step_run_id: str = ""
    # What the workflow version pinned at publish (e.g. agent versions by name).
    pins: dict[str, Any] = field(default_factory=dict)
    # Usage, audit, tokens and agent calls, written with the step's outcome.
    ledger: Ledger = field(default_factory=Ledger)
    # "test": the run sends nothing and bills nothing (orchestration/testmode).
    mode: str = "live"

    @property
    def testing(self) -> bool:
        return self.mode == "test"

    def attribution(self, agent_id: uuid.UUID | None = None) -> Attribution:
        """Where usage the step causes outside its ledger belongs (an action's call)."""
        return Attribution(workflow_id=_id(self.workflow_id), run_id=_id(self.run_id),
                           step_id=self.step.get("id") if self.run_id else None,
                           step_run_id=_id(self.step_run_id), agent_id=agent_id,
                           billed=not self.testing)

    def render(self, value: Any) -> Any:
        try:
            return expressions.render(value, self.scope)
        except expressions.ExpressionError as exc:
            raise StepFailed("expression", exc.detail) from exc

    def evaluate(self, source: str) -> Any:
        try:
            return expressions.evaluate(source, self.scope)
        except expressions.ExpressionError as exc:
            raise StepFailed("expression", exc.detail) from exc


Executor = Callable[[StepContext], Outcome]
_EXECUTORS: dict[str, Executor] = {}


def register_step_type(name: str, schema: StepSchema, executor: Executor) -> None:
    _register_schema(name, schema)
    _EXECUTORS[name] = executor


def executor_for(step_type: str) -> Executor:
    return _EXECUTORS[step_type]


# --------------------------------------------------------------------------- simple steps


def _transform(ctx: StepContext) -> Outcome:
    return Completed(ctx.render(ctx.step.get("output", ctx.step.get("input"))))


def _condition(ctx: StepContext) -> Outcome:
    result = ctx.evaluate(ctx.step["if"])
    if not isinstance(result, bool):
        raise StepFailed("expression", f"'if' must be true or false, not {result!r}")
    return Completed({"result": result}, next=ctx.step.get("then") if result
                     else ctx.step.get("else"))


def _router(ctx: StepContext) -> Outcome:
    for index, route in enumerate(ctx.step["routes"]):
        if ctx.evaluate(route["when"]) is True:
            return Completed({"route": index}, next=route.get("next"))
    return Completed({"route": "default"}, next=ctx.step.get("default"))


def _stop(ctx: StepContext) -> Outcome:
    return Stop(ctx.step.get("status", "succeeded"), ctx.render(ctx.step.get("output")),
                ctx.render(ctx.step.get("error")))


def _delay(ctx: StepContext) -> Outcome:
    now = datetime.now(UTC)
    if "seconds" in ctx.step:
        seconds = ctx.render(ctx.step["seconds"])
        if not isinstance(seconds, int | float) or not 0 <= seconds <= MAX_DELAY_SECONDS:
            raise StepFailed("invalid", f"'seconds' must be a number from 0 to "
                                        f"{MAX_DELAY_SECONDS}, not {seconds!r}")
        until = ctx.started_at + timedelta(seconds=seconds)
    else:
        raw = ctx.render(ctx.step["until"])
        try:
            until = datetime.fromisoformat(str(raw))
        except ValueError as exc:
            raise StepFailed("invalid", f"'until' is not an ISO 8601 time: {raw!r}") from exc
        until = until if until.tzinfo else until.replace(tzinfo=UTC)
    if until <= now:
        return Completed({"waited_until": until.isoformat()})
    return Defer(until)


def _action(ctx: StepContext) -> Outcome:
    if ctx.testing:  # a mock answers, unless the action only reads
        mocked = mocks.action_step(ctx)
        if mocked is not None:
            return mocked
    action = actions.get(ctx.step["action"])
    output = action(actions.ActionCall(
        input=ctx.render(ctx.step.get("input", {})), idempotency_key=ctx.idempotency_key,
        timeout=ctx.timeout, tenant_id=ctx.tenant_id, connection=ctx.step.get("connection"),
        attribution=ctx.attribution()))
    return Completed(output)


# --------------------------------------------------------------------------- waiting steps


def _parallel(ctx: StepContext) -> Outcome:
    from overture.orchestration.definition import Graph

    branches = ctx.step["branches"]
    children = [Child(Graph.of({"steps": b["steps"], "start": b.get("start")}).start,
                      f"{ctx.path}{ctx.step['id']}#{i}/") for i, b in enumerate(branches)]
    return Spawn(children, {"needed": branches_needed(ctx.step), "done": {},
                            "outputs": [None] * len(branches)})


def branches_needed(step: dict[str, Any]) -> int:
    """How many of a parallel step's branches its join waits for."""
    join, branches = step.get("join", "all"), len(step["branches"])
    return branches if join == "all" else 1 if join == "any" else min(int(join["n"]), branches)


def join_needs_all(step: dict[str, Any]) -> bool:
    return branches_needed(step) == len(step["branches"])


def _loop(ctx: StepContext) -> Outcome:
    body_start = ctx.step["body"].get("start") or ctx.step["body"]["steps"][0]["id"]
    if "for_each" in ctx.step:
        items = ctx.evaluate(ctx.step["for_each"])
        if not isinstance(items, list):
            raise StepFailed("expression",
                             f"'for_each' must give a list, not {type(items).__name__}")
        if len(items) > MAX_LOOP_ITEMS:
            raise StepFailed("invalid", f"more than {MAX_LOOP_ITEMS} items to loop over")
        if not items:
            return Completed([])
        first = min(int(ctx.step.get("concurrency", 1)), len(items))
        state = {"mode": "for_each", "items": items, "started": first, "done": {},
                 "results": [None] * len(items)}
    else:
        first = 1
        state = {"mode": "until", "max": int(ctx.step["max_iterations"]), "started": 1,
                 "done": {}, "results": []}
    children = [Child(body_start, f"{ctx.path}{ctx.step['id']}#{i}/") for i in range(first)]
    return Spawn(children, state)


def _approval(ctx: StepContext) -> Outcome:
    assignee = ctx.step.get("assignee") or {}
    return AwaitApproval(
        prompt=str(ctx.render(ctx.step.get("prompt", "")) or ""),
        data=ctx.render(ctx.step.get("data", {})),
        editable_fields=list(ctx.step.get("editable", [])),
        assignee_role=assignee.get("role"), assignee_user_id=assignee.get("user_id"),
        assignee_starter=bool(assignee.get("starter")),
        timeout_seconds=ctx.step.get("timeout_seconds"),
        timeout_action=ctx.step.get("timeout_action", "reject"),
        escalate_to_role=ctx.step.get("escalate_to_role"))


def _subworkflow(ctx: StepContext) -> Outcome:
    return AwaitRun(str(ctx.step["workflow_id"]), ctx.render(ctx.step.get("input", {})))


# --------------------------------------------------------------------------- registration

BLOCK_REF = {"type": "object"}
register_step_type("transform", StepSchema({"output": {}}, templates=("output",)), _transform)
register_step_type("condition", StepSchema({"if": EXPR, "then": NEXT, "else": NEXT},
                                           required=("if",), expressions=("if",),
                                           targets=("then", "else")), _condition)
register_step_type("router", StepSchema(
    {"routes": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["when"], "additionalProperties": False,
        "properties": {"when": EXPR, "next": NEXT}}},
     "default": NEXT}, required=("routes",), targets=("routes", "default")), _router)
register_step_type("stop", StepSchema(
    {"status": {"enum": ["succeeded", "failed"]}, "output": {}, "error": {}},
    templates=("output", "error")), _stop)
register_step_type("delay", StepSchema(
    {"seconds": {"anyOf": [{"type": "number", "minimum": 0, "maximum": MAX_DELAY_SECONDS},
                           {"type": "string"}]},
     "until": {"type": "string"}}, templates=("seconds", "until"),
    extra={"oneOf": [{"required": ["seconds"]}, {"required": ["until"]}]}), _delay)
register_step_type("action", StepSchema(
    {"action": {"type": "string", "minLength": 1}, "connection": {"type": "string"}},
    required=("action",)), _action)
register_step_type("parallel", StepSchema(
    {"branches": {"type": "array", "minItems": 1, "maxItems": 200, "items": BLOCK_REF},
     "join": {"anyOf": [{"enum": ["all", "any"]},
                        {"type": "object", "required": ["n"], "additionalProperties": False,
                         "properties": {"n": POSITIVE}}]}},
    required=("branches",), blocks=("branches",)), _parallel)
register_step_type("loop", StepSchema(
    {"for_each": EXPR, "until": EXPR, "max_iterations": {"type": "integer", "minimum": 1,
                                                         "maximum": 1000},
     "concurrency": {"type": "integer", "minimum": 1, "maximum": 100}, "body": BLOCK_REF},
    required=("body",), expressions=("for_each", "until"), blocks=("body",),
    extra={"oneOf": [{"required": ["for_each"]}, {"required": ["until", "max_iterations"]}]}),
    _loop)
ROLE = {"enum": [r.value for r in Role]}  # an unknown role could never decide: refuse it
# "format" is not asserted by the validator; a malformed id would crash the step at run time
UUID_STRING = {"type": "string", "pattern": "^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"}
register_step_type("approval", StepSchema(
    {"prompt": {"type": "string"}, "data": {}, "editable": {"type": "array",
                                                            "items": {"type": "string"}},
     # `starter`: the person who started the run (a portal customer answers their own
     # run's approvals); a run nobody started falls back to `role`.
     "assignee": {"type": "object", "additionalProperties": False,
                  "properties": {"role": ROLE, "user_id": UUID_STRING,
                                 "starter": {"type": "boolean"}}},
     "timeout_action": {"enum": ["approve", "reject", "escalate"]},
     "escalate_to_role": ROLE,
     "on_reject": NEXT},  # approvals.py continues here on a rejection
    templates=("prompt", "data"), targets=("on_reject",),
    # escalating needs someone to escalate to; without one the timeout silently rejected
    extra={"if": {"required": ["timeout_action"],
                  "properties": {"timeout_action": {"const": "escalate"}}},
           "then": {"required": ["escalate_to_role"]}}), _approval)
register_step_type("subworkflow", StepSchema(
    {"workflow_id": UUID_STRING}, required=("workflow_id",)),
    _subworkflow)

__all__ = ["ID", "StepContext", "executor_for", "register_step_type"]
