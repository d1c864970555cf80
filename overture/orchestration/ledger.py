"""What a step consumed and did while it ran outside any transaction: usage, audit
events, tokens and cost, model calls. The executor writes into its context's ledger;
the engine writes the ledger in the one transaction that records the step, whatever
the outcome (a step that failed half way still pays for what it used).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from overture.billing.usage import Entry
from overture.platform.audit import Actor


@dataclass(frozen=True)
class AuditEntry:
    action: str
    target_type: str | None = None
    target_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    actor: Actor | None = None  # None: the actor in context (the system, in a worker)


@dataclass
class Ledger:
    usage: list[Entry] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    tokens: int = 0
    cost: Decimal = Decimal(0)
    agent_calls: int = 0  # counted against the run's `max_agent_calls` policy
    holds: list[str] = field(default_factory=list)  # budget holds to settle (billing.enforce)

    def meter(self, metric: str, quantity: int | float | Decimal = 1,
              agent_id: uuid.UUID | str | None = None, dimension: str = "") -> None:
        self.usage.append(Entry(metric, Decimal(str(quantity)), dimension, _uuid(agent_id)))

    def note(self, action: str, *, target_type: str | None = None, target_id: object = None,
             details: dict[str, Any] | None = None, actor: Actor | None = None) -> None:
        self.audit.append(AuditEntry(action, target_type,
                                     str(target_id) if target_id is not None else None,
                                     dict(details or {}), actor))

    def add_tokens(self, tokens: int, cost: Decimal | None) -> None:
        self.tokens += tokens
        self.cost += cost or Decimal(0)

    @property
    def empty(self) -> bool:
        return not (self.usage or self.audit or self.tokens or self.agent_calls or self.holds)


def _uuid(value: uuid.UUID | str | None) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))
