"""The agent runtime: one invocation is a tool-calling loop (model, tool calls, results,
model, ...) until the agent gives its final answer, bounded by its limits.

    runner = Runner.for_step(ctx)              # one per step execution
    answer = runner.invoke("triager", Task(prompt="..."))

Everything an invocation uses and does goes into the step's ledger (the engine writes
it with the step's outcome, also when the step fails): model tokens and cost
(`llm_input_tokens`, `llm_output_tokens`, `llm_cost`), `agent_invocations`,
`agent_tool_calls`, and the audit events `agent.tool_called` (a digest of the input,
never the input) and `agent.tool_refused`.

Memory: an agent whose spec enables `notes` reads its newest notes in its system prompt
and may keep one with the `remember` tool; a portal chat (`chat.py`) passes the
conversation's earlier turns as `Task.history`.

The final answer follows one contract (`contract.py`): {"status": ok | needs_human |
needs_info | failed, "confidence": 0..1 or null, "output": ...}. Malformed tool
arguments and unusable answers go back to the model once with the reason; the second
time the agent fails clearly.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from flask import current_app

from overture.billing import enforce
from overture.billing.meters import AGENT_CALLS, EMBEDDINGS, MODEL_COST, model_dimension
from overture.orchestration.agents import embeddings, memory, service, tools
from overture.orchestration.agents.contract import InvalidAnswer, envelope, parse_answer
from overture.orchestration.agents.spec import AgentSpec
from overture.orchestration.agents.watching import Showing, Watcher
from overture.orchestration.llm import errors as llm_errors
from overture.orchestration.llm.base import DEFAULT_TIMEOUT, Provider
from overture.orchestration.llm.calls import ModelSettings, connection_from
from overture.orchestration.llm.local_provider import Classify, Review
from overture.orchestration.llm.metering import COST, INPUT_TOKENS, OUTPUT_TOKENS
from overture.orchestration.llm.prices import cost_of
from overture.orchestration.llm.registry import (
    make_offline_provider,
    make_provider,
    needs_credential,
)
from overture.orchestration.llm.scripted_provider import ScriptExhausted, ScriptInvalid
from overture.orchestration.llm.types import (
    ChatRequest,
    ChatResult,
    Message,
    ResponseFormat,
    ToolCall,
)
from overture.orchestration.outcomes import TRANSIENT, StepFailed, budget_exceeded
from overture.orchestration.steps import StepContext
from overture.orchestration.testmode import mocks
from overture.platform import metrics
from overture.platform.db import db, scoped_to
from overture.platform.errors import OvertureError, PaymentRequired

MAX_DEPTH = 3  # delegation levels below the step's own agents
MAX_PARALLEL = 8  # tool calls of one model turn run at once (supervisor)
ACTION_TIMEOUT = 30.0
NOTES_IN_PROMPT = 20  # the newest notes an agent with `notes` reads in its system prompt
NOTES_PROMPT_CHARS = 8_000  # and at most this much of them
INVOCATIONS = "agent_invocations"
FRAMING_TOKENS = 8  # per message or tool, beyond its text: roles, separators, names
TOOL_CALLS = "agent_tool_calls"
WRAP_UP = ("You have used all your rounds of tool calls. Do not call any more tools: give "
           "your final answer now, from what you have.")

# Provider errors, as step error codes the retry policy understands (first match wins).
PROVIDER_FAILURES: tuple[tuple[type[llm_errors.ProviderError], str], ...] = (
    (llm_errors.ProviderRateLimited, "rate_limited"),
    (llm_errors.ProviderUnavailable, "transient"),
    (llm_errors.ProviderAuthFailed, "llm_auth_failed"),
    (llm_errors.ProviderBlocked, "blocked_destination"),
    (ScriptExhausted, "agent_script_exhausted"),
    (ScriptInvalid, "agent_misconfigured"),
    (llm_errors.UnknownProvider, "agent_misconfigured"),
    (llm_errors.ProviderRequestRejected, "llm_request_rejected"),
    (llm_errors.ProviderError, "llm_error"),
)


class LoadedAgent(Protocol):
    """One agent version, as `agents.service.load_version` gives it."""

    agent_id: uuid.UUID
    version_id: uuid.UUID
    number: int
    name: str
    spec: AgentSpec


Resolve = Callable[[str], LoadedAgent]


@dataclass(frozen=True)
class Task:
    """What a step asks of one invocation, beyond the agent's own configuration."""

    prompt: str  # the user message: the step's input mapping, and what to do with it
    data: Any = None  # that input as data, for the local provider's templates and searches
    label: str = "agent"  # unique within the step: the root of its idempotency keys
    output_schema: dict[str, Any] | None = None  # replaces the agent's own (classify, review)
    classify: Classify | None = None  # for the local provider
    review: Review | None = None  # for the local provider
    specialists: tuple[str, ...] = ()  # more agents it may ask (a supervisor's)
    max_rounds: int | None = None  # rounds of tool calls before it must answer
    parallel: bool = False  # run one turn's tool calls at once
    history: tuple[Message, ...] = ()  # earlier turns of a conversation, oldest first
    watcher: Watcher | None = None  # someone reading the answer as it is produced (a chat)


