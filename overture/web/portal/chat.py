"""Chatting with a published agent. The conversation is kept server-side, one per
customer and agent (`customer.conversation`), and carried on at each visit.

A message sent by the page's script (`Accept: text/event-stream`) is answered with
server-sent events as the agent writes: `delta` (a piece of the answer's text),
`restart` (what came so far was not the answer: clear it), then `done` (the answer as
stored) or `error` (a sentence for the customer; the details stay in the log). The
agent runs in a thread of its own, in this workspace's scope and as this customer,
and stores both turns when it has answered, even if the page was closed meanwhile.
Without the script the form posts as any form and the page shows the answer.
"""

from __future__ import annotations

import contextvars
import json
import queue
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from flask import Response, current_app, flash, redirect, request, url_for

from overture.orchestration.agents import chat as agent_chat
from overture.orchestration.agents import memory
from overture.orchestration.portal import customer as service
from overture.platform.db import db
from overture.platform.errors import OvertureError, ValidationFailed
from overture.platform.logging import get_logger
from overture.web.portal import bp
from overture.web.portal.context import customer, person, render

log = get_logger(__name__)
SHOWN = 100  # messages of a conversation on the page
TRIED_LATER = "The assistant is busy right now. Please try again in a moment."
COULD_NOT = "The assistant could not answer this time. Please try again or rephrase."


@bp.get("/chat/<agent_id>")
@customer
def chat(agent_id: str) -> Any:
    agent, publication = service.agent_offer(agent_id)
    conversation = service.conversation(agent, person())
    db.session.commit()
    return render("portal/chat.html", title=publication.label, offer=publication,
                  agent_id=agent.id, messages=service.messages(conversation, SHOWN), error=None)


@bp.post("/chat/<agent_id>")
@customer
def send(agent_id: str) -> Any:
    agent, publication = service.agent_offer(agent_id)
    conversation = service.conversation(agent, person())
    db.session.commit()
    content = (request.form.get("content") or "").strip()
    if not 1 <= len(content) <= memory.MAX_MESSAGE:
        error = "Type a message first." if not content else "This message is too long."
        if _streaming():
            return _events(iter([("error", {"message": error})]), 422)
        return render("portal/chat.html", 422, title=publication.label, offer=publication,
                      agent_id=agent.id, messages=service.messages(conversation, SHOWN),
                      error=error)
    if _streaming():
        return _events(_answer_in_thread(conversation.id, content))
    try:
        agent_chat.send(conversation, content)
        db.session.commit()
    except OvertureError as error:
        db.session.rollback()
        flash(_sentence(error), "error")
    return redirect(url_for("portal.chat", agent_id=agent.id))


def _streaming() -> bool:
    return request.accept_mimetypes.best == "text/event-stream"


def _sentence(error: OvertureError) -> str:
    if isinstance(error, ValidationFailed):
        return error.errors[0]["message"].capitalize() + "."
    return TRIED_LATER if isinstance(error, agent_chat.AgentUnavailable) else COULD_NOT


class _Queued:
    """A `watching.Watcher` that hands what it sees to the response being streamed."""

    def __init__(self, events: queue.Queue[tuple[str, dict[str, Any]] | None]) -> None:
        self.events = events

    def text(self, piece: str) -> None:
        self.events.put(("delta", {"text": piece}))

    def restart(self) -> None:
        self.events.put(("restart", {}))


def _answer_in_thread(conversation_id: uuid.UUID,
                      content: str) -> Iterator[tuple[str, dict[str, Any]]]:
    events: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def work() -> None:
        # The copied context carries this request's scope and audit actor; the app
        # context is the thread's own, and so is its database session.
        with app.app_context():
            try:
                conversation = memory.get_conversation(conversation_id)
                reply = agent_chat.send(conversation, content, _Queued(events))
                db.session.commit()
                events.put(("done", {"message": reply.assistant.content}))
            except OvertureError as error:
                db.session.rollback()
                log.info("portal.chat_failed", code=error.code, detail=error.detail)
                events.put(("error", {"message": _sentence(error)}))
            except Exception:
                db.session.rollback()
                log.exception("portal.chat_crashed")
                events.put(("error", {"message": COULD_NOT}))
            finally:
                db.session.remove()
                events.put(None)

    context = contextvars.copy_context()  # here, in the request: its scope and actor
    threading.Thread(target=context.run, args=(work,), name="portal-chat", daemon=True).start()

    def read() -> Iterator[tuple[str, dict[str, Any]]]:
        while (event := events.get()) is not None:
            yield event

    return read()


def _events(source: Iterator[tuple[str, dict[str, Any]]], status: int = 200) -> Response:
    def stream() -> Iterator[str]:
        yield ": the answer follows\n\n"  # headers leave now, before the model answers
        for name, data in source:
            yield f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"

    return Response(stream(), status=status, mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
