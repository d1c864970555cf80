"""Install a snapshot into the workspace in scope: everything, for a new workspace
(`provision`), or the difference to a newer version (`upgrade`), and undo an upgrade
(`undo`). Every change goes through the owning domain's service, so each is audited
in the workspace's own log.

An upgrade moves each workflow to a new published version; runs already going keep the
version they started on (a run points at its version, and versions never change), so
only new runs see the change. `undo` makes the previous versions current again.
"""

from __future__ import annotations

import uuid
from typing import Any

from overture.connectors import connections as connection_service
from overture.connectors.models import ConnectionStatus
from overture.orchestration import scheduler, triggers, workflows
from overture.orchestration.agents import knowledge
from overture.orchestration.agents import service as agents
from overture.orchestration.agents.spec import AgentSpec
from overture.orchestration.templates import references
from overture.orchestration.templates.snapshot import every
from overture.platform.errors import ValidationFailed
from overture.tenants.access import Access

Changes = dict[str, Any]  # {"workflows": {name: previous number | None}, "agents": {...}, ...}


# --------------------------------------------------------------------------- provision


def provision(access: Access, snapshot: dict[str, Any]) -> dict[str, Any]:
    """Create everything in the snapshot in this (new) workspace; what is left to fill."""
    user = access.principal.user.id
    for item in snapshot.get("knowledge", []):
        _new_collection(item, user)
    placeholders = [_new_connection(access, item) for item in snapshot.get("connections", [])]
    _install_agents(snapshot.get("agents", []), {}, user)
    flows = _install_workflows(access, snapshot.get("workflows", []), {}, set())
    names = _names(access)
    for item in snapshot.get("triggers", []):
        connection = names.connections.get(item["connection"])
        if item["workflow"] in flows and connection:
            ready = item["connection"] not in {p["name"] for p in placeholders if p["pending"]}
            triggers.create_subscription(flows[item["workflow"]], connection,
                                         item["trigger_key"], item["interval_seconds"],
                                         enabled=ready, created_by=user)
    for item in snapshot.get("schedules", []):
        if item["workflow"] in flows:
            schedule = scheduler.create_schedule(flows[item["workflow"]], item["cron"],
                                                 item["timezone"], item["input"])
            if not item.get("enabled", True):
                scheduler.update_schedule(schedule, enabled=False)
    return {"connections": [p for p in placeholders if p["pending"]],
            "agents": [{"name": a["name"], "provider": a["config"]["model"]["provider"]}
                       for a in snapshot.get("agents", []) if a.get("needs_credential")]}


def _new_collection(item: dict[str, Any], user: uuid.UUID) -> None:
    collection = knowledge.create_collection(item["name"], item.get("description", ""), user)
    for document in item.get("documents", []):
        knowledge.add_document(collection, document["title"], document["text"], user)


def _new_connection(access: Access, item: dict[str, Any]) -> dict[str, Any]:
    connection = connection_service.create_placeholder(
        access, connector_key=item["connector_key"], name=item["name"],
        base_url=item.get("base_url"), settings=item.get("settings"),
        rate_limit=item.get("rate_limit"))
    return {"id": str(connection.id), "name": connection.name,
            "connector_key": connection.connector_key, "status": connection.status,
            "pending": connection.status == ConnectionStatus.PENDING}


# --------------------------------------------------------------------------- upgrade


def upgrade(access: Access, old: dict[str, Any], new: dict[str, Any]) -> Changes:
    """Move the workspace from template snapshot `old` to `new`; what changed, to undo.
    A workflow the workspace got from `old` and has since deleted fails the upgrade."""
    user = access.principal.user.id
    have = _names(access)
    gone = [w["name"] for w in old.get("workflows", []) if w["name"] not in have.workflows]
    if gone:
        raise ValidationFailed.field("workflows", "deleted from this workspace: "
                                     + ", ".join(sorted(gone)))
    changes: Changes = {"workflows": {}, "agents": {}, "collections": [], "connections": []}
    existing = {c.name for c in every(knowledge.list_collections)}
    for item in new.get("knowledge", []):
        if item["name"] not in existing:
            _new_collection(item, user)
            changes["collections"].append(item["name"])
    for item in new.get("connections", []):
        if item["name"] not in have.connections:
            _new_connection(access, item)
            changes["connections"].append(item["name"])
    _install_agents(new.get("agents", []), changes["agents"], user)
    _install_workflows(access, new.get("workflows", []), changes["workflows"],
                       set(have.workflows))
    return changes