@dataclass(frozen=True)
class Answer:
    status: str
    confidence: float | None
    output: Any
    agent: str
    version: int
    provider: str
    model: str
    usage: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "confidence": self.confidence, "output": self.output,
                "agent": self.agent, "version": self.version, "provider": self.provider,
                "model": self.model, "usage": dict(self.usage)}


# --------------------------------------------------------------------------- runner


class Runner:
    """One step's agent work: its ledger, the agent versions it may use, and provider
    state shared by its invocations (a scripted agent's place in its script).
    Thread-safe: a supervisor's specialists run in threads."""

    def __init__(self, ctx: StepContext, resolve: Resolve) -> None:
        self.ctx = ctx
        self._resolve = resolve
        self._agents: dict[str, LoadedAgent] = {}
        self._providers: dict[uuid.UUID, Provider] = {}
        self._script: Provider | None = None  # a test run's scripted turns for the step
        self._lock = threading.RLock()
        self.delegations: list[dict[str, Any]] = []

    @classmethod
    def for_step(cls, ctx: StepContext) -> Runner:
        if ctx.testing:  # a test run may try other agent versions than those pinned
            overrides = mocks.agent_versions(ctx)
            if overrides:
                agents = {**((ctx.pins or {}).get("agents") or {}), **overrides}
                return cls(ctx, pinned({**(ctx.pins or {}), "agents": agents}))
        return cls(ctx, pinned(ctx.pins))

    def agent(self, name: str) -> LoadedAgent:
        with self._lock:
            if name not in self._agents:
                self._agents[name] = self._resolve(name)
            return self._agents[name]

    def invoke(self, name: str, task: Task, depth: int = 0,
               key_prefix: str | None = None) -> Answer:
        agent = self.agent(name)
        prefix = key_prefix or f"{self.ctx.idempotency_key}-{task.label}"
        self.hold(AGENT_CALLS, Decimal(1), f"{prefix}:invoke", agent, certain=True)
        with self._lock:
            self.ctx.ledger.agent_calls += 1
            self.ctx.ledger.meter(INVOCATIONS, 1, agent.agent_id)
        return Invocation(self, agent, task, depth, prefix).run()

    # ------------------------------------------------------------------ limits

    def hold(self, meter: str, amount: Decimal, key: str, agent: LoadedAgent,
             certain: bool = False) -> bool:
        """Hold `amount` on the workspace's limits of `meter` before a call (settled
        with the ledger); the step fails with `budget_exceeded` when none is left."""
        if self.ctx.testing:  # a test run uses no budget
            return False
        workflow_id = uuid.UUID(self.ctx.workflow_id) if self.ctx.workflow_id else None
        try:
            held = enforce.hold(self.tenant_id, meter, amount, key, agent_id=agent.agent_id,
                                workflow_id=workflow_id, certain=certain,
                                wait=min(enforce.WAIT, self.ctx.timeout / 2))
        except PaymentRequired as refused:
            raise budget_exceeded(refused) from refused
        if held:
            with self._lock:
                self.ctx.ledger.holds.append(key)
        return held

    @property
    def tenant_id(self) -> uuid.UUID:
        return uuid.UUID(self.ctx.tenant_id)

    # ------------------------------------------------------------------ the ledger

    def note(self, action: str, agent: LoadedAgent, **details: Any) -> None:
        with self._lock:
            self.ctx.ledger.note(action, target_type="agent", target_id=agent.agent_id,
                                 details={"agent": agent.name, **details})

    def meter(self, metric: str, quantity: int | Decimal, agent: LoadedAgent) -> None:
        with self._lock:
            self.ctx.ledger.meter(metric, quantity, agent.agent_id)

    def meter_model_call(self, agent: LoadedAgent, result: ChatResult) -> Decimal | None:
        provider = agent.spec.model.provider
        # A test run's stand-in (scripted, local) is priced as the agent's own model: an
        # estimate of what the answer would have cost.
        priced_as = provider if self.ctx.testing else result.provider
        cost = None if not needs_credential(provider) else cost_of(
            priced_as, agent.spec.model.model, result.input_tokens, result.output_tokens)
        model = model_dimension(result.provider or provider, agent.spec.model.model)
        with self._lock:
            ledger = self.ctx.ledger
            if result.input_tokens:
                ledger.meter(INPUT_TOKENS, result.input_tokens, agent.agent_id, model)
            if result.output_tokens:
                ledger.meter(OUTPUT_TOKENS, result.output_tokens, agent.agent_id, model)
            if cost is not None:
                ledger.meter(COST, cost, agent.agent_id, model)
            ledger.add_tokens(result.input_tokens + result.output_tokens, cost)
        metrics.model_call(result.input_tokens, result.output_tokens, cost)
        return cost

    def delegated(self, by: LoadedAgent, task: str, answer: Answer) -> None:
        with self._lock:
            self.delegations.append({"by": by.name, "agent": answer.agent, "task": task,
                                     "status": answer.status, "output": answer.output})

    # ------------------------------------------------------------------ providers

    def provider(self, agent: LoadedAgent, task: Task, toolbox: tools.Toolbox) -> Provider:
        spec = agent.spec
        if self.ctx.testing:
            scripted = self._test_script()
            if scripted is not None:
                return scripted
        offline = spec.model.provider == "local" or (
            self.ctx.testing and needs_credential(spec.model.provider)
            and not mocks.live_models_allowed(self.ctx))
        if offline:  # built per task: it is told what to do
            return make_offline_provider(
                "local", embeddings.embed, classify=task.classify, review=task.review,
                template=spec.instructions, search_tools=toolbox.names("knowledge"),
                delegate_tools=toolbox.names("agent"), data=task.data)
        with self._lock:
            if agent.version_id not in self._providers:
                self._providers[agent.version_id] = self._new_provider(agent)
            return self._providers[agent.version_id]

    def _test_script(self) -> Provider | None:
        """A test run's scripted turns for this step: one provider for all its agents."""
        turns = mocks.scripted_turns(self.ctx)
        if turns is None:
            return None
        with self._lock:
            if self._script is None:
                self._script = make_offline_provider("scripted", turns)
            return self._script

    def _new_provider(self, agent: LoadedAgent) -> Provider:
        spec = agent.spec
        try:
            if spec.model.provider == "scripted":
                return make_offline_provider("scripted", spec.script)
            if not spec.credential_id:
                raise StepFailed("agent_misconfigured", f"agent {agent.name!r} uses "
                                 f"{spec.model.provider} and names no credential")
            settings = ModelSettings(spec.model.provider, spec.model.model,
                                     timeout=min(DEFAULT_TIMEOUT, self.ctx.timeout))
            return make_provider(connection_from(
                settings, spec.credential_id,
                f"agent {agent.name} ({spec.model.provider} {spec.model.model})"))
        except llm_errors.ProviderError as error:
            raise provider_failure(agent, error) from error
        except OvertureError as error:  # the credential is gone, say
            raise StepFailed("agent_misconfigured",
                             f"agent {agent.name!r}: {error.detail}") from error

    # ------------------------------------------------------------------ threads

    def in_parallel(self, jobs: list[Callable[[], Any]]) -> list[Any]:
        """Run jobs in threads, each in its own app context and this tenant's scope
        (a session and a scope belong to one thread); results in order."""
        if len(jobs) < 2:
            return [job() for job in jobs]
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        tenant_id = uuid.UUID(self.ctx.tenant_id)

        def run(job: Callable[[], Any]) -> Any:
            with app.app_context(), scoped_to(tenant_id):
                try:
                    return job()
                finally:
                    db.session.remove()

        with ThreadPoolExecutor(max_workers=min(len(jobs), MAX_PARALLEL)) as pool:
            futures = [pool.submit(run, job) for job in jobs]
            return [f.result() for f in futures]


