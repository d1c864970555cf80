"""Workflow definitions: their JSON Schema, their validation, and the graph view the
engine walks.

A definition is a block of steps (`{"steps": [...], "start": id?}`); parallel
branches and loop bodies are blocks of their own. Step ids are unique across the
whole definition. A step continues at `next` (or where a condition/router points);
no next ends its block: the run (root block), a parallel branch or a loop iteration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from overture.orchestration import expressions
from overture.platform.errors import ValidationFailed

ID = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"}
NEXT = {"anyOf": [ID, {"type": "null"}]}
EXPR = {"type": "string", "minLength": 1, "maxLength": expressions.MAX_EXPRESSION_CHARS}
POSITIVE = {"type": "integer", "minimum": 1}

RETRY = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 20},
        "backoff_seconds": {"type": "number", "minimum": 0, "maximum": 3600},
        "max_backoff_seconds": {"type": "number", "minimum": 0, "maximum": 86400},
        "retry_on": {"type": "array", "items": {"type": "string"}},
    },
}
COMMON = {
    "id": ID, "type": {"type": "string"}, "name": {"type": "string", "maxLength": 120},
    "next": NEXT, "retry": RETRY, "timeout_seconds": {"type": "number", "exclusiveMinimum": 0,
                                                      "maximum": 86400},
    "on_error": ID, "input": {},
}
BLOCK: dict[str, Any] = {
    "type": "object", "required": ["steps"],
    "properties": {"steps": {"type": "array", "minItems": 1, "items": {"type": "object"}},
                   "start": ID},
}
DEFINITION = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object", "required": ["steps"], "additionalProperties": False,
    "properties": {
        "steps": BLOCK["properties"]["steps"], "start": ID, "output": {},
        "policy": {"type": "object", "additionalProperties": False, "properties": {
            "max_steps": {"type": "integer", "minimum": 1, "maximum": 100_000},
            "max_duration_seconds": {"type": "integer", "minimum": 1, "maximum": 30 * 86400},
            "max_agent_calls": {"type": "integer", "minimum": 0, "maximum": 10_000},
        }},
    },
}


@dataclass(frozen=True)
class StepSchema:
    """What a step type adds to the common fields, and which of its fields hold CEL."""

    properties: dict[str, Any]
    required: tuple[str, ...] = ()
    expressions: tuple[str, ...] = ()  # fields that are bare CEL expressions
    templates: tuple[str, ...] = ()  # fields that may hold {{ }} templates
    blocks: tuple[str, ...] = ()  # fields holding a block (or a list of blocks)
    targets: tuple[str, ...] = ()  # fields naming other steps
    extra: dict[str, Any] = field(default_factory=dict)  # more JSON Schema (oneOf, ...)


_SCHEMAS: dict[str, StepSchema] = {}


def register_step_schema(step_type: str, schema: StepSchema) -> None:
    _SCHEMAS[step_type] = schema


def step_types() -> list[str]:
    return sorted(_SCHEMAS)


# --------------------------------------------------------------------------- graph


@dataclass
class Block:
    key: str  # "" for the root, "<step>#<n>" for a branch, "<step>" for a loop body
    start: str
    steps: list[str] = field(default_factory=list)


@dataclass
class Graph:
    definition: dict[str, Any]
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    block_of: dict[str, str] = field(default_factory=dict)
    blocks: dict[str, Block] = field(default_factory=dict)
    pins: dict[str, Any] = field(default_factory=dict)  # the version's, see WorkflowVersion

    @classmethod
    def of(cls, definition: dict[str, Any]) -> Graph:
        graph = cls(definition)
        graph._index("", definition)
        return graph

    def _index(self, key: str, block: dict[str, Any]) -> None:
        steps = block.get("steps") or []
        start = block.get("start") or (steps[0].get("id") if steps else "")
        self.blocks[key] = Block(key, start)
        for step in steps:
            sid = step.get("id")
            self.steps[sid] = step
            self.block_of[sid] = key
            self.blocks[key].steps.append(sid)
            for child_key, child in child_blocks(step):
                self._index(child_key, child)

    def step(self, step_id: str) -> dict[str, Any]:
        return self.steps[step_id]

    @property
    def start(self) -> str:
        return self.blocks[""].start

    def policy(self, name: str, default: int) -> int:
        return int((self.definition.get("policy") or {}).get(name, default))

    def downstream(self, step_id: str) -> set[str]:
        """Steps that can run after `step_id` in its run, itself included."""
        seen, todo = set(), [step_id]
        while todo:
            sid = todo.pop()
            if sid in seen or sid not in self.steps:
                continue
            seen.add(sid)
            step = self.steps[sid]
            todo += [t for t in successors_of(step) if t]
            todo += [self.blocks[k].start for k, _ in child_blocks(step)]
            block = self.block_of[sid]
            if block:  # the end of a branch or body leads on to its parent step's successors
                todo.append(block.split("#")[0])
        return seen


def child_blocks(step: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    if step.get("type") == "parallel":
        return [(f"{step['id']}#{i}", b) for i, b in enumerate(step.get("branches") or [])
                if isinstance(b, dict)]
    if step.get("type") == "loop" and isinstance(step.get("body"), dict):
        return [(step["id"], step["body"])]
    return []


def successors_of(step: dict[str, Any]) -> list[str | None]:
    found = [step.get("next"), step.get("on_error")]
    schema = _SCHEMAS.get(step.get("type", ""))
    for name in schema.targets if schema else ():
        value = step.get(name)
        if isinstance(value, list):
            found += [r.get("next") for r in value if isinstance(r, dict)]
        else:
            found.append(value)
    return found


# --------------------------------------------------------------------------- validation


def validate(definition: Any) -> Graph:
    """The definition's graph, or ValidationFailed naming each step and field at fault."""
    errors = _schema_errors(DEFINITION, definition, "")
    if errors:
        raise ValidationFailed(errors)
    errors = _check_blocks("", definition, seen={})
    graph = Graph.of(definition)
    errors += _check_references(graph)
    if not errors:
        errors += _check_cycles(graph) + _check_expressions(graph)
    if errors:
        raise ValidationFailed(errors)
    return graph


