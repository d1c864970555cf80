"""Usage events for one model call, in the current tenant's scope.

They join the caller's transaction (the engine commits them with the step's output).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from overture.billing import usage
from overture.billing.meters import INPUT_TOKENS as INPUT_TOKENS
from overture.billing.meters import MODEL_COST, model_dimension
from overture.billing.meters import OUTPUT_TOKENS as OUTPUT_TOKENS
from overture.orchestration.llm.prices import cost_of
from overture.orchestration.llm.types import ChatResult
from overture.platform import metrics

COST = MODEL_COST


@dataclass(frozen=True)
class UsageContext:
    """Where the call belongs, for the usage events."""

    workflow_id: uuid.UUID | None = None
    run_id: uuid.UUID | None = None
    step_id: str | None = None
    agent_id: uuid.UUID | None = None


def meter(result: ChatResult, price_model: str, context: UsageContext) -> Decimal | None:
    """Record tokens and cost, per provider and model; returns the cost (None when the
    model has no price, in which case no cost event is written)."""
    model = model_dimension(result.provider, price_model)
    entries = [usage.Entry(INPUT_TOKENS, Decimal(result.input_tokens), model),
               usage.Entry(OUTPUT_TOKENS, Decimal(result.output_tokens), model)]
    cost = cost_of(result.provider, price_model, result.input_tokens, result.output_tokens)
    if cost is not None:
        entries.append(usage.Entry(COST, cost, model))
    metrics.model_call(result.input_tokens, result.output_tokens, cost)
    usage.record(entries, attribution=usage.Attribution(
        workflow_id=context.workflow_id, run_id=context.run_id, step_id=context.step_id,
        agent_id=context.agent_id))
    return cost
