"""Agents: create, update (each config change is a new immutable version), archive, and
the lookups the runtime uses (`current_versions`, `load_version`, `load_current`).

Everything runs in the scope's tenant; another tenant's agent is simply not found.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from overture.connectors import registry
from overture.connectors.models import Connection
from overture.orchestration.agents.models import Agent, AgentVersion, KnowledgeCollection
from overture.orchestration.agents.spec import AgentSpec
from overture.orchestration.agents.tools import MCP_CONNECTOR, REMEMBER, tool_name
from overture.orchestration.llm.scripted_provider import script_problems
from overture.platform import audit
from overture.platform.db import db, get_or_404, save_named, utcnow
from overture.platform.errors import NotFound, ValidationFailed
from overture.platform.ids import parse_id
from overture.platform.pagination import Page, paginate
from overture.platform.validation import clean_name
from overture.tenants.vault_models import Credential


@dataclass(frozen=True)
class LoadedAgent:
    """One frozen agent version, parsed: what the runtime runs."""

    agent_id: uuid.UUID
    version_id: uuid.UUID
    number: int
    name: str
    spec: AgentSpec


# --------------------------------------------------------------------------- runtime lookups


def current_versions(names: Iterable[str]) -> dict[str, str]:
    """Agent name -> id of its current version, for pinning at publish."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows = db.session.execute(select(Agent.name, Agent.current_version_id).where(
        Agent.name.in_(wanted), Agent.archived_at.is_(None),
        Agent.current_version_id.is_not(None))).all()
    found = {name: str(version_id) for name, version_id in rows}
    missing = [name for name in wanted if name not in found]
    if missing:
        raise ValidationFailed(
            [{"field": "agents", "message": f"no agent named {name!r}"} for name in missing],
            detail="unknown agent(s): " + ", ".join(missing))
    return found


def load_version(version_id: str | uuid.UUID) -> LoadedAgent:
    """A version by id (archived agents' versions too: published workflows pin them)."""
    ident = parse_id(version_id)
    version = None if ident is None else db.session.scalars(
        select(AgentVersion).where(AgentVersion.id == ident)).one_or_none()
    if version is None:
        raise NotFound("agent version not found")
    return _loaded(version)


def load_current(name: str) -> LoadedAgent:
    agent = db.session.scalars(select(Agent).where(
        Agent.name == name, Agent.archived_at.is_(None))).one_or_none()
    if agent is None or agent.current_version_id is None:
        raise NotFound(f"no agent named {name!r}")
    return load_version(agent.current_version_id)


def _loaded(version: AgentVersion) -> LoadedAgent:
    spec = AgentSpec.from_json(version.config)
    return LoadedAgent(agent_id=version.agent_id, version_id=version.id, number=version.number,
                       name=spec.name, spec=spec)


# --------------------------------------------------------------------------- validation


def _with_prefix(error: ValidationFailed, prefix: str) -> ValidationFailed:
    fields = [{**e, "field": prefix if e["field"] == "(root)" else f"{prefix}.{e['field']}"}
              for e in error.errors]
    return ValidationFailed(fields)


def check_config(name: str, config: Any, agent_id: uuid.UUID | None = None) -> AgentSpec:
    """Parse `config` as the agent `name`'s spec and check what it refers to. Errors name
    fields as the API sees them (`config.tools.0.ref`)."""
    if not isinstance(config, dict):
        raise ValidationFailed.field("config", "must be a JSON object")
    if config.get("name", name) != name:
        raise ValidationFailed.field("config.name", "must match the agent's name")
    try:
        spec = AgentSpec.from_json({**config, "name": name})
    except ValidationFailed as error:
        raise _with_prefix(error, "config") from error
    # A script the scripted provider would refuse at run time is refused now.
    errors = [{"field": f"config.script.{where}", "message": message}
              for where, message in script_problems(spec.script)]
    errors += _reference_problems(spec, agent_id)
    if errors:
        raise ValidationFailed(errors)
    return spec