def _schema_errors(schema: dict[str, Any], value: Any, prefix: str) -> list[dict[str, str]]:
    found = []
    for err in sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: e.path):
        where = ".".join(str(p) for p in err.absolute_path)
        found.append({"field": f"{prefix}{where}".rstrip(".") or "definition",
                      "message": err.message})
    return found


def _step_json_schema(step_type: str, schema: StepSchema) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False,
            "required": ["id", "type", *schema.required],
            "properties": {**COMMON, **schema.properties}, **schema.extra}


def _check_blocks(prefix: str, block: dict[str, Any],
                  seen: dict[str, str]) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    for index, step in enumerate(block.get("steps") or []):
        label = f"steps.{step.get('id') or index}"
        sid, stype = step.get("id"), step.get("type")
        if stype not in _SCHEMAS:
            errors.append({"field": f"{label}.type",
                           "message": f"unknown step type {stype!r}; one of {step_types()}"})
            continue
        errors += _schema_errors(_step_json_schema(stype, _SCHEMAS[stype]), step, f"{label}.")
        if isinstance(sid, str):
            if sid in seen:
                errors.append({"field": f"{label}.id", "message": f"duplicate step id {sid!r}"})
            seen[sid] = label
        for _, child in child_blocks(step):
            errors += _schema_errors(BLOCK, child, f"{label}.")
            errors += _check_blocks(label + ".", child, seen)
    if block.get("start") and block["start"] not in [s.get("id") for s in block.get("steps", [])]:
        errors.append({"field": f"{prefix}start", "message": "names no step of this block"})
    return errors


def _check_references(graph: Graph) -> list[dict[str, str]]:
    errors = []
    for sid, step in graph.steps.items():
        for target in successors_of(step):
            if target is None:
                continue
            if target not in graph.steps:
                errors.append({"field": f"steps.{sid}", "message": f"refers to unknown step "
                                                                   f"{target!r}"})
            elif graph.block_of[target] != graph.block_of[sid]:
                errors.append({"field": f"steps.{sid}", "message": f"refers to {target!r}, "
                               "which is in another block (branch or loop body)"})
    return errors


def _check_cycles(graph: Graph) -> list[dict[str, str]]:
    """A step runs at most once per block (its row is unique per iteration path), so a
    path back to an earlier step could never run: repeating is what loop steps do."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after

    def visit(sid: str, trail: list[str]) -> list[str] | None:
        state[sid] = "open"
        for target in successors_of(graph.steps[sid]):
            if target is None:
                continue
            if state.get(target) == "open":
                return [*trail, sid, target]
            if target not in state and (cycle := visit(target, [*trail, sid])):
                return cycle
        state[sid] = "done"
        return None

    for sid in graph.steps:
        if sid not in state and (cycle := visit(sid, [])):
            start = cycle.index(cycle[-1])
            loop = " -> ".join(cycle[start:])
            return [{"field": f"steps.{cycle[-2]}", "message": f"leads back to an earlier "
                     f"step ({loop}); use a loop step to repeat steps"}]
    return []


def _check_expressions(graph: Graph) -> list[dict[str, str]]:
    errors = []
    for sid, step in graph.steps.items():
        schema = _SCHEMAS[step["type"]]
        for name in schema.expressions:
            if name in step and (problem := expressions.check_expression(str(step[name]))):
                errors.append({"field": f"steps.{sid}.{name}", "message": problem})
        for name in ("input", *schema.templates):
            for problem in expressions.check(step.get(name)):
                errors.append({"field": f"steps.{sid}.{name}", "message": problem})
        if step["type"] == "router":
            for i, route in enumerate(step.get("routes") or []):
                if problem := expressions.check_expression(str(route.get("when", ""))):
                    errors.append({"field": f"steps.{sid}.routes.{i}.when", "message": problem})
    for problem in expressions.check(graph.definition.get("output")):
        errors.append({"field": "output", "message": problem})
    return errors
