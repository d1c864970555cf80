"""What a step asks of one agent invocation (`Task`) and what it answers (`Answer`, by
the contract in `contract.py`), and the agent version an invocation runs
(`LoadedAgent`, found by name with a `Resolve`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from overture.orchestration.agents.spec import AgentSpec
from overture.orchestration.agents.watching import Watcher
from overture.orchestration.llm.local_provider import Classify, Review
from overture.orchestration.llm.types import Message


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
