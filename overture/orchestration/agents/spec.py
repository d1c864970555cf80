"""An agent's configuration as plain, frozen data: what a version stores (as JSON),
what the runtime runs. Parsing validates; nothing here touches the database.

    spec = AgentSpec.from_json(version.config)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import jsonschema
from jsonschema.exceptions import SchemaError

from overture.platform.errors import ValidationFailed

STATUSES = ("ok", "needs_human", "needs_info", "failed")
Status = Literal["ok", "needs_human", "needs_info", "failed"]
PROVIDERS = ("openai", "azure_openai", "anthropic", "local", "scripted")
ToolKind = Literal["action", "agent", "knowledge"]


@dataclass(frozen=True)
class ModelConfig:
    provider: str  # one of PROVIDERS
    model: str
    temperature: float | None = None
    max_output_tokens: int = 1024


@dataclass(frozen=True)
class ToolGrant:
    """One tool the agent may use, and nothing else.

    - action: `ref` is "<connection name>/<action key>" (a connector action through one of
      the tenant's connections); a side-effecting action needs `allow_side_effects`.
    - agent: `ref` is another agent's name (delegation: the agent is called as a tool).
    - knowledge: `ref` is a knowledge collection's name (retrieval).
    `name` is what the model sees (defaults to a slug of `ref`).
    """

    kind: ToolKind
    ref: str
    name: str = ""
    description: str = ""
    allow_side_effects: bool = False


@dataclass(frozen=True)
class OutputContract:
    """Structured output: `schema` (JSON Schema) for the `output` the agent returns.
    Every answer also carries a status (STATUSES) and a confidence in [0, 1]."""

    schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class Limits:
    max_iterations: int = 8  # model calls per invocation
    max_tokens: int = 50_000  # input + output tokens per invocation
    max_cost: Decimal | None = None  # in USD per invocation, from the price table


@dataclass(frozen=True)
class AgentSpec:
    name: str
    model: ModelConfig
    role: str = ""
    instructions: str = ""
    credential_id: str | None = None  # a vault credential (api_key) for the provider
    tools: tuple[ToolGrant, ...] = ()
    output: OutputContract = field(default_factory=OutputContract)
    limits: Limits = field(default_factory=Limits)
    # The `scripted` provider answers with these, in turn (see llm/scripted_provider.py).
    script: tuple[dict[str, Any], ...] = ()
    # Per-agent notes: with `notes`, the agent reads its recent notes in its system
    # prompt and gets a `remember` tool to add one; each expires after the retention.
    notes: bool = False
    notes_retention_days: int | None = 30  # None keeps them

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgentSpec:
        errors = sorted(_VALIDATOR.iter_errors(data), key=lambda e: list(e.path))
        if errors:
            raise ValidationFailed([
                {"field": ".".join(str(p) for p in e.path) or "(root)", "message": e.message}
                for e in errors])
        limits = dict(data.get("limits") or {})
        if limits.get("max_cost") is not None:
            limits["max_cost"] = _cost(limits["max_cost"])
        _check_output_schema((data.get("output") or {}).get("schema"))
        return cls(
            name=data["name"], role=data.get("role", ""),
            instructions=data.get("instructions", ""),
            model=ModelConfig(**data["model"]), credential_id=data.get("credential_id"),
            tools=tuple(ToolGrant(**t) for t in data.get("tools") or ()),
            output=OutputContract(**(data.get("output") or {})), limits=Limits(**limits),
            script=tuple(data.get("script") or ()), notes=bool(data.get("notes", False)),
            notes_retention_days=data.get("notes_retention_days", 30))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tools"] = [asdict(t) for t in self.tools]
        data["script"] = list(self.script)
        if self.limits.max_cost is not None:
            data["limits"]["max_cost"] = str(self.limits.max_cost)
        return data


def _cost(value: Any) -> Decimal:
    """A budget in USD: a JSON number or a decimal string ("0.25"), finite, 0 or more."""
    try:
        cost = Decimal(str(value))
    except (InvalidOperation, ValueError) as error:
        raise ValidationFailed.field("limits.max_cost", "must be a number") from error
    if not (cost.is_finite() and cost >= 0):
        raise ValidationFailed.field("limits.max_cost", "must be a number, 0 or more")
    return cost


def _check_output_schema(schema: dict[str, Any] | None) -> None:
    # A broken schema would otherwise surface only at run time, on every answer.
    if schema is None:
        return
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise ValidationFailed.field("output.schema", f"not a valid JSON Schema: "
                                                      f"{error.message}") from error


SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["name", "model"], "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 120},
        "role": {"type": "string", "maxLength": 200},
        "instructions": {"type": "string", "maxLength": 20_000},
        "credential_id": {"type": ["string", "null"]},
        "model": {"type": "object", "required": ["provider", "model"],
                  "additionalProperties": False, "properties": {
                      "provider": {"enum": list(PROVIDERS)},
                      "model": {"type": "string", "minLength": 1, "maxLength": 120},
                      "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
                      "max_output_tokens": {"type": "integer", "minimum": 1,
                                            "maximum": 200_000}}},
        "tools": {"type": "array", "maxItems": 64, "items": {
            "type": "object", "required": ["kind", "ref"], "additionalProperties": False,
            "properties": {"kind": {"enum": ["action", "agent", "knowledge"]},
                           "ref": {"type": "string", "minLength": 1, "maxLength": 200},
                           "name": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{0,64}$"},
                           "description": {"type": "string", "maxLength": 1000},
                           "allow_side_effects": {"type": "boolean"}}}},
        "output": {"type": "object", "additionalProperties": False,
                   "properties": {"schema": {"type": ["object", "null"]}}},
        "limits": {"type": "object", "additionalProperties": False, "properties": {
            "max_iterations": {"type": "integer", "minimum": 1, "maximum": 100},
            "max_tokens": {"type": "integer", "minimum": 1, "maximum": 10_000_000},
            "max_cost": {"type": ["number", "string", "null"], "maxLength": 40}}},
        "script": {"type": "array", "maxItems": 200, "items": {"type": "object"}},
        "notes": {"type": "boolean"},
        "notes_retention_days": {"type": ["integer", "null"], "minimum": 1, "maximum": 3650},
    },
}
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
