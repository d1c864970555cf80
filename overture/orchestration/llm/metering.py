"""Usage events for one model call, in the current tenant's scope.

They join the caller's transaction (the engine commits them with the step's output).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from overture.billing.usage import record_usage
from overture.orchestration.llm.prices import cost_of
from overture.orchestration.llm.types import ChatResult

INPUT_TOKENS = "llm_input_tokens"
OUTPUT_TOKENS = "llm_output_tokens"
COST = "llm_cost"


@dataclass(frozen=True)
class UsageContext:
    """Where the call belongs, for the usage events."""

    workflow_id: uuid.UUID | None = None
    run_id: uuid.UUID | None = None
    step_id: str | None = None
    agent_id: uuid.UUID | None = None


def meter(result: ChatResult, price_model: str, context: UsageContext) -> Decimal | None:
    """Record tokens and cost; returns the cost (None when the model has no price,
    in which case no cost event is written)."""
    ids = {"workflow_id": context.workflow_id, "run_id": context.run_id,
           "step_id": context.step_id, "agent_id": context.agent_id}
    record_usage(INPUT_TOKENS, result.input_tokens, **ids)
    record_usage(OUTPUT_TOKENS, result.output_tokens, **ids)
    cost = cost_of(result.provider, price_model, result.input_tokens, result.output_tokens)
    if cost is not None:
        record_usage(COST, cost, **ids)
    return cost
