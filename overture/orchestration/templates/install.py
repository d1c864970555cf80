"""Install a snapshot into the workspace in scope: everything, for a new workspace
(`provision`), or the difference to a newer version (`upgrade`), and undo an upgrade
(`undo`). Every change goes through the owning domain's service, so each is audited
in the workspace's own log.

An upgrade moves each workflow to a new published version; runs already going keep the
version they started on (a run points at its version, and versions never change), so
only new runs see the change. `undo` makes the previous versions current again.

A client's work is never overwritten silently. A workflow whose draft holds unpublished
edits gets the template's version published beside it, and the draft stays as the
client left it (publishing it later would replace the template's version: that is
theirs to decide); the roll-out says so in its notes for that workspace. A draft that
matched the live version moves along with it, so the builder shows what runs. `undo`
leaves a workflow alone if the workspace published another version after the roll-out,
and puts a draft back only if nobody edited it since.
"""

from __future__ import annotations

import uuid
from typing import Any

from overture.connectors import connections as connection_service
from overture.connectors.models import ConnectionStatus
from overture.orchestration import workflows
from overture.orchestration.agents import knowledge
from overture.orchestration.agents import service as agents
from overture.orchestration.agents.spec import AgentSpec
from overture.orchestration.templates import references, starters
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
    _install_workflows(access, snapshot.get("workflows", []), _blank(), set())
    signed = starters.provision(access, snapshot)
    return {"connections": [p for p in placeholders if p["pending"]],
            "agents": [{"name": a["name"], "provider": a["config"]["model"]["provider"]}
                       for a in snapshot.get("agents", []) if a.get("needs_credential")],
            "webhooks": signed}


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
    changes = _blank()
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
    _install_workflows(access, new.get("workflows", []), changes, set(have.workflows))
    changes["starters"] = starters.upgrade(access, old, new)
    return changes


def _blank() -> Changes:
    return {"workflows": {}, "published": {}, "drafts_kept": [], "agents": {},
            "collections": [], "connections": [], "notes": []}


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


def _install_workflows(access: Access, items: list[dict[str, Any]], changes: Changes,
                       had: set[str]) -> None:
    """Create the missing workflows first (sub-workflow steps name them by id), then
    publish each whose definition (or pinned agents) differs from its current version;
    `changes` records the versions before and after, and the drafts left alone."""
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
        name, workflow = item["name"], by_name[item["name"]]
        definition = references.resolve(item["definition"], names, name)
        current = workflows.current_version(workflow)
        if current is not None and current.definition == definition and \
                current.pins == workflows.pins_for(definition):
            continue
        # None: the roll-out made it (undo archives it); 0: the workspace had it, never
        # published (undo leaves it)
        changes["workflows"][name] = (current.number if current else 0) if name in had \
            else None
        keep = workflows.has_unpublished_edits(workflow)
        version = workflows.publish(workflow, user, draft=definition)
        changes["published"][name] = version.number
        if keep:
            changes["drafts_kept"].append(name)
            changes["notes"].append(
                f"{name}: the workspace's unpublished draft was kept as it was; the "
                f"template's version is live as v{version.number} (publishing that draft "
                "would replace it)")
        else:
            workflows.update_workflow(workflow, draft=definition)


# --------------------------------------------------------------------------- undo


def undo(access: Access, changes: Changes) -> list[str]:
    """Put back what `upgrade` changed: previous workflow versions current again, agents
    on their previous configuration, what it added removed. Notes on what was left as
    the workspace has it since."""
    user = access.principal.user.id
    notes: list[str] = []
    starters.undo(access, changes.get("starters", []))
    flows = _workflows()
    for name, previous in changes.get("workflows", {}).items():
        if name in flows:
            notes += _undo_workflow(flows[name], name, previous, changes)
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
    return notes


def _undo_workflow(workflow: Any, name: str, previous: int | None,
                   changes: Changes) -> list[str]:
    ours = changes.get("published", {}).get(name)  # absent in roll-outs made before it
    live = workflows.current_version(workflow)
    if ours is not None and (live is None or live.number != ours):
        return [f"{name}: left on v{live.number if live else '?'}, which the workspace "
                "published after the roll-out"]
    if previous is None:
        workflows.archive_workflow(workflow)
        return []
    if not previous:
        return [f"{name}: had no published version before the roll-out; its version "
                "stays live"]
    version = workflows.rollback(workflow, previous)
    # The draft goes back too if it still is what the roll-out published, so a later
    # publish does not bring the undone version back; a draft edited since stays.
    if live is not None and workflow.draft == live.definition:
        workflows.update_workflow(workflow, draft=version.definition)
    elif name not in changes.get("drafts_kept", []):
        return [f"{name}: back on v{previous}; the draft edited since the roll-out was kept"]
    return []


# --------------------------------------------------------------------------- helpers


def _connections(access: Access) -> list[Any]:
    return every(lambda c, n: connection_service.list_connections(access, c, n))


def _workflows() -> dict[str, Any]:
    return {w.name: w for w in every(lambda c, n: workflows.list_workflows(c, n))}


def _names(access: Access) -> references.IdNames:
    return references.IdNames(connections={c.name: str(c.id) for c in _connections(access)},
                              workflows={name: str(w.id) for name, w in _workflows().items()})
