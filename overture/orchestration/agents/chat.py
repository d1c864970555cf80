"""Portal chats: a conversation with one agent, turn by turn, inside the request.

    conversation = chat.start(agent_id, title="Ada, order 1042")
    reply = chat.send(conversation.id, "Where is my refund?")

A message runs the agent's current version (its delegates' current versions too) on the
conversation's last HISTORY_TURNS messages and the new one, bounded by the agent's
limits, and stores both turns once the agent has answered. There is no step here, so
what the invocation used and did (its ledger) is written into the request's
transaction by `write_ledger`: usage events carry the agent and no workflow or run;
audit events carry the conversation. A turn that fails stores no message, but what it
used is committed all the same (a model call is paid for either way).
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from overture.billing import enforce, usage
from overture.orchestration.agents import memory, service
from overture.orchestration.agents.models import Conversation, ConversationMessage
from overture.orchestration.agents.runtime import Runner
from overture.orchestration.agents.task import Answer, Task
from overture.orchestration.agents.watching import Watcher
from overture.orchestration.ledger import Ledger
from overture.orchestration.llm.types import Message
from overture.orchestration.outcomes import BUDGET_EXCEEDED, TRANSIENT, StepFailed
from overture.orchestration.steps import StepContext
from overture.platform import audit
from overture.platform.db import db, utcnow
from overture.platform.errors import (
    NotFound,
    OvertureError,
    PaymentRequired,
    ValidationFailed,
)
from overture.platform.pagination import Page, paginate
from overture.tenants.models import Membership

HISTORY_TURNS = 20  # earlier messages the model reads with a new one
HISTORY_CHARS = 40_000  # and at most this much of them, the newest kept
CHAT_TIMEOUT = 120.0  # seconds a provider call may take, as a step's timeout would say
MAX_TITLE = 200


class AgentFailed(OvertureError):
    """The agent could not answer (its limits, its configuration, its answers)."""

    status = 422
    code = "agent-failed"
    title = "The agent could not answer"


class AgentUnavailable(OvertureError):
    """The model provider is rate limiting or failing: the same message may work later."""

    status = 503
    code = "agent-unavailable"
    title = "The agent's model is unavailable"


@dataclass(frozen=True)
class Reply:
    user: ConversationMessage
    assistant: ConversationMessage
    answer: Answer
    usage: dict[str, Decimal]  # metric -> quantity, this turn's (delegates included)


# --------------------------------------------------------------------------- conversations


def start(agent_id: Any, title: str = "", end_user_id: uuid.UUID | None = None) -> Conversation:
    """A new conversation with the agent, optionally of one member of this workspace."""
    agent = service.get_agent(agent_id)
    if end_user_id is not None and not _is_member(end_user_id):
        raise ValidationFailed.field("end_user_id", "not a member of this workspace")
    conversation = memory.start_conversation(agent.id, end_user_id, (title or "").strip())
    audit.record("agent.conversation_started", target_type="agent", target_id=agent.id,
                 details={"conversation_id": str(conversation.id),
                          "end_user_id": str(end_user_id) if end_user_id else None})
    return conversation


def _is_member(user_id: uuid.UUID) -> bool:
    return bool(db.session.scalar(select(func.count()).select_from(Membership).where(
        Membership.user_id == user_id)))


def list_conversations(agent_id: Any, cursor: str | None, limit: int | None,
                       end_user_id: uuid.UUID | None = None) -> Page[Conversation]:
    agent = service.get_agent(agent_id)
    stmt = select(Conversation).where(Conversation.agent_id == agent.id)
    if end_user_id is not None:
        stmt = stmt.where(Conversation.end_user_id == end_user_id)
    return paginate(stmt, Conversation.id, cursor, limit)


def get(agent_id: Any, conversation_id: Any) -> Conversation:
    """The agent's conversation; another agent's (or tenant's) is not found."""
    agent = service.get_agent(agent_id)
    conversation = memory.get_conversation(conversation_id)
    if conversation.agent_id != agent.id:
        raise NotFound("conversation not found")
    return conversation


# --------------------------------------------------------------------------- a turn


def send(conversation: Conversation, content: str, watcher: Watcher | None = None) -> Reply:
    """Run the agent on the conversation and the new message; store both turns. A
    `watcher` reads the answer's text as the model produces it (`watching.Watcher`)."""
    content = (content or "").strip()
    if not 1 <= len(content) <= memory.MAX_MESSAGE:
        raise ValidationFailed.field("content", f"must be 1 to {memory.MAX_MESSAGE} "
                                                "characters")
    agent = service.get_agent(conversation.agent_id)
    where = {"conversation_id": str(conversation.id)}
    ledger = Ledger()
    task = Task(prompt=content, data=content, label="chat", history=_history(conversation),
                watcher=watcher)
    try:
        answer = Runner(_context(conversation, ledger), _current).invoke(agent.name, task)
    except StepFailed as failure:
        _pay_for_failure(ledger, agent.id, where, failure, conversation.end_user_id)
        raise _problem(failure) from failure
    user = memory.append(conversation.id, "user", content)
    reply = memory.append(conversation.id, "assistant", reply_text(answer.output))
    write_ledger(ledger, where, conversation.end_user_id)
    audit.record("agent.conversation_replied", target_type="agent", target_id=agent.id,
                 details={**where, "message_id": str(reply.id), "status": answer.status})
    return Reply(user, reply, answer, usage_of(ledger))


def _history(conversation: Conversation) -> tuple[Message, ...]:
    """The last turns, oldest first, within HISTORY_CHARS: a long chat must not grow
    each call's cost without bound."""
    kept: list[Message] = []
    used = 0
    for m in reversed(memory.history(conversation.id, HISTORY_TURNS)):
        used += len(m.content)
        if used > HISTORY_CHARS:
            break
        if m.role in ("user", "assistant"):
            kept.append(Message(role=m.role, content=m.content))  # type: ignore[arg-type]
    while kept and kept[-1].role != "user":  # some providers want a user turn first
        kept.pop()
    return tuple(reversed(kept))


def _context(conversation: Conversation, ledger: Ledger) -> StepContext:
    """What the runtime needs of a step: a ledger, a timeout, the tenant, and a key
    unique to this turn for the idempotency keys of the agent's actions."""
    return StepContext(step={"id": "chat", "type": "agent"}, path="", scope={},
                       idempotency_key=f"ovt-chat-{uuid.uuid4()}", attempt=1,
                       timeout=CHAT_TIMEOUT, tenant_id=str(conversation.tenant_id),
                       started_at=utcnow(), ledger=ledger)


def _current(name: str) -> service.LoadedAgent:
    try:
        return service.load_current(name)
    except OvertureError as error:
        raise StepFailed("agent_not_found", f"agent {name!r}: {error.detail}") from error


def _pay_for_failure(ledger: Ledger, agent_id: uuid.UUID, where: dict[str, str],
                     failure: StepFailed, user_id: uuid.UUID | None) -> None:
    # The failure may have left the session mid-transaction; actions and notes
    # committed their own records, so nothing of the turn is lost by rolling back.
    db.session.rollback()
    write_ledger(ledger, where, user_id)
    audit.record("agent.conversation_failed", target_type="agent", target_id=agent_id,
                 details={**where, "code": failure.code})
    db.session.commit()


def _problem(failure: StepFailed) -> OvertureError:
    if failure.code == BUDGET_EXCEEDED:  # the 402 the limit's check raised, as it was
        refused = PaymentRequired(failure.message, **{
            k: v for k, v in failure.details.items() if k != "problem"})
        refused.code = str(failure.details.get("problem") or refused.code)
        return refused
    kind = AgentUnavailable if failure.code in TRANSIENT else AgentFailed
    return kind(failure.message, error=failure.as_error())


def reply_text(output: Any) -> str:
    """What the conversation keeps of an answer: text as is, anything else as JSON."""
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    return json.dumps(output, ensure_ascii=False, default=str)


# --------------------------------------------------------------------------- the ledger


def write_ledger(ledger: Ledger, details: dict[str, Any],
                 user_id: uuid.UUID | None = None) -> None:
    """A ledger outside a step (the engine's `accounting.write_ledger` writes a step's): its
    usage with the agent (and the conversation's end user) and no workflow or run, its
    audit events with `details`. A turn writes its ledger once, so it needs no key."""
    usage.record(ledger.usage, attribution=usage.Attribution(user_id=user_id))
    enforce.settle(ledger.holds)
    for note in ledger.audit:
        audit.record(note.action, target_type=note.target_type, target_id=note.target_id,
                     details={**note.details, **details}, actor=note.actor)


def usage_of(ledger: Ledger) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for entry in ledger.usage:
        totals[entry.meter] += entry.quantity
    return dict(totals)