def _reference_problems(spec: AgentSpec, agent_id: uuid.UUID | None) -> list[dict[str, str]]:
    """What the spec names must exist in this tenant. Side effects are the runtime's to
    enforce (`allow_side_effects`), not checked here."""
    errors = []
    if spec.credential_id is not None and not _credential_exists(spec.credential_id):
        errors.append({"field": "config.credential_id", "message": "no such credential"})
    seen: set[str] = set()
    for index, tool in enumerate(spec.tools):
        field = f"config.tools.{index}"
        problem = _TOOL_CHECKS[tool.kind](tool.ref, spec.name, agent_id)
        if problem:
            errors.append({"field": f"{field}.ref", "message": problem})
        if tool.name and tool.name in seen:
            errors.append({"field": f"{field}.name", "message": "another tool has this name"})
        elif spec.notes and tool_name(tool) == REMEMBER:
            errors.append({"field": f"{field}.name", "message": f"{REMEMBER!r} is the notes "
                                                                 "tool's name; pick another"})
        seen.add(tool.name)
    return errors


def _credential_exists(credential_id: str) -> bool:
    ident = parse_id(credential_id)
    return ident is not None and db.session.scalar(
        select(func.count()).select_from(Credential).where(Credential.id == ident)) == 1


def _agent_problem(ref: str, own_name: str, agent_id: uuid.UUID | None) -> str | None:
    if ref == own_name:
        return "an agent cannot delegate to itself"
    other = db.session.scalars(select(Agent).where(
        Agent.name == ref, Agent.archived_at.is_(None))).one_or_none()
    if other is None:
        return f"no agent named {ref!r}"
    if other.id == agent_id:
        return "an agent cannot delegate to itself"
    return None


def _knowledge_problem(ref: str, own_name: str, agent_id: uuid.UUID | None) -> str | None:
    exists = db.session.scalar(select(func.count()).select_from(KnowledgeCollection).where(
        KnowledgeCollection.name == ref))
    return None if exists else f"no knowledge collection named {ref!r}"


def _action_problem(ref: str, own_name: str, agent_id: uuid.UUID | None) -> str | None:
    # Connection names may hold a '/', action keys do not: split at the last one.
    connection_name, slash, action_key = ref.rpartition("/")
    if not slash or not connection_name or not action_key:
        return "must be '<connection name>/<action key>'"
    connection = db.session.scalars(select(Connection).where(
        Connection.name == connection_name)).one_or_none()
    if connection is None:
        return f"no connection named {connection_name!r}"
    if connection.connector_key == MCP_CONNECTOR:
        return None  # a tool of the MCP server: its list is read when the agent runs
    connector = registry.find(connection.connector_key)
    if connector is None or connector.action(action_key) is None:
        return f"connector {connection.connector_key!r} has no action {action_key!r}"
    return None


_TOOL_CHECKS = {"agent": _agent_problem, "knowledge": _knowledge_problem,
                "action": _action_problem}


# --------------------------------------------------------------------------- CRUD


def create_agent(name: str, config: Any, description: str = "",
                 created_by: uuid.UUID | None = None) -> Agent:
    """A new agent and its version 1."""
    name = clean_name(name)
    spec = check_config(name, config)
    agent = Agent(name=name, description=description or "", created_by_id=created_by)
    save_named(agent, name, "an agent", add=True)
    version = _new_version(agent, spec, created_by)
    audit.record("agent.created", target_type="agent", target_id=agent.id,
                 details={"name": name, "version": version.number})
    return agent


def update_agent(agent: Agent, *, name: str | None = None, description: str | None = None,
                 config: Any = None, updated_by: uuid.UUID | None = None) -> Agent:
    """Rename, describe, or replace the config. A changed name or config becomes the next
    version, current from then on; an unchanged one adds no version."""
    changed = []
    if description is not None and description != agent.description:
        agent.description = description
        changed.append("description")
    if name is not None or config is not None:
        changed += _revise(agent, name, config, updated_by)
    db.session.flush()
    current = current_version(agent)
    audit.record("agent.updated", target_type="agent", target_id=agent.id,
                 details={"changed": changed, "version": current.number if current else None})
    return agent


