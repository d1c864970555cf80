"""Workflow definitions: their JSON Schema, their validation, and the graph view the
engine walks.

A definition is a block of steps (`{"steps": [...], "start": id?}`); parallel
branches and loop bodies are blocks of their own. Step ids are unique across the
whole definition. A step continues at `next` (or where a condition/router points);
no next ends its block: the run (root block), a parallel branch or a loop iteration.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing.exceptions import Unresolvable

from overture.orchestration import expressions
from overture.platform.errors import ValidationFailed

ID = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"}
NEXT = {"anyOf": [ID, {"type": "null"}]}
EXPR = {"type": "string", "minLength": 1, "maxLength": expressions.MAX_EXPRESSION_CHARS}
POSITIVE = {"type": "integer", "minimum": 1}
MAX_STEPS = 1000  # per definition, branches and loop bodies included (README)

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
        # What a run's input must be: a JSON Schema of an object. The portal makes its
        # form from it, and runs started by people (API, portal) are checked against it.
        "input_schema": {"type": "object"},
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
        todo: list[tuple[str, dict[str, Any]]] = [("", definition)]
        while todo:  # blocks in any order; each block's steps in order
            key, block = todo.pop()
            steps = block_steps(block)
            first = steps[0] if steps else None
            start = block.get("start") or (first.get("id") if isinstance(first, dict) else "")
            graph.blocks[key] = Block(key, start)
            for step in steps:
                sid = step.get("id") if isinstance(step, dict) else None
                if not isinstance(sid, str):
                    continue  # validation reports it; the graph holds well-formed steps
                graph.steps[sid] = step
                graph.block_of[sid] = key
                graph.blocks[key].steps.append(sid)
                todo += child_blocks(step)
        return graph

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


def block_steps(block: dict[str, Any]) -> list[Any]:
    """A block's steps as a list, whatever they are: a nested block is read before its
    shape is known to be right (validation reports what is wrong with it)."""
    steps = block.get("steps")
    return steps if isinstance(steps, list) else []


def child_blocks(step: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    branches = step.get("branches")
    if step.get("type") == "parallel" and isinstance(branches, list):
        return [(f"{step.get('id')}#{i}", b) for i, b in enumerate(branches)
                if isinstance(b, dict)]
    if step.get("type") == "loop" and isinstance(step.get("body"), dict):
        return [(str(step.get("id")), step["body"])]
    return []


def successors_of(step: dict[str, Any]) -> list[str | None]:
    found = [step.get("next"), step.get("on_error")]
    step_type = step.get("type")
    schema = _SCHEMAS.get(step_type) if isinstance(step_type, str) else None
    for name in schema.targets if schema else ():
        value = step.get(name)
        if isinstance(value, list):
            found += [r.get("next") for r in value if isinstance(r, dict)]
        else:
            found.append(value)
    return [t for t in found if t is None or isinstance(t, str)]  # others: a schema error


# --------------------------------------------------------------------------- validation


def validate(definition: Any) -> Graph:
    """The definition's graph, or ValidationFailed naming each step and field at fault."""
    errors = _schema_errors(DEFINITION, definition, "")
    if errors:
        raise ValidationFailed(errors)
    if (count := _count_steps(definition)) > MAX_STEPS:
        raise ValidationFailed.field("steps", f"a workflow holds at most {MAX_STEPS:,} steps "
                                              f"(branches and loop bodies included); this "
                                              f"one has {count:,}")
    errors = _check_blocks(definition) + _check_input_schema(definition.get("input_schema"))
    graph = Graph.of(definition)
    errors += _check_references(graph)
    if not errors:
        errors += _check_cycles(graph) + _check_expressions(graph)
    if errors:
        raise ValidationFailed(errors)
    return graph


def _check_input_schema(schema: Any) -> list[dict[str, str]]:
    if schema is None:
        return []
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = ".".join(str(p) for p in exc.absolute_path)
        return [{"field": f"input_schema{'.' + where if where else ''}",
                 "message": f"not a valid JSON Schema: {exc.message}"}]
    if schema.get("type") != "object":
        return [{"field": "input_schema.type", "message": "must be \"object\": a run's input "
                                                          "is a JSON object"}]
    outside = next(_outside_refs(schema), None)
    if outside is not None:
        return [{"field": "input_schema", "message": f"refers to {outside!r}: only references "
                                                     "inside the schema (\"#/...\") are read"}]
    return []


def _outside_refs(schema: Any) -> Iterator[str]:
    """`$ref`s that would be fetched from elsewhere (never done: refused instead)."""
    todo = [schema]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("$ref", "$dynamicRef") and isinstance(value, str) \
                        and not value.startswith("#"):
                    yield value
                todo.append(value)
        elif isinstance(node, list):
            todo.extend(node)


def input_problems(schema: dict[str, Any] | None, value: Any) -> list[dict[str, str]]:
    """Where `value` breaks the workflow's `input_schema`: [{field, message}], the field
    `input.<path>` (`input` for the whole). Formats (email, date...) are checked too."""
    if not schema:
        return []
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    try:
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    except (SchemaError, Unresolvable) as exc:  # a version published before the checks
        return [{"field": "input", "message": f"cannot be checked: {exc}"}]
    found = []
    for err in errors:
        path = [str(p) for p in err.absolute_path]
        if err.validator == "required" and isinstance(err.instance, dict):
            missing = next((name for name in err.validator_value
                            if name not in err.instance), None)
            if missing is not None:
                path.append(str(missing))
        found.append({"field": ".".join(["input", *path]), "message": _plainly(err)})
    return found


