"""The agent runtime: one invocation is a tool-calling loop (model, tool calls, results,
model, ...) until the agent gives its final answer, bounded by its limits
(`invocation.py`). A step's invocations share one `Runner`: its ledger, its limits,
the agent versions the workflow pinned, the providers, and threads.

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

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from flask import current_app

from overture.billing import enforce
from overture.billing.meters import AGENT_CALLS, model_dimension
from overture.orchestration.agents import embeddings, service, tools
from overture.orchestration.agents.invocation import Invocation
from overture.orchestration.agents.provider_failures import provider_failure
from overture.orchestration.agents.task import Answer, LoadedAgent, Resolve, Task
from overture.orchestration.llm import errors as llm_errors
from overture.orchestration.llm.base import DEFAULT_TIMEOUT, Provider
from overture.orchestration.llm.calls import ModelSettings, connection_from
from overture.orchestration.llm.metering import COST, INPUT_TOKENS, OUTPUT_TOKENS
from overture.orchestration.llm.prices import cost_of
from overture.orchestration.llm.registry import (
    make_offline_provider,
    make_provider,
    needs_credential,
)
from overture.orchestration.llm.types import ChatResult
from overture.orchestration.outcomes import StepFailed, budget_exceeded
from overture.orchestration.steps import StepContext
from overture.orchestration.testmode import mocks
from overture.platform import metrics
from overture.platform.db import db, scoped_to
from overture.platform.errors import OvertureError, PaymentRequired

MAX_PARALLEL = 8  # tool calls of one model turn run at once (supervisor)
INVOCATIONS = "agent_invocations"


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