def _install_agents(items: list[dict[str, Any]], changed: dict[str, Any],
                    user: uuid.UUID) -> None:
    """Create or update the snapshot's agents, each after the agents it delegates to."""
    current = {a.name: a for a in every(agents.list_agents)}
    for item in _delegates_first(items):
        agent = current.get(item["name"])
        if agent is None:
            agents.create_agent(item["name"], item["config"], item.get("description", ""),
                                user)
            changed[item["name"]] = None
            continue
        version = agents.current_version(agent)
        before = dict(version.config) if version else {}
        # The workspace's own provider credential stays; the template never has one.
        config = {**item["config"], "credential_id": before.get("credential_id")}
        if before and agents.check_config(agent.name, config, agent.id).to_json() == \
                AgentSpec.from_json(before).to_json():
            continue
        agents.update_agent(agent, config=config, updated_by=user)
        changed[item["name"]] = before


def _delegates_first(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_name = {a["name"]: a for a in items}
    ordered: list[dict[str, Any]] = []
    placed: set[str] = set()

    def place(name: str, path: tuple[str, ...]) -> None:
        if name in placed or name not in by_name or name in path:
            return  # a cycle is refused by the agent service itself
        for tool in by_name[name]["config"].get("tools") or []:
            if tool.get("kind") == "agent":
                place(tool.get("ref", ""), (*path, name))
        placed.add(name)
        ordered.append(by_name[name])
    for name in by_name:
        place(name, ())
    return ordered


def _install_workflows(access: Access, items: list[dict[str, Any]], changed: dict[str, Any],
                       had: set[str]) -> dict[str, Any]:
    """Create the missing workflows first (sub-workflow steps name them by id), then
    publish each whose definition (or pinned agents) differs from its current version."""
    user = access.principal.user.id
    by_name = _workflows()
    for item in items:
        if item["name"] not in by_name:
            by_name[item["name"]] = workflows.create_workflow(
                item["name"], item.get("description", ""), None, user)
    names = references.IdNames(
        connections={c.name: str(c.id) for c in _connections(access)},
        workflows={name: str(w.id) for name, w in by_name.items()})
    for item in items:
        workflow = by_name[item["name"]]
        definition = references.resolve(item["definition"], names, item["name"])
        current = workflows.current_version(workflow)
        if current is not None and current.definition == definition and \
                current.pins == workflows.pins_for(definition):
            continue
        changed[item["name"]] = current.number if item["name"] in had and current else None
        workflows.update_workflow(workflow, draft=definition)
        workflows.publish(workflow, user)
    return {item["name"]: by_name[item["name"]] for item in items}


# --------------------------------------------------------------------------- undo


def undo(access: Access, changes: Changes) -> None:
    """Put back what `upgrade` changed: previous workflow versions current again, agents
    on their previous configuration, what it added removed."""
    user = access.principal.user.id
    flows = _workflows()
    for name, previous in changes.get("workflows", {}).items():
        if name in flows:
            if previous is None:
                workflows.archive_workflow(flows[name])
            elif previous:
                version = workflows.rollback(flows[name], previous)
                # The draft goes back too, so a later publish does not bring the undone
                # version back.
                workflows.update_workflow(flows[name], draft=version.definition)
    current = {a.name: a for a in every(agents.list_agents)}
    for name, previous in changes.get("agents", {}).items():
        if name in current:
            if previous is None:
                agents.archive_agent(current[name])
            else:
                agents.update_agent(current[name], config=previous, updated_by=user)
    for name in changes.get("collections", []):
        knowledge.delete_collection(knowledge.collection_named(name))
    left = {c.name: c for c in _connections(access)}
    for name in changes.get("connections", []):
        if name in left and left[name].credential_id is None:
            connection_service.delete(access, left[name])


# --------------------------------------------------------------------------- helpers


def _connections(access: Access) -> list[Any]:
    return every(lambda c, n: connection_service.list_connections(access, c, n))


def _workflows() -> dict[str, Any]:
    return {w.name: w for w in every(lambda c, n: workflows.list_workflows(c, n))}


def _names(access: Access) -> references.IdNames:
    return references.IdNames(connections={c.name: str(c.id) for c in _connections(access)},
                              workflows={name: str(w.id) for name, w in _workflows().items()})
