"""Agents, their versions, their notes, and conversations with them (portal chats)."""

from __future__ import annotations

import uuid
from typing import Any

from overture.orchestration.agents import chat, memory, service
from overture.orchestration.agents.models import Agent, AgentNote, AgentVersion, Conversation
from overture.platform.db import db
from overture.web.api import api
from overture.web.api.agent_schemas import (
    AgentCreate,
    AgentOut,
    AgentPage,
    AgentUpdate,
    AgentVersionList,
    AgentVersionOut,
    ConversationCreate,
    ConversationDetail,
    ConversationOut,
    ConversationPage,
    ConversationQuery,
    MessageCreate,
    MessagesQuery,
    NoteCreate,
    NoteList,
    NoteOut,
    NoteQuery,
    ReplyOut,
)
from overture.web.api.schemas import PageQuery
from overture.web.auth import current_access, require

TAGS = ["Agents"]


def agent_view(agent: Agent, versions: dict[uuid.UUID, AgentVersion] | None = None
               ) -> dict[str, Any]:
    """`versions`: the current versions of a page of agents, read together."""
    version = versions.get(agent.id) if versions is not None else \
        service.current_version(agent)
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
    versions = service.current_versions_of(page.items)
    return page.body([agent_view(a, versions) for a in page.items])


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


# --------------------------------------------------------------------------- conversations


@api.post("/agents/<agent_id>/conversations")
@require("run.start")
@api.input(ConversationCreate, arg_name="body")
@api.output(ConversationOut, status_code=201)
@api.doc(tags=TAGS, summary="Start a conversation with the agent (a portal chat)")
def start_conversation(agent_id: str, body: dict[str, Any]) -> Conversation:
    conversation = chat.start(agent_id, body["title"], body["end_user_id"])
    db.session.commit()
    return conversation


@api.get("/agents/<agent_id>/conversations")
@require("run.read")
@api.input(ConversationQuery, location="query", arg_name="query")
@api.output(ConversationPage)
@api.doc(tags=TAGS, summary="The agent's conversations, oldest first")
def list_conversations(agent_id: str, query: dict[str, Any]) -> dict[str, Any]:
    page = chat.list_conversations(agent_id, query["cursor"], query["limit"],
                                   query["end_user_id"])
    return page.body(page.items)


@api.get("/agents/<agent_id>/conversations/<conversation_id>")
@require("run.read")
@api.input(MessagesQuery, location="query", arg_name="query")
@api.output(ConversationDetail)
@api.doc(tags=TAGS, summary="A conversation and its last messages, oldest first")
def get_conversation(agent_id: str, conversation_id: str,
                     query: dict[str, Any]) -> dict[str, Any]:
    conversation = chat.get(agent_id, conversation_id)
    return {**conversation_view(conversation),
            "messages": memory.history(conversation.id, query["limit"])}


@api.post("/agents/<agent_id>/conversations/<conversation_id>/messages")
@require("run.start")
@api.input(MessageCreate, arg_name="body")
@api.output(ReplyOut)
@api.doc(tags=TAGS, summary="Send a message: the agent answers from the conversation so "
                            "far, within its limits, and both turns are kept")
def send_message(agent_id: str, conversation_id: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = chat.send(chat.get(agent_id, conversation_id), body["content"])
    db.session.commit()
    usage = reply.usage
    return {"message": reply.assistant, "status": reply.answer.status,
            "confidence": reply.answer.confidence, "output": reply.answer.output,
            "usage": {"input_tokens": usage.get("llm_input_tokens", 0),
                      "output_tokens": usage.get("llm_output_tokens", 0),
                      "cost": usage.get("llm_cost"),
                      "agent_invocations": usage.get("agent_invocations", 0),
                      "tool_calls": usage.get("agent_tool_calls", 0)}}


def conversation_view(conversation: Conversation) -> dict[str, Any]:
    return {"id": conversation.id, "agent_id": conversation.agent_id,
            "title": conversation.title, "end_user_id": conversation.end_user_id,
            "created_at": conversation.created_at, "updated_at": conversation.updated_at}
