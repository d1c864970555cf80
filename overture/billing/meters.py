"""The meter catalogue: every quantity Overture counts for billing, by name.

A usage event names one meter, a quantity (a `Decimal`) and, where the meter is split
further, a dimension: `provider:model` for model tokens and cost (`openai:gpt-4o-mini`),
the connector key for action calls (`slack`). Events also carry the tenant and, where
they apply, the workflow, run, step (and step run) and agent; portal activity carries
the user.

Three kinds of meters, which differ in how a period's numbers read:

- `counter`: things done; a period's quantity is the sum of its events.
- `gauge`: a level kept as signed changes (knowledge storage: + at ingest, - at
  delete); a period's quantity is the net change, its `level` the sum of every change
  before the period's end.
- `distinct`: one event per subject per calendar month (portal users): a month's
  quantity is the number of distinct subjects; longer periods add months up
  (user-months).

The names of the first meters predate this catalogue (`steps`, `action_calls`,
`llm_*`, `agent_*`); stored events keep them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "gauge", "distinct"]


@dataclass(frozen=True)
class Meter:
    name: str
    label: str
    unit: str
    kind: Kind
    description: str
    dimension: str | None = None  # what the dimension holds, if the meter has one


RUNS_STARTED = "runs_started"
STEPS = "steps"
AGENT_CALLS = "agent_invocations"
AGENT_TOOL_CALLS = "agent_tool_calls"
INPUT_TOKENS = "llm_input_tokens"
OUTPUT_TOKENS = "llm_output_tokens"
MODEL_COST = "llm_cost"
ACTION_CALLS = "action_calls"
KNOWLEDGE_BYTES = "knowledge_bytes"
EMBEDDINGS = "embeddings"
PORTAL_USERS = "portal_active_users"
MCP_CALLS = "mcp_calls"

MODEL = "provider:model"

CATALOGUE: tuple[Meter, ...] = (
    Meter(RUNS_STARTED, "Runs started", "runs", "counter",
          "Runs created, child runs (subworkflows) included; counted once per run when "
          "it is created."),
    Meter(STEPS, "Steps executed", "steps", "counter",
          "Step runs that finished (succeeded, failed for good, or started waiting), "
          "once each however many attempts they took."),
    Meter(AGENT_CALLS, "Agent calls", "calls", "counter",
          "Invocations of an agent, by a step or a portal chat, delegations included."),
    Meter(AGENT_TOOL_CALLS, "Agent tool calls", "calls", "counter",
          "Tools an agent called (actions, knowledge searches, other agents, notes)."),
    Meter(INPUT_TOKENS, "Model input tokens", "tokens", "counter",
          "Prompt tokens, per provider and model.", MODEL),
    Meter(OUTPUT_TOKENS, "Model output tokens", "tokens", "counter",
          "Completion tokens, per provider and model.", MODEL),
    Meter(MODEL_COST, "Model cost", "USD", "counter",
          "What the provider charges for those tokens, from the price book (models "
          "without a price count tokens only).", MODEL),
    Meter(ACTION_CALLS, "Connector action calls", "calls", "counter",
          "Calls to an app's action, per connector, whatever their outcome.", "connector"),
    Meter(KNOWLEDGE_BYTES, "Knowledge storage", "bytes", "gauge",
          "Bytes kept for knowledge: each document's text and its passages' embeddings."),
    Meter(EMBEDDINGS, "Embeddings", "texts", "counter",
          "Texts embedded: a document's passages at ingest, a query at each search."),
    Meter(MCP_CALLS, "MCP tool calls", "calls", "counter",
          "Calls of the workspace's tools by MCP clients, per kind of tool (workflow or "
          "agent), whatever their outcome.", "tool kind"),
    Meter(PORTAL_USERS, "Portal users active", "users", "distinct",
          "End users with portal activity (a sign-in, a run started) in a calendar month, "
          "each counted once that month."),
)

BY_NAME: dict[str, Meter] = {m.name: m for m in CATALOGUE}


def meter(name: str) -> Meter:
    """The meter of this name; an unknown name (an old event's) gets a plain counter."""
    found = BY_NAME.get(name)
    if found is not None:
        return found
    return Meter(name, name.replace("_", " ").capitalize(), "", "counter", "")


def model_dimension(provider: str, model: str) -> str:
    return f"{provider}:{model}"