def _revise(agent: Agent, name: str | None, config: Any,
            updated_by: uuid.UUID | None) -> list[str]:
    new_name = clean_name(name) if name is not None else agent.name
    current = current_version(agent)
    if config is None:  # a rename keeps the config
        config = {**(current.config if current else {}), "name": new_name}
    elif isinstance(config, dict) and config.get("name") == agent.name:
        config = {**config, "name": new_name}  # a config read back from GET, renamed
    spec = check_config(new_name, config, agent.id)
    changed = []
    if new_name != agent.name:
        save_named(agent, new_name, "an agent")
        changed.append("name")
    if current is None or spec.to_json() != _normalised(current.config):
        _new_version(agent, spec, updated_by)
        changed.append("config")
    return changed


def _normalised(config: dict[str, Any]) -> dict[str, Any]:
    """A stored config as the spec writes it today: a version saved before a field was
    added lacks it, and is still the same configuration."""
    try:
        return AgentSpec.from_json(config).to_json()
    except ValidationFailed:
        return config


def archive_agent(agent: Agent) -> None:
    """Gone from lists and name lookups; its versions stay loadable for pinned workflows.
    The name is freed for a new agent."""
    name = agent.name
    agent.archived_at = utcnow()
    agent.name = f"{name[:80]}~archived~{agent.id.hex[:12]}"
    db.session.flush()
    audit.record("agent.archived", target_type="agent", target_id=agent.id,
                 details={"name": name})


def list_agents(cursor: str | None, limit: int | None) -> Page[Agent]:
    return paginate(select(Agent).where(Agent.archived_at.is_(None)), Agent.id, cursor, limit)


def get_agent(agent_id: Any) -> Agent:
    agent = get_or_404(Agent, agent_id, "agent")
    if agent.archived_at is not None:
        raise NotFound("agent not found")
    return agent


def versions(agent: Agent) -> list[AgentVersion]:
    return list(db.session.scalars(select(AgentVersion).where(
        AgentVersion.agent_id == agent.id).order_by(AgentVersion.number)))


def get_version(agent: Agent, number: int) -> AgentVersion:
    version = db.session.scalars(select(AgentVersion).where(
        AgentVersion.agent_id == agent.id, AgentVersion.number == number)).one_or_none()
    if version is None:
        raise NotFound(f"agent has no version {number}")
    return version


def current_version(agent: Agent) -> AgentVersion | None:
    if agent.current_version_id is None:
        return None
    return db.session.get(AgentVersion, agent.current_version_id)


def current_versions_of(agents: list[Agent]) -> dict[uuid.UUID, AgentVersion]:
    """Each agent's current version, by agent id, in one statement (a list's)."""
    wanted = {a.current_version_id for a in agents if a.current_version_id is not None}
    if not wanted:
        return {}
    found = {v.id: v for v in db.session.scalars(
        select(AgentVersion).where(AgentVersion.id.in_(wanted)))}
    return {a.id: found[a.current_version_id] for a in agents
            if a.current_version_id in found}


# --------------------------------------------------------------------------- helpers


def _new_version(agent: Agent, spec: AgentSpec, created_by: uuid.UUID | None) -> AgentVersion:
    # Two updates at once would both pick max+1 and one would die on the unique key:
    # the agent row lock makes the second wait and take the next number.
    db.session.execute(select(Agent.id).where(Agent.id == agent.id).with_for_update())
    number = (db.session.scalar(select(func.max(AgentVersion.number))
                                .where(AgentVersion.agent_id == agent.id)) or 0) + 1
    version = AgentVersion(agent_id=agent.id, number=number, config=spec.to_json(),
                           created_by_id=created_by)
    db.session.add(version)
    db.session.flush()
    agent.current_version_id = version.id
    db.session.flush()
    return version

