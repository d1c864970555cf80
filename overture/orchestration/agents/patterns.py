"""The multi-agent step types: `agent`, `classify`, `supervisor`, `review_loop`, `group`.

Every one names its agents by name; publishing a workflow pins the versions they have
then (`pin_agents`, a publish hook), and the step runs those versions, so editing an
agent later never changes a published workflow. An agent sees what the step's `input`
mapping gives it (by default the run's input, never the other steps' outputs) plus the
step's `task` (a template).

Routing on what an agent says (`agent`, `supervisor`): `routes` send a status
(needs_human, needs_info, failed, ok) to a step, e.g. an approval; `min_confidence`
sends a less confident answer to `low_confidence`. An unrouted `failed` fails the step.

CEL in these steps (`classify` rules, `group` rules and `until`) sees the usual names
and, as `item`, the decision at hand: for `classify` {route, confidence, status}; for
`group` {transcript, last, turn} (and `index` = the turn number).
"""

from __future__ import annotations

import json
from typing import Any

from overture.orchestration import expressions, workflows
from overture.orchestration.agents import service
from overture.orchestration.agents.runtime import Runner
from overture.orchestration.agents.spec import STATUSES, ToolGrant
from overture.orchestration.agents.task import Answer, Task
from overture.orchestration.agents.tools import tool_name
from overture.orchestration.definition import EXPR, ID, NEXT, Graph, StepSchema
from overture.orchestration.llm.local_provider import Classify, Review
from overture.orchestration.outcomes import Completed, Outcome, StepFailed
from overture.orchestration.steps import StepContext, register_step_type
from overture.platform.errors import ValidationFailed

