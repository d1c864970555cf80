"""Ids inside workflow definitions, made portable between workspaces and back.

A step's `connection` (an action step) and `workflow_id` (a sub-workflow step) name
rows of one workspace. A snapshot writes them by name (`@connection:crm`); installing
it writes the ids of the rows of those names in the target workspace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from overture.platform.errors import ValidationFailed

FIELDS = {"connection": "connections", "workflow_id": "workflows"}
MARK = {"connection": "@connection:", "workflow_id": "@workflow:"}


@dataclass
class IdNames:
    """id -> name (when snapshotting) or name -> id (when installing)."""

    connections: dict[str, str] = field(default_factory=dict)
    workflows: dict[str, str] = field(default_factory=dict)


def _walk(node: Any, swap: Any) -> Any:
    if isinstance(node, list):
        return [_walk(item, swap) for item in node]
    if not isinstance(node, dict):
        return node
    return {key: swap(key, value) if key in FIELDS and isinstance(value, str)
            else _walk(value, swap) for key, value in node.items()}


def portable(definition: dict[str, Any], ids: IdNames) -> dict[str, Any]:
    def swap(key: str, value: str) -> str:
        name = getattr(ids, FIELDS[key]).get(value)
        return MARK[key] + name if name is not None else value
    return _walk(definition, swap)


def resolve(definition: dict[str, Any], names: IdNames, workflow: str) -> dict[str, Any]:
    """The definition with every `@...:<name>` replaced by this workspace's id."""
    missing: list[str] = []

    def swap(key: str, value: str) -> str:
        if not value.startswith(MARK[key]):
            return value
        name = value[len(MARK[key]):]
        found = getattr(names, FIELDS[key]).get(name)
        if found is None:
            missing.append(f"{FIELDS[key][:-1]} {name!r}")
            return value
        return found
    resolved = _walk(definition, swap)
    if missing:
        raise ValidationFailed.field(
            "workflows", f"workflow {workflow!r} needs {', '.join(missing)}, which this "
                         "workspace does not have")
    return resolved
