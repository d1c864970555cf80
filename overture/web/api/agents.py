"""Agents, their versions and their notes."""

from __future__ import annotations

from typing import Any

from overture.orchestration.agents import memory, service
from overture.orchestration.agents.models import Agent, AgentNote, AgentVersion
from overture.platform.db import db
from overture.web.api import api
from overture.web.api.agent_schemas import (
    AgentCreate,
    AgentOut,
    AgentPage,
    AgentUpdate,
    AgentVersionList,
    AgentVersionOut,
    NoteCreate,
    NoteList,
    NoteOut,
    NoteQuery,
)
from overture.web.api.schemas import PageQuery
from overture.web.auth import current_access, require

TAGS = ["Agents"]


def agent_view(agent: Agent) -> dict[str, Any]:
    version = service.current_version(agent)
    return {
        "id": agent.id, "name": agent.name, "description": agent.description,
        "config": version.config if version else {},
        "current_version": version.number if version else None,
        "created_by_id": agent.created_by_id, "created_at": agent.created_at,
        "updated_at": agent.updated_at,
    }


@api.get("/agents")
@require("workflow.read")
@api.input(PageQuery, location="query", arg_name="query")
@api.output(AgentPage)
@api.doc(tags=TAGS, summary="List agents")
def list_agents(query: dict[str, Any]) -> dict[str, Any]:
    page = service.list_agents(query["cursor"], query["limit"])
    return page.body([agent_view(a) for a in page.items])


@api.post("/agents")
@require("workflow.edit")
@api.input(AgentCreate, arg_name="body")
@api.output(AgentOut, status_code=201)
@api.doc(tags=TAGS, summary="Create an agent; its configuration becomes version 1")
def create_agent(body: dict[str, Any]) -> dict[str, Any]:
    agent = service.create_agent(body["name"], body["config"], body["description"],
                                 current_access().principal.user.id)
    db.session.commit()
    return agent_view(agent)


@api.get("/agents/<agent_id>")
@require("workflow.read")
@api.output(AgentOut)
@api.doc(tags=TAGS, summary="One agent and its current configuration")
def get_agent(agent_id: str) -> dict[str, Any]:
    return agent_view(service.get_agent(agent_id))


@api.patch("/agents/<agent_id>")
@require("workflow.edit")
@api.input(AgentUpdate, arg_name="body")
@api.output(AgentOut)
@api.doc(tags=TAGS, summary="Rename, describe, or replace the configuration (a new version)")
def update_agent(agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
    agent = service.update_agent(service.get_agent(agent_id), name=body.get("name"),
                                 description=body.get("description"),
                                 config=body.get("config"),
                                 updated_by=current_access().principal.user.id)
    db.session.commit()
    return agent_view(agent)


@api.delete("/agents/<agent_id>")
@require("workflow.edit")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Archive an agent (workflow versions that pinned it keep it)")
def archive_agent(agent_id: str) -> tuple[str, int]:
    service.archive_agent(service.get_agent(agent_id))
    db.session.commit()
    return "", 204


@api.get("/agents/<agent_id>/versions")
@require("workflow.read")
@api.output(AgentVersionList)
@api.doc(tags=TAGS, summary="Every version, oldest first")
def list_agent_versions(agent_id: str) -> dict[str, Any]:
    return {"items": service.versions(service.get_agent(agent_id))}


@api.get("/agents/<agent_id>/versions/<int:number>")
@require("workflow.read")
@api.output(AgentVersionOut)
@api.doc(tags=TAGS, summary="One version")
def get_agent_version(agent_id: str, number: int) -> AgentVersion:
    return service.get_version(service.get_agent(agent_id), number)


@api.get("/agents/<agent_id>/notes")
@require("workflow.read")
@api.input(NoteQuery, location="query", arg_name="query")
@api.output(NoteList)
@api.doc(tags=TAGS, summary="The agent's notes, newest first (expired ones never)")
def list_agent_notes(agent_id: str, query: dict[str, Any]) -> dict[str, Any]:
    return {"items": memory.recall(service.get_agent(agent_id).id, query["limit"])}


@api.post("/agents/<agent_id>/notes")
@require("workflow.edit")
@api.input(NoteCreate, arg_name="body")
@api.output(NoteOut, status_code=201)
@api.doc(tags=TAGS, summary="Add a note; it expires after the agent's notes_retention_days")
def add_agent_note(agent_id: str, body: dict[str, Any]) -> AgentNote:
    note = memory.add_note(service.get_agent(agent_id).id, body["text"])
    db.session.commit()
    return note