def pinned(pins: dict[str, Any]) -> Resolve:
    """Agents by name, at the versions the workflow version pinned when published."""
    versions = dict((pins or {}).get("agents") or {})

    def resolve(name: str) -> LoadedAgent:
        version_id = versions.get(name)
        if version_id is None:
            raise StepFailed("agent_not_pinned", f"agent {name!r} is not pinned by this "
                             "workflow version; publish the workflow again")
        try:
            return service.load_version(version_id)
        except OvertureError as error:
            raise StepFailed("agent_not_found", f"agent {name!r}: {error.detail}") from error

    return resolve


def provider_failure(agent: LoadedAgent, error: llm_errors.ProviderError) -> StepFailed:
    code = next(c for kind, c in PROVIDER_FAILURES if isinstance(error, kind))
    return StepFailed(code, f"agent {agent.name!r}: {error.detail}",
                      {"agent": agent.name, "provider": agent.spec.model.provider})


# --------------------------------------------------------------------------- one invocation


@dataclass
class _Planned:
    call: ToolCall
    tool: tools.AgentTool | None
    problem: str | None = None  # the model's to fix
    refused: str | None = None  # not allowed
    index: int = 0


class Invocation:
    def __init__(self, runner: Runner, agent: LoadedAgent, task: Task, depth: int,
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


def system_prompt(spec: AgentSpec, schema: dict[str, Any] | None,
                  notes: list[str] | None = None) -> str:
    parts = [f"You are {spec.name}" + (f", {spec.role}." if spec.role else ".")]
    if spec.instructions:
        parts.append(spec.instructions)
    if notes is not None:
        parts.append(notes_section(notes))
    parts.append(
        "When you are done, reply with only a JSON object: {\"status\": \"ok\" | "
        "\"needs_human\" | \"needs_info\" | \"failed\", \"confidence\": a number from 0 to 1, "
        "\"output\": your result}. Say needs_human when a person must decide, needs_info "
        "when information is missing, failed when you cannot do the task.")
    if schema is not None:
        parts.append("`output` must match this JSON Schema: " + json.dumps(schema))
    return "\n\n".join(parts)


def notes_section(notes: list[str]) -> str:
    """The agent's notes, newest first, cut to NOTES_PROMPT_CHARS: a prompt that grows
    with every note would crowd out the task and cost more each call."""
    head = (f"Your notes from earlier work, newest first (keep one with the "
            f"`{tools.REMEMBER}` tool):")
    if not notes:
        return head + "\n(none yet)"
    lines: list[str] = []
    used = 0
    for text in notes:
        line = "- " + " ".join(text.split())
        if used + len(line) > NOTES_PROMPT_CHARS:
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join([head, *lines])
