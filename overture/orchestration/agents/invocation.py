"""One agent invocation: a tool-calling loop (model, tool calls, results, model, ...)
until the agent gives its final answer, bounded by its limits (model calls, tokens,
cost, rounds of tool calls). Each model call holds its cost on the workspace's budget
first; each tool call is checked (known, allowed, well-formed arguments) before it
runs: an action, a knowledge search, a note kept, or a task delegated to another
agent (`MAX_DEPTH` levels at most). What it uses and does goes to the step's ledger
through its runner (`runtime.Runner`, shared by the step's invocations)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from overture.billing import enforce
from overture.billing.meters import EMBEDDINGS, MODEL_COST
from overture.orchestration.agents import memory, tools
from overture.orchestration.agents.contract import InvalidAnswer, envelope, parse_answer
from overture.orchestration.agents.prompts import NOTES_IN_PROMPT, WRAP_UP, system_prompt
from overture.orchestration.agents.provider_failures import provider_failure
from overture.orchestration.agents.task import Answer, LoadedAgent, Task
from overture.orchestration.agents.watching import Showing
from overture.orchestration.llm import errors as llm_errors
from overture.orchestration.llm.base import Provider
from overture.orchestration.llm.prices import cost_of
from overture.orchestration.llm.registry import needs_credential
from overture.orchestration.llm.types import (
    ChatRequest,
    ChatResult,
    Message,
    ResponseFormat,
    ToolCall,
)
from overture.orchestration.outcomes import TRANSIENT, StepFailed
from overture.orchestration.steps import StepContext
from overture.orchestration.testmode import mocks
from overture.platform.errors import OvertureError

MAX_DEPTH = 3  # delegation levels below the step's own agents
ACTION_TIMEOUT = 30.0
FRAMING_TOKENS = 8  # per message or tool, beyond its text: roles, separators, names
TOOL_CALLS = "agent_tool_calls"


class StepRunner(Protocol):
    """What an invocation uses of its step's runner (`runtime.Runner`): the step, its
    ledger and limits, the providers and threads its invocations share, and more
    invocations (a task delegated to another agent)."""

    ctx: StepContext

    @property
    def tenant_id(self) -> uuid.UUID: ...

    def invoke(self, name: str, task: Task, depth: int = 0,
               key_prefix: str | None = None) -> Answer: ...

    def hold(self, meter: str, amount: Decimal, key: str, agent: LoadedAgent,
             certain: bool = False) -> bool: ...

    def note(self, action: str, agent: LoadedAgent, **details: Any) -> None: ...

    def meter(self, metric: str, quantity: int | Decimal, agent: LoadedAgent) -> None: ...

    def meter_model_call(self, agent: LoadedAgent, result: ChatResult) -> Decimal | None: ...

    def delegated(self, by: LoadedAgent, task: str, answer: Answer) -> None: ...

    def provider(self, agent: LoadedAgent, task: Task, toolbox: tools.Toolbox) -> Provider: ...

    def in_parallel(self, jobs: list[Callable[[], Any]]) -> list[Any]: ...


@dataclass
class _Planned:
    call: ToolCall
    tool: tools.AgentTool | None
    problem: str | None = None  # the model's to fix
    refused: str | None = None  # not allowed
    index: int = 0


class Invocation:
    def __init__(self, runner: StepRunner, agent: LoadedAgent, task: Task, depth: int,
                 key_prefix: str) -> None:
        self.runner, self.agent, self.task, self.depth = runner, agent, task, depth
        self.spec, self.key_prefix = agent.spec, key_prefix
        try:
            self.toolbox = tools.toolbox_for(self.spec, task.specialists)
        except OvertureError as error:
            raise StepFailed("agent_misconfigured",
                             f"agent {agent.name!r}: {error.detail}") from error
        self.provider = runner.provider(agent, task, self.toolbox)
        self.schema = task.output_schema if task.output_schema is not None \
            else self.spec.output.schema
        notes = self._notes() if self.spec.notes else None
        self.messages: list[Message] = [
            Message(role="system", content=system_prompt(self.spec, self.schema, notes)),
            *task.history, Message(role="user", content=task.prompt)]
        self.model_calls = self.tool_calls = self.rounds = 0
        self.input_tokens = self.output_tokens = 0
        self.cost = Decimal(0)
        self.strikes = self.corrections = 0
        self.told_to_wrap_up = False
        self.showing = Showing(task.watcher) \
            if task.watcher is not None and self.schema is None else None

    def _notes(self) -> list[str]:
        try:
            return [n.text for n in memory.recall(self.agent.agent_id, NOTES_IN_PROMPT)]
        except OvertureError as error:
            raise StepFailed("agent_not_found",
                             f"agent {self.agent.name!r}: {error.detail}") from error

    def run(self) -> Answer:
        while True:
            wrapping_up = self._wrapping_up()
            result = self._call_model()
            self.messages.append(result.as_message())
            if result.tool_calls:
                if wrapping_up:
                    self._exhausted("max_rounds", f"it kept calling tools after its "
                                                  f"{self.task.max_rounds} round(s)")
                self.rounds += 1
                self.messages += self._run_tools(result.tool_calls)
                continue
            answer = self._final(result)
            if answer is not None:
                return answer

    def _wrapping_up(self) -> bool:
        """After its rounds of tool calls the agent is told, once, to answer."""
        if self.task.max_rounds is None or self.rounds < self.task.max_rounds:
            return False
        if not self.told_to_wrap_up:
            self.messages.append(Message(role="user", content=WRAP_UP))
            self.told_to_wrap_up = True
        return True

    # ------------------------------------------------------------------ the model

    def _call_model(self) -> ChatResult:
        self._check_budget()
        limits, model = self.spec.limits, self.spec.model
        request = ChatRequest(
            model=model.model, messages=tuple(self.messages), tools=self.toolbox.offered(),
            temperature=model.temperature,
            max_output_tokens=max(1, min(model.max_output_tokens,
                                         limits.max_tokens - self._tokens())),
            response_format=ResponseFormat(envelope(self.schema), name="answer", strict=False)
            if self.schema is not None else None)
        key = f"{self.key_prefix}:model:{self.model_calls}"
        held = self.runner.hold(MODEL_COST, self._estimate(request), key, self.agent)
        try:
            result = self._ask(request)
        except llm_errors.ProviderError as error:
            if held:
                enforce.complete(self.runner.tenant_id, key, Decimal(0))
            raise provider_failure(self.agent, error) from error
        self.model_calls += 1
        self.input_tokens += result.input_tokens
        self.output_tokens += result.output_tokens
        cost = self.runner.meter_model_call(self.agent, result) or Decimal(0)
        self.cost += cost
        if held:
            enforce.complete(self.runner.tenant_id, key, cost)
        return result

    def _estimate(self, request: ChatRequest) -> Decimal:
        """At most what the call can cost, at the model's price (0 without one): a
        token is at least one byte of the prompt (messages, tool calls, the tools'
        schemas, a few tokens of framing each), and every output token it may use."""
        model = self.spec.model
        if not needs_credential(model.provider):
            return Decimal(0)
        sent = [*(m.content for m in request.messages),
                *(json.dumps(c.arguments, default=str) for m in request.messages
                  for c in m.tool_calls),
                *(t.name + t.description + json.dumps(t.parameters) for t in request.tools)]
        tokens = sum(len(text.encode()) + FRAMING_TOKENS for text in sent)
        return cost_of(model.provider, model.model, tokens,
                       request.max_output_tokens) or Decimal(0)

    def _ask(self, request: ChatRequest) -> ChatResult:
        if self.showing is not None:
            return self.showing.ask(self.provider, request)
        return self.provider.chat(request)

    def _tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def _check_budget(self) -> None:
        """Before each model call: what was spent stays spent (and metered)."""
        limits = self.spec.limits
        if self.model_calls >= limits.max_iterations:
            self._exhausted("max_iterations", f"it made {self.model_calls} model calls, its "
                                              "maximum, without a final answer")
        if self._tokens() >= limits.max_tokens:
            self._exhausted("max_tokens", f"it used {self._tokens()} tokens of its "
                                          f"{limits.max_tokens}")
        if limits.max_cost is not None and self.cost >= limits.max_cost:
            self._exhausted("max_cost", f"it spent ${self.cost:.6f} of its ${limits.max_cost}")

    def _exhausted(self, limit: str, why: str) -> None:
        raise StepFailed("agent_budget_exhausted", f"agent {self.agent.name!r} stopped: {why}",
                         {"agent": self.agent.name, "limit": limit, **self._usage()})

    def _usage(self) -> dict[str, int]:
        return {"model_calls": self.model_calls, "tool_calls": self.tool_calls,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens}

    # ------------------------------------------------------------------ the answer

    def _final(self, result: ChatResult) -> Answer | None:
        try:
            status, confidence, output = parse_answer(result.text, self.schema)
        except InvalidAnswer as invalid:
            if self.corrections:
                raise StepFailed("agent_invalid_output", f"agent {self.agent.name!r} answered "
                                 f"twice without a usable answer: {invalid.problem}",
                                 {"agent": self.agent.name}) from invalid
            self.corrections += 1
            self.messages.append(Message(role="user", content=(
                f"Your answer cannot be used: {invalid.problem}. Reply again with only the "
                "JSON object described in your instructions.")))
            return None
        return Answer(status, confidence, output, self.agent.name, self.agent.number,
                      self.spec.model.provider, self.spec.model.model, self._usage())

    # ------------------------------------------------------------------ tools

    def _run_tools(self, calls: tuple[ToolCall, ...]) -> list[Message]:
        plans = [self._plan(call) for call in calls]
        malformed = [p for p in plans if p.problem]
        if malformed:
            if self.strikes:
                first = malformed[0]
                raise StepFailed("agent_malformed_tool_call", (
                    f"agent {self.agent.name!r} sent invalid arguments for "
                    f"{first.call.name!r} again after being told why: {first.problem}"),
                    {"agent": self.agent.name, "tool": first.call.name})
            self.strikes += 1
        jobs = [lambda p=p: self._answer_call(p) for p in plans]
        if self.task.parallel:
            return self.runner.in_parallel(jobs)
        return [job() for job in jobs]

    def _plan(self, call: ToolCall) -> _Planned:
        tool = self.toolbox.get(call.name)
        if tool is None:
            return _Planned(call, None, refused=f"{call.name!r} is not one of this agent's "
                                                "tools")
        if tool.refusal:
            return _Planned(call, tool, refused=tool.refusal)
        problem = tools.argument_problem(tool, call)
        if problem:
            return _Planned(call, tool, problem=problem)
        self.tool_calls += 1
        return _Planned(call, tool, index=self.tool_calls)

    def _answer_call(self, plan: _Planned) -> Message:
        call = plan.call
        if plan.refused:
            self.runner.note("agent.tool_refused", self.agent, tool=call.name,
                             reason=plan.refused)
            return _tool_message(call.id, f"refused: {plan.refused}", error=True)
        if plan.problem:
            return _tool_message(call.id, f"invalid arguments for {call.name}: {plan.problem}. "
                                          "Fix them and call the tool again.", error=True)
        assert plan.tool is not None
        self.runner.note("agent.tool_called", self.agent, tool=call.name, kind=plan.tool.kind,
                         input_digest=tools.input_digest(call.arguments))
        self.runner.meter(TOOL_CALLS, 1, self.agent)
        try:
            value = self._execute(plan.tool, call.arguments, f"{self.key_prefix}-{plan.index}")
        except tools.ToolError as failure:
            return _tool_message(call.id, f"error: {failure}", error=True)
        return _tool_message(call.id, tools.result_text(value))

    def _execute(self, tool: tools.AgentTool, arguments: dict[str, Any], key: str) -> Any:
        ctx = self.runner.ctx
        if ctx.testing and tool.kind in ("action", "notes"):
            if tool.kind == "notes":  # a test run's agent keeps nothing
                return {"remembered": False, "note": "test run: notes are not kept"}
            mocked, output = mocks.tool_action(ctx.run_id, tool.connection_id,
                                               tool.action_key, arguments)
            if mocked:
                return output
        if tool.kind == "action":
            return tools.run_action(tool, arguments, key,
                                    min(ACTION_TIMEOUT, self.runner.ctx.timeout),
                                    self.runner.ctx.attribution(self.agent.agent_id))
        if tool.kind == "knowledge":
            found = tools.run_search(tool, arguments)
            if found["passages"]:  # an empty collection is answered without embedding
                self.runner.meter(EMBEDDINGS, 1, self.agent)
            return found
        if tool.kind == "notes":
            return tools.run_remember(self.agent.agent_id, arguments,
                                      self.spec.notes_retention_days)
        return self._delegate(tool, arguments["task"], key)

    def _delegate(self, tool: tools.AgentTool, task: str, key: str) -> dict[str, Any]:
        if self.depth >= MAX_DEPTH:
            raise tools.ToolError(f"delegation deeper than {MAX_DEPTH} levels is not allowed; "
                                  "do the task yourself")
        try:
            answer = self.runner.invoke(tool.ref, Task(prompt=task), self.depth + 1, key)
        except StepFailed as failure:
            if failure.code in TRANSIENT:
                raise  # the step's retry policy decides, not the model
            raise tools.ToolError(f"agent {tool.ref!r} failed: {failure.message}") from failure
        self.runner.delegated(self.agent, task, answer)
        return {k: v for k, v in answer.to_json().items() if k != "usage"}


def _tool_message(call_id: str, content: str, error: bool = False) -> Message:
    return Message(role="tool", content=content, tool_call_id=call_id, is_error=error)