AGENT_NAME = {"type": "string", "minLength": 1, "maxLength": 120}
ROUTE_NAME = {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"}
CONFIDENCE = {"type": "number", "minimum": 0, "maximum": 1}
TASK = {"type": "string", "minLength": 1, "maxLength": 20_000}
ROUNDS = {"type": "integer", "minimum": 1, "maximum": 20}
STATUS_ROUTES = {"type": "array", "maxItems": len(STATUSES), "items": {
    "type": "object", "required": ["status", "next"], "additionalProperties": False,
    "properties": {"status": {"enum": list(STATUSES)}, "next": NEXT}}}
ROUTING = {"routes": STATUS_ROUTES, "min_confidence": CONFIDENCE, "low_confidence": NEXT}
REVIEW_SCHEMA = {"type": "object", "required": ["approved"],
                 "properties": {"approved": {"type": "boolean"},
                                "feedback": {"type": "string"}}}
DEFAULT_ROUNDS = 3
# Which fields of which step types name agents (a string or a list of them).
AGENT_FIELDS: dict[str, tuple[str, ...]] = {
    "agent": ("agent",), "classify": ("agent",), "supervisor": ("agent", "specialists"),
    "review_loop": ("drafter", "reviewer"), "group": ("agents", "selector"),
}


# --------------------------------------------------------------------------- input and prompts


def step_input(ctx: StepContext) -> Any:
    """What the agent sees: the `input` mapping, else the run's input only."""
    return ctx.render(ctx.step["input"]) if "input" in ctx.step else ctx.scope.get("input")


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def prompt(ctx: StepContext, data: Any, *parts: str) -> str:
    """The step's task, what the pattern asks, then the input."""
    task = ctx.render(ctx.step["task"]) if "task" in ctx.step else None
    lines = [as_text(task)] if task else []
    lines += [p for p in parts if p]
    lines.append("Input:\n" + as_text(data))
    return "\n\n".join(lines)


def routed(ctx: StepContext, answer: Answer, output: dict[str, Any]) -> Completed:
    """Continue where the answer's status or confidence says."""
    for route in ctx.step.get("routes") or []:
        if route["status"] == answer.status:
            return Completed(output, next=route["next"])
    if answer.status == "failed":
        raise StepFailed("agent_failed", f"agent {answer.agent!r} answered failed: "
                         f"{as_text(answer.output)[:500]}", {"agent": answer.agent})
    minimum = ctx.step.get("min_confidence")
    if minimum is not None and (answer.confidence is None or answer.confidence < minimum):
        return Completed({**output, "low_confidence": True}, next=ctx.step["low_confidence"])
    return Completed(output)


# --------------------------------------------------------------------------- agent


def run_agent(ctx: StepContext) -> Outcome:
    data = step_input(ctx)
    answer = Runner.for_step(ctx).invoke(ctx.step["agent"],
                                         Task(prompt=prompt(ctx, data), data=data))
    return routed(ctx, answer, answer.to_json())


# --------------------------------------------------------------------------- classify


def run_classify(ctx: StepContext) -> Outcome:
    routes = ctx.step["routes"]
    names = [r["name"] for r in routes]
    data = step_input(ctx)
    listing = "\n".join(f"- {r['name']}: {r.get('description', '')}" for r in routes)
    answer = Runner.for_step(ctx).invoke(ctx.step["agent"], Task(
        prompt=prompt(ctx, data, "Pick the one route that fits the input best, with your "
                                 "confidence; your output is {\"route\": <its name>}. "
                                 f"Routes:\n{listing}"),
        data=data, label="classify",
        output_schema={"type": "object", "required": ["route"],
                       "properties": {"route": {"enum": names}}},
        classify=Classify({r["name"]: r.get("description", "") for r in routes},
                          text=_words(data))))
    picked = answer.output.get("route") if answer.status == "ok" \
        and isinstance(answer.output, dict) else None
    result = {"route": picked, "confidence": answer.confidence, "status": answer.status,
              "decided_by": "agent", "agent": answer.to_json()}
    threshold = ctx.step.get("threshold")
    if picked in names and (threshold is None or (answer.confidence is not None
                                                  and answer.confidence >= threshold)):
        return Completed(result, next=_route_next(routes, picked))
    return _fall_back(ctx, routes, result)


def _fall_back(ctx: StepContext, routes: list[dict[str, Any]],
               result: dict[str, Any]) -> Completed:
    """Below the threshold: the first rule that holds, else a human, else fail."""
    decision = {k: result[k] for k in ("route", "confidence", "status")}
    for rule in ctx.step.get("rules") or []:
        if _evaluate(ctx, rule["when"], decision, None) is True:
            route = rule.get("route", result["route"])
            return Completed({**result, "route": route, "decided_by": "rule"},
                             next=rule["next"] if "next" in rule else _route_next(routes, route))
    if ctx.step.get("human"):
        return Completed({**result, "decided_by": "human"}, next=ctx.step["human"])
    raise StepFailed("classify_undecided", (
        f"the agent picked {result['route']!r} with confidence {result['confidence']}, "
        f"below the threshold {ctx.step.get('threshold')}, and no rule matched"),
        {"route": result["route"], "confidence": result["confidence"]})


def _route_next(routes: list[dict[str, Any]], name: str | None) -> str | None:
    return next(r["next"] for r in routes if r["name"] == name)


# --------------------------------------------------------------------------- supervisor


def run_supervisor(ctx: StepContext) -> Outcome:
    runner = Runner.for_step(ctx)
    data = step_input(ctx)
    specialists = tuple(ctx.step["specialists"])
    listing = "\n".join(f"- {tool_name_for(name)}: {name}, {runner.agent(name).spec.role}"
                        for name in specialists)
    answer = runner.invoke(ctx.step["agent"], Task(
        prompt=prompt(ctx, data, "You coordinate specialists. Give each the subtask it is "
                                 "best at with its tool (several at once when they do not "
                                 "depend on each other), then combine their answers into "
                                 f"your final answer. Specialists:\n{listing}"),
        data=data, label="supervisor", specialists=specialists,
        max_rounds=int(ctx.step.get("max_rounds", DEFAULT_ROUNDS)),
        parallel=bool(ctx.step.get("parallel", True))))
    return routed(ctx, answer, {**answer.to_json(), "delegations": runner.delegations})


def tool_name_for(agent_name: str) -> str:
    return tool_name(ToolGrant(kind="agent", ref=agent_name))


# --------------------------------------------------------------------------- review loop


def run_review_loop(ctx: StepContext) -> Outcome:
    runner = Runner.for_step(ctx)
    data = step_input(ctx)
    history: list[dict[str, Any]] = []
    for number in range(1, int(ctx.step.get("max_rounds", DEFAULT_ROUNDS)) + 1):
        draft = runner.invoke(ctx.step["drafter"], Task(
            prompt=prompt(ctx, data, _revision_request(history)), data=data,
            label=f"draft{number}"))
        if draft.status != "ok":
            return _escalate(ctx, history, f"the drafter answered {draft.status}", draft)
        review = runner.invoke(ctx.step["reviewer"], Task(
            prompt=prompt(ctx, data, "Review the draft against the input. Approve it "
                                     "(output.approved = true) only if it is ready as it is; "
                                     "otherwise say what to change in output.feedback.",
                          "Draft:\n" + as_text(draft.output)),
            label=f"review{number}", output_schema=REVIEW_SCHEMA,
            review=Review(request=_words(data), draft=as_text(draft.output))))
        verdict = review.output if isinstance(review.output, dict) else {}
        approved = review.status == "ok" and verdict.get("approved") is True
        history.append({"round": number, "draft": draft.output, "approved": approved,
                        "feedback": verdict.get("feedback"), "reviewer_status": review.status})
        if approved:
            return Completed(_review_output(history, approved=True))
        if review.status != "ok":
            return _escalate(ctx, history, f"the reviewer answered {review.status}", review)
    return _escalate(ctx, history, f"not approved after {len(history)} round(s)", None)


def _revision_request(history: list[dict[str, Any]]) -> str:
    if not history:
        return "Write the draft."
    last = history[-1]
    return ("Revise your previous draft as the reviewer asks.\n\nPrevious draft:\n"
            f"{as_text(last['draft'])}\n\nReviewer's feedback:\n{last['feedback'] or '(none)'}")


def _review_output(history: list[dict[str, Any]], approved: bool) -> dict[str, Any]:
    last = history[-1] if history else {}
    return {"approved": approved, "draft": last.get("draft"), "feedback": last.get("feedback"),
            "rounds": len(history), "history": history}


def _escalate(ctx: StepContext, history: list[dict[str, Any]], why: str,
              answer: Answer | None) -> Completed:
    if answer is not None and answer.status == "failed":
        raise StepFailed("agent_failed", f"agent {answer.agent!r} answered failed: "
                         f"{as_text(answer.output)[:500]}", {"agent": answer.agent})
    if not ctx.step.get("escalate"):
        raise StepFailed("review_not_approved", f"{why}, and the step has no `escalate` step",
                         {"rounds": len(history)})
    return Completed({**_review_output(history, approved=False), "escalated": why},
                     next=ctx.step["escalate"])


# --------------------------------------------------------------------------- group


def run_group(ctx: StepContext) -> Outcome:
    runner = Runner.for_step(ctx)
    data = step_input(ctx)
    agents = list(ctx.step["agents"])
    transcript: list[dict[str, Any]] = []
    for turn in range(int(ctx.step.get("max_turns", 2 * len(agents)))):
        speaker = _speaker(ctx, runner, agents, transcript, turn, data)
        answer = runner.invoke(speaker, Task(
            prompt=prompt(ctx, data, f"You are taking part in a group discussion as {speaker}."
                                     " Add your contribution to the transcript.",
                          "Transcript so far:\n" + as_text(transcript)),
            data=data, label=f"turn{turn}"))
        if answer.status == "failed":
            raise StepFailed("agent_failed", f"agent {speaker!r} answered failed: "
                             f"{as_text(answer.output)[:500]}", {"agent": speaker})
        transcript.append({"turn": turn, "agent": speaker, "status": answer.status,
                           "confidence": answer.confidence, "output": answer.output})
        if answer.status != "ok" or ("until" in ctx.step and _evaluate(
                ctx, ctx.step["until"], _group_item(transcript, turn + 1), turn + 1) is True):
            break
    return Completed({"transcript": transcript, "turns": len(transcript),
                      "last": transcript[-1] if transcript else None})


def _speaker(ctx: StepContext, runner: Runner, agents: list[str],
             transcript: list[dict[str, Any]], turn: int, data: Any) -> str:
    mode = ctx.step.get("speaker", "round_robin")
    if mode == "rule":
        for rule in ctx.step.get("rules") or []:
            if _evaluate(ctx, rule["when"], _group_item(transcript, turn), turn) is True:
                return str(rule["agent"])
    elif mode == "selector":
        picked = _selected(ctx, runner, agents, transcript, turn, data)
        if picked is not None:
            return picked
    return agents[turn % len(agents)]  # round robin, and the fallback of the others


def _selected(ctx: StepContext, runner: Runner, agents: list[str],
              transcript: list[dict[str, Any]], turn: int, data: Any) -> str | None:
    roles = {name: runner.agent(name).spec.role or name for name in agents}
    listing = "\n".join(f"- {name}: {role}" for name, role in roles.items())
    answer = runner.invoke(ctx.step["selector"], Task(
        prompt=prompt(ctx, data, "Pick who should speak next in this group discussion; your "
                                 f"output is {{\"route\": <their name>}}. Members:\n{listing}",
                      "Transcript so far:\n" + as_text(transcript)),
        label=f"select{turn}",
        output_schema={"type": "object", "required": ["route"],
                       "properties": {"route": {"enum": agents}}},
        classify=Classify(roles, text=_words(transcript[-1]["output"] if transcript
                                             else data))))
    picked = answer.output.get("route") if isinstance(answer.output, dict) else None
    return picked if answer.status == "ok" and picked in agents else None


def _group_item(transcript: list[dict[str, Any]], turn: int) -> dict[str, Any]:
    return {"transcript": transcript, "last": transcript[-1] if transcript else None,
            "turn": turn}


# --------------------------------------------------------------------------- helpers


def _evaluate(ctx: StepContext, source: str, item: Any, index: int | None) -> Any:
    scope = {**ctx.scope, "item": item, "index": index}
    try:
        return expressions.evaluate(source, scope)
    except expressions.ExpressionError as exc:
        raise StepFailed("expression", exc.detail) from exc


def _words(value: Any) -> str:
    """The text of a value, for embedding: a string as is, else its string leaves."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return " ".join(_words(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_words(v) for v in value)
    return "" if value is None else str(value)


# --------------------------------------------------------------------------- publishing


def agent_references(definition: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(step id, field, agent name) for every agent a definition's steps name."""
    found = []
    for step_id, step in Graph.of(definition).steps.items():
        for field in AGENT_FIELDS.get(step.get("type", ""), ()):
            value = step.get(field)
            for name in value if isinstance(value, list) else [value] if value else []:
                found.append((step_id, field, name))
    return found


def pin_agents(definition: dict[str, Any]) -> dict[str, Any]:
    """The current version of every agent the definition names, and of the agents
    those delegate to (their versions are frozen, so this closure is exact)."""
    pins: dict[str, str] = {}
    errors = []
    # (agent name, the step field that leads to it, the agent delegating to it)
    todo: list[tuple[str, str, str | None]] = [
        (name, f"steps.{step_id}.{field}", None)
        for step_id, field, name in agent_references(definition)]
    while todo:
        name, field, via = todo.pop(0)
        if name in pins:
            continue
        try:
            pins.update(service.current_versions([name]))
        except ValidationFailed:
            errors.append({"field": field, "message": f"no agent named {name!r}" if via is None
                           else f"agent {via!r} delegates to {name!r}, which does not exist"})
            continue
        todo += [(grant.ref, field, name) for grant in service.load_version(pins[name]).spec.tools
                 if grant.kind == "agent"]
    if errors:
        raise ValidationFailed(errors)
    return {"agents": pins} if pins else {}


def check_steps(definition: dict[str, Any]) -> dict[str, Any]:
    """What JSON Schema cannot say about these steps; errors name step and field."""
    errors: list[dict[str, str]] = []
    for step_id, step in Graph.of(definition).steps.items():
        check = _CHECKS.get(step.get("type", ""))
        if check:
            errors += [{"field": f"steps.{step_id}.{f}", "message": m} for f, m in check(step)]
    if errors:
        raise ValidationFailed(errors)
    return {}


def _check_routing(step: dict[str, Any]) -> list[tuple[str, str]]:
    problems = []
    statuses = [r.get("status") for r in step.get("routes") or []]
    if len(set(statuses)) != len(statuses):
        problems.append(("routes", "a status is routed twice"))
    if "min_confidence" in step and "low_confidence" not in step:
        problems.append(("low_confidence", "needed with min_confidence: the step to go to "
                                           "when the agent is less confident"))
    return problems


def _check_classify(step: dict[str, Any]) -> list[tuple[str, str]]:
    names = [r.get("name") for r in step.get("routes") or []]
    problems = [("routes", "route names must be unique")] if len(set(names)) != len(names) \
        else []
    for i, rule in enumerate(step.get("rules") or []):
        problems += _expression_problem(f"rules.{i}.when", rule.get("when"))
        if "route" not in rule and "next" not in rule:
            problems.append((f"rules.{i}", "give the rule a route or a next step"))
        if "route" in rule and rule["route"] not in names:
            problems.append((f"rules.{i}.route", f"names no route; one of {names}"))
    if "threshold" in step and not (step.get("rules") or step.get("human")):
        problems.append(("threshold", "needs rules or a human step to fall back to"))
    return problems


def _check_group(step: dict[str, Any]) -> list[tuple[str, str]]:
    agents = step.get("agents") or []
    mode = step.get("speaker", "round_robin")
    problems = []
    if mode == "rule" and not step.get("rules"):
        problems.append(("rules", "needed when the speaker is chosen by rule"))
    if mode == "selector" and not step.get("selector"):
        problems.append(("selector", "needed when the speaker is chosen by a selector agent"))
    for i, rule in enumerate(step.get("rules") or []):
        problems += _expression_problem(f"rules.{i}.when", rule.get("when"))
        if rule.get("agent") not in agents:
            problems.append((f"rules.{i}.agent", "must be one of the group's agents"))
    return problems


def _expression_problem(field: str, source: Any) -> list[tuple[str, str]]:
    problem = expressions.check_expression(str(source or ""))
    return [(field, problem)] if problem else []


_CHECKS = {"agent": _check_routing, "supervisor": _check_routing,
           "classify": _check_classify, "group": _check_group}


# --------------------------------------------------------------------------- registration

register_step_type("agent", StepSchema(
    {"agent": AGENT_NAME, "task": TASK, **ROUTING}, required=("agent",), templates=("task",),
    targets=("routes", "low_confidence")), run_agent)
register_step_type("classify", StepSchema(
    {"agent": AGENT_NAME, "task": TASK,
     "routes": {"type": "array", "minItems": 2, "maxItems": 50, "items": {
         "type": "object", "required": ["name", "next"], "additionalProperties": False,
         "properties": {"name": ROUTE_NAME, "description": {"type": "string",
                                                             "maxLength": 2000},
                        "next": NEXT}}},
     "threshold": CONFIDENCE,
     "rules": {"type": "array", "maxItems": 50, "items": {
         "type": "object", "required": ["when"], "additionalProperties": False,
         "properties": {"when": EXPR, "route": ROUTE_NAME, "next": NEXT}}},
     "human": ID},
    required=("agent", "routes"), templates=("task",), targets=("routes", "rules", "human")),
    run_classify)
register_step_type("supervisor", StepSchema(
    {"agent": AGENT_NAME, "task": TASK,
     "specialists": {"type": "array", "minItems": 1, "maxItems": 20, "uniqueItems": True,
                     "items": AGENT_NAME},
     "max_rounds": ROUNDS, "parallel": {"type": "boolean"}, **ROUTING},
    required=("agent", "specialists"), templates=("task",),
    targets=("routes", "low_confidence")), run_supervisor)
register_step_type("review_loop", StepSchema(
    {"drafter": AGENT_NAME, "reviewer": AGENT_NAME, "task": TASK, "max_rounds": ROUNDS,
     "escalate": ID},
    required=("drafter", "reviewer"), templates=("task",), targets=("escalate",)),
    run_review_loop)
register_step_type("group", StepSchema(
    {"agents": {"type": "array", "minItems": 2, "maxItems": 20, "uniqueItems": True,
                "items": AGENT_NAME},
     "task": TASK, "max_turns": {"type": "integer", "minimum": 1, "maximum": 50},
     "speaker": {"enum": ["round_robin", "rule", "selector"]},
     "rules": {"type": "array", "maxItems": 50, "items": {
         "type": "object", "required": ["when", "agent"], "additionalProperties": False,
         "properties": {"when": EXPR, "agent": AGENT_NAME}}},
     "selector": AGENT_NAME, "until": EXPR},
    required=("agents",), templates=("task",), expressions=("until",)), run_group)
workflows.register_publish_hook(check_steps)
workflows.register_publish_hook(pin_agents)
