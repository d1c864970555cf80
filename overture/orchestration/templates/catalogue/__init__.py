"""Ready-made use-case templates: each a whole workspace as a template snapshot holds it
(templates/snapshot.py: knowledge, connection placeholders, agents, a published
workflow), plus sample inputs to try it with. An agency adds one to its templates
(`service.create_from_use_case`) and provisions client workspaces from it like from any
snapshot.

Every agent runs on the `local` provider, so each template runs offline end to end: a
`template` agent's instructions are its answer (CEL in {{ }}, seeing the step's input as
`input` and its knowledge searches as `item.passages`); a `wordllama` agent classifies
and reviews by sentence similarity. The agent's `role` is the brief a real model gets:
switch the model (and give the workspace a provider credential) to run it with one.

The outside world (CRM, accounting, issue tracker) is reached through `http` connections
whose base URL the workspace sets after provisioning; messages go to the demo outbox,
which records them and delivers nothing, until the workspace points the steps at real
`smtp` or `slack` connections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FORMAT = 1


@dataclass(frozen=True)
class UseCase:
    key: str
    name: str
    summary: str
    patterns: tuple[str, ...]
    knowledge: list[dict[str, Any]]
    connections: list[dict[str, Any]]
    agents: list[dict[str, Any]]
    workflow: dict[str, Any]  # {name, description, definition}
    samples: dict[str, dict[str, Any]] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        """The template version's snapshot (the format templates/snapshot.py takes)."""
        return {"format": FORMAT, "knowledge": self.knowledge,
                "connections": self.connections, "agents": self.agents,
                "workflows": [{"version": 1, **self.workflow}],
                "webhooks": [{"workflow": self.workflow["name"], "enabled": True,
                              "signed": False}],
                "triggers": [], "schedules": []}


def collection(name: str, description: str, documents: list[tuple[str, str]]) -> dict[str, Any]:
    return {"name": name, "description": description,
            "documents": [{"title": t, "text": text} for t, text in documents]}


def agent(name: str, description: str, role: str, *, instructions: str = "",
          model: str = "template", tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"name": name, "role": role,
                              "model": {"provider": "local", "model": model}}
    if instructions:
        config["instructions"] = instructions
    if tools:
        config["tools"] = tools
    return {"name": name, "description": description, "config": config,
            "needs_credential": False}


def search(collection_name: str, tool: str, description: str) -> dict[str, Any]:
    return {"kind": "knowledge", "ref": collection_name, "name": tool,
            "description": description}


def http_connection(name: str, base_url: str) -> dict[str, Any]:
    return {"name": name, "connector_key": "http", "base_url": base_url, "settings": {},
            "rate_limit": None}


def outbox(name: str) -> dict[str, Any]:
    return {"name": name, "connector_key": "demo_outbox", "base_url": None,
            "settings": {"messages": []}, "rate_limit": None}


def use_cases() -> dict[str, UseCase]:
    """Every use case, by key, in the order they are offered."""
    from overture.orchestration.templates.catalogue import (
        content,
        feedback,
        helpdesk,
        invoices,
        sales,
    )
    found = [sales.USE_CASE, helpdesk.USE_CASE, invoices.USE_CASE, content.USE_CASE,
             feedback.USE_CASE]
    return {u.key: u for u in found}
