"""Agent memory beyond one run: per-agent notes kept for the agent's retention setting,
and the conversation memory of portal chats.

Run memory is not here: a step's input mapping decides what an agent sees of a run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select

from overture.orchestration.agents.models import (
    Agent,
    AgentNote,
    AgentVersion,
    Conversation,
    ConversationMessage,
)
from overture.platform import audit
from overture.platform.db import db, get_or_404, scoped_to, utcnow
from overture.platform.errors import ValidationFailed

MAX_NOTE = 4_000
MAX_MESSAGE = 100_000
MAX_RECALL = 200
MAX_HISTORY = 500
ROLES = ("user", "assistant", "system", "tool")


class _FromAgent:
    """The default retention: what the agent's current version says."""


FROM_AGENT = _FromAgent()


# --------------------------------------------------------------------------- notes


def remember(agent_id: uuid.UUID | str, text: str, *,
             retention_days: int | _FromAgent | None = FROM_AGENT,
             now: datetime | None = None) -> AgentNote:
    """Keep a note for the agent; it expires after the retention (None keeps it)."""
    agent = get_or_404(Agent, agent_id, "agent")
    text = (text or "").strip()
    if not 1 <= len(text) <= MAX_NOTE:
        raise ValidationFailed.field("text", f"must be 1 to {MAX_NOTE} characters")
    if isinstance(retention_days, _FromAgent):
        retention_days = _retention_of(agent)
    now = now or utcnow()
    expires = now + timedelta(days=retention_days) if retention_days is not None else None
    note = AgentNote(agent_id=agent.id, text=text, created_at=now, expires_at=expires)
    db.session.add(note)
    db.session.flush()
    return note


def keep(agent_id: uuid.UUID | str, text: str, retention_days: int | None) -> AgentNote:
    """What an agent's `remember` tool does: a note, unless the same text is already
    kept, in which case that one is kept for the retention from now. A step run again
    after a crash thus adds no second copy."""
    agent = get_or_404(Agent, agent_id, "agent")
    text = (text or "").strip()
    now = utcnow()
    same = db.session.scalars(select(AgentNote).where(
        AgentNote.agent_id == agent.id, AgentNote.text == text,
        or_(AgentNote.expires_at.is_(None), AgentNote.expires_at > now))
        .order_by(AgentNote.created_at.desc()).limit(1)).first()
    if same is None:
        return remember(agent.id, text, retention_days=retention_days, now=now)
    same.expires_at = now + timedelta(days=retention_days) \
        if retention_days is not None else None
    db.session.flush()
    return same


def add_note(agent_id: uuid.UUID | str, text: str) -> AgentNote:
    """A note a person wrote (through the API): what the agent will recall, so audited."""
    note = remember(agent_id, text)
    audit.record("agent.note_added", target_type="agent", target_id=note.agent_id,
                 details={"note_id": str(note.id), "chars": len(note.text)})
    return note


def _retention_of(agent: Agent) -> int | None:
    config = db.session.scalar(select(AgentVersion.config).where(
        AgentVersion.id == agent.current_version_id)) or {}
    return config.get("notes_retention_days", 30)


def recall(agent_id: uuid.UUID | str, limit: int = 20,
           now: datetime | None = None) -> list[AgentNote]:
    """The agent's notes, newest first; expired ones never, even before the sweeper ran."""
    if not 1 <= limit <= MAX_RECALL:
        raise ValidationFailed.field("limit", f"must be between 1 and {MAX_RECALL}")
    agent = get_or_404(Agent, agent_id, "agent")
    now = now or utcnow()
    return list(db.session.scalars(
        select(AgentNote).where(AgentNote.agent_id == agent.id,
                                or_(AgentNote.expires_at.is_(None), AgentNote.expires_at > now))
        .order_by(AgentNote.created_at.desc(), AgentNote.id.desc()).limit(limit)))


def purge_expired(now: datetime | None = None) -> int:
    """Delete the scope tenant's expired notes; how many went."""
    result: Any = db.session.execute(
        delete(AgentNote).where(AgentNote.expires_at <= (now or utcnow())),
        execution_options={"synchronize_session": False})
    return int(result.rowcount or 0)


def purge_all_expired(now: datetime | None = None) -> int:
    """For the sweeper: every tenant's expired notes, one tenant scope at a time."""
    from overture.tenants.lifecycle import all_tenants

    purged = 0
    for tenant in all_tenants():
        with scoped_to(tenant.id):
            purged += purge_expired(now)
    return purged


# --------------------------------------------------------------------------- conversations


@dataclass(frozen=True)
class Message:
    role: str
    content: str
    created_at: datetime


def start_conversation(agent_id: uuid.UUID | str, end_user_id: uuid.UUID | None = None,
                       title: str = "") -> Conversation:
    agent = get_or_404(Agent, agent_id, "agent")
    conversation = Conversation(agent_id=agent.id, end_user_id=end_user_id,
                                title=(title or "")[:200])
    db.session.add(conversation)
    db.session.flush()
    return conversation


def get_conversation(conversation_id: uuid.UUID | str) -> Conversation:
    return get_or_404(Conversation, conversation_id, "conversation")


def conversations_of(agent_id: uuid.UUID | str,
                     end_user_id: uuid.UUID | None = None) -> list[Conversation]:
    """The agent's conversations (one end user's, if named), most recent first."""
    stmt = select(Conversation).where(Conversation.agent_id == agent_id)
    if end_user_id is not None:
        stmt = stmt.where(Conversation.end_user_id == end_user_id)
    return list(db.session.scalars(stmt.order_by(Conversation.updated_at.desc())))


def append(conversation_id: uuid.UUID | str, role: str, content: str) -> ConversationMessage:
    if role not in ROLES:
        raise ValidationFailed.field("role", f"one of {', '.join(ROLES)}")
    if len(content or "") > MAX_MESSAGE:
        raise ValidationFailed.field("content", f"at most {MAX_MESSAGE} characters")
    conversation = get_conversation(conversation_id)
    message = ConversationMessage(conversation_id=conversation.id, role=role,
                                  content=content or "")
    conversation.updated_at = utcnow()
    db.session.add(message)
    db.session.flush()
    return message


def history(conversation_id: uuid.UUID | str, limit: int = 50) -> list[Message]:
    """The last `limit` messages, oldest first: what the model reads next."""
    if not 1 <= limit <= MAX_HISTORY:
        raise ValidationFailed.field("limit", f"must be between 1 and {MAX_HISTORY}")
    conversation = get_conversation(conversation_id)
    rows = db.session.scalars(
        select(ConversationMessage).where(ConversationMessage.conversation_id == conversation.id)
        .order_by(ConversationMessage.id.desc()).limit(limit)).all()
    return [Message(r.role, r.content, r.created_at) for r in reversed(rows)]