def _plainly(err: Any) -> str:
    """A person's words for the commonest refusals; the validator's own for the rest."""
    kind, limit = err.validator, err.validator_value
    messages = {
        "required": "is required",
        "minLength": f"must be at least {limit} character{'s' if limit != 1 else ''}",
        "maxLength": f"must be at most {limit} characters",
        "minimum": f"must be at least {limit}", "maximum": f"must be at most {limit}",
        "exclusiveMinimum": f"must be more than {limit}",
        "exclusiveMaximum": f"must be less than {limit}",
        "pattern": "is not in the expected format",
        "enum": "must be one of: " + ", ".join(str(v) for v in limit)
        if isinstance(limit, list) else "is not one of the options",
        "format": f"must be a valid {limit}",
        "type": "must be " + " or ".join(_a(t) for t in (limit if isinstance(limit, list)
                                                          else [limit])),
    }
    return messages.get(kind, err.message)


def _a(kind: Any) -> str:
    words = {"object": "a set of fields", "array": "a list", "null": "empty"}
    word = words.get(str(kind), str(kind))
    return word if word in words.values() else f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _count_steps(definition: dict[str, Any]) -> int:
    count, todo = 0, [definition]
    while todo:
        steps = todo.pop().get("steps")
        if isinstance(steps, list):
            count += len(steps)
            todo += [child for step in steps if isinstance(step, dict)
                     for _, child in child_blocks(step)]
    return count


def _schema_errors(schema: dict[str, Any], value: Any, prefix: str) -> list[dict[str, str]]:
    found = []
    for err in sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: e.path):
        where = ".".join(str(p) for p in err.absolute_path)
        found.append({"field": f"{prefix}{where}".rstrip(".") or "definition",
                      "message": err.message})
    return found


def _step_schema_json(step_type: str) -> dict[str, Any]:
    schema = _SCHEMAS[step_type]
    return {"type": "object", "additionalProperties": False,
            "required": ["id", "type", *schema.required],
            "properties": {**COMMON, **schema.properties}, **schema.extra}


@dataclass
class _Frame:
    """A block being checked: where its errors go, and the steps still to check."""

    prefix: str
    block: dict[str, Any]
    steps: Iterator[tuple[int, Any]]
    fresh: bool = True


def _check_blocks(definition: dict[str, Any]) -> list[dict[str, str]]:
    """Each step against its type's schema, unique ids, each block's `start`; depth
    first in reading order, without recursion (blocks nest as deep as the JSON does)."""
    errors: list[dict[str, str]] = []
    seen: set[str] = set()
    stack = [_Frame("", definition, iter(enumerate(block_steps(definition))), False)]
    while stack:
        frame = stack[-1]
        if frame.fresh:  # a branch or loop body: first its own shape
            frame.fresh = False
            errors += _schema_errors(BLOCK, frame.block, frame.prefix)
        index, step = next(frame.steps, (None, None))
        if index is not None and not isinstance(step, dict):
            continue  # the block's schema reports it
        if index is None:
            stack.pop()
            ids = [s.get("id") for s in block_steps(frame.block) if isinstance(s, dict)]
            if frame.block.get("start") and frame.block["start"] not in ids:
                errors.append({"field": f"{frame.prefix}start",
                               "message": "names no step of this block"})
            continue
        errors += _check_step(step, index, seen)
        label = f"steps.{step.get('id') or index}."
        if _known_type(step.get("type")):
            stack += [_Frame(label, child, iter(enumerate(block_steps(child))))
                      for _, child in reversed(child_blocks(step))]
    return errors


def _known_type(step_type: Any) -> bool:
    return isinstance(step_type, str) and step_type in _SCHEMAS


def _check_step(step: dict[str, Any], index: int, seen: set[str]) -> list[dict[str, str]]:
    label = f"steps.{step.get('id') or index}"
    sid, stype = step.get("id"), step.get("type")
    if not _known_type(stype):
        return [{"field": f"{label}.type",
                 "message": f"unknown step type {stype!r}; one of {step_types()}"}]
    errors = _schema_errors(_step_schema_json(stype), step, f"{label}.")
    if isinstance(sid, str):
        if sid in seen:
            errors.append({"field": f"{label}.id", "message": f"duplicate step id {sid!r}"})
        seen.add(sid)
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
    path back to an earlier step could never run: repeating is what loop steps do.

    Depth first without recursion: a linear workflow of MAX_STEPS steps is a path
    that long, far past Python's recursion limit."""
    done: set[str] = set()
    for root in graph.steps:
        if root in done:
            continue
        trail: list[str] = [root]  # the current path; each entry's successors below
        pending: list[list[str]] = [_targets(graph, root)]
        on_trail = {root}
        while trail:
            if not pending[-1]:
                finished = trail.pop()
                pending.pop()
                on_trail.discard(finished)
                done.add(finished)
                continue
            target = pending[-1].pop()
            if target in on_trail:
                loop = " -> ".join([*trail[trail.index(target):], target])
                return [{"field": f"steps.{trail[-1]}", "message": f"leads back to an "
                         f"earlier step ({loop}); use a loop step to repeat steps"}]
            if target not in done:
                trail.append(target)
                pending.append(_targets(graph, target))
                on_trail.add(target)
    return []


def _targets(graph: Graph, step_id: str) -> list[str]:
    return [t for t in reversed(successors_of(graph.steps[step_id])) if t is not None]


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


def describe_step_types() -> dict[str, dict[str, Any]]:
    """Each step type's JSON Schema and which of its fields hold CEL, templates, blocks
    and step ids: what the visual builder generates its forms from."""
    return {name: {"schema": _step_schema_json(name), "expressions": list(s.expressions),
                   "templates": list(s.templates), "blocks": list(s.blocks),
                   "targets": list(s.targets)}
            for name, s in sorted(_SCHEMAS.items())}
