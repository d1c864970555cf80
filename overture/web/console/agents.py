"""Agents: the list, create and edit (each saved change is a new version, as in the
API), a chat panel to try the agent against its configured provider, and how it
performed over a chosen period. The services are the API's (agents.service, agents.chat,
performance), and so are the permissions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from overture.orchestration import performance
from overture.orchestration.agents import chat, knowledge, memory, service
from overture.orchestration.agents.models import Agent
from overture.platform.db import db, utcnow
from overture.platform.errors import OvertureError, ValidationFailed
from overture.tenants import credentials
from overture.web.console import agent_form, bp
from overture.web.console.context import console_access, page, render
from overture.web.console.forms import FormErrors, form_errors, status_of

READ, EDIT, CHAT, PERFORMANCE = "workflow.read", "workflow.edit", "run.start", "run.read"
PERIODS = (7, 30, 90)
TRANSCRIPT = 100  # messages of a chat shown


def _config(agent: Agent) -> dict[str, Any]:
    version = service.current_version(agent)
    return version.config if version else {}


@bp.get("/agents")
@page(READ)
def agents() -> Any:
    rows = []
    listed = service.list_agents(None, 200).items
    versions = service.current_versions_of(listed)
    for agent in listed:
        version = versions.get(agent.id)
        config = version.config if version else {}
        rows.append({"agent": agent, "model": config.get("model") or {},
                     "tools": len(config.get("tools") or [])})
    rows.sort(key=lambda r: r["agent"].name.lower())
    return render("console/agents.html", title="Agents", rows=rows,
                  can_edit=console_access().can(EDIT))


# --------------------------------------------------------------------------- create, edit


def _choices() -> dict[str, Any]:
    """What the form offers: collections to read, credentials for the provider."""
    access = console_access()
    collections = sorted(c.name for c in knowledge.list_collections(None, 200).items)
    creds = (credentials.list_credentials(access, None, 200).items
             if access.can("credential.read") else [])
    return {"collections": collections, "credentials": creds}


def _form_page(form: agent_form.AgentForm, agent: Agent | None,
               errors: FormErrors | None = None) -> Any:
    errors = errors or FormErrors()
    title = f"Edit {agent.name}" if agent else "New agent"
    return render("console/agents_form.html", status_of(errors), title=title, agent=agent,
                  form=form, errors=errors,
                  providers=agent_form.providers(form.values.get("provider", "")),
                  **_choices())


@bp.get("/agents/new")
@page(EDIT)
def new_agent() -> Any:
    return _form_page(agent_form.blank(), None)


@bp.post("/agents")
@page(EDIT)
def create_agent() -> Any:
    form = agent_form.read(request.form)
    with form_errors() as errors:
        config = agent_form.to_config(form, {})
        agent = service.create_agent(form.values["name"], config, form.values["description"],
                                     console_access().principal.user.id)
        db.session.commit()
        flash(f"Agent {agent.name} created. Try it in the chat below.", "ok")
        return redirect(url_for("console.agent", agent_id=agent.id))
    return _form_page(form, None, agent_form.place(errors, form))


@bp.get("/agents/<agent_id>/edit")
@page(EDIT)
def edit_agent(agent_id: str) -> Any:
    agent = service.get_agent(agent_id)
    return _form_page(agent_form.from_config(agent.name, agent.description, _config(agent)),
                      agent)


@bp.post("/agents/<agent_id>")
@page(EDIT)
def update_agent(agent_id: str) -> Any:
    agent = service.get_agent(agent_id)
    form = agent_form.read(request.form)
    with form_errors() as errors:
        config = agent_form.to_config(form, _config(agent))
        service.update_agent(agent, name=form.values["name"],
                             description=form.values["description"], config=config,
                             updated_by=console_access().principal.user.id)
        db.session.commit()
        version = service.current_version(agent)
        flash(f"Agent {agent.name} saved (version {version.number if version else '—'}).", "ok")
        return redirect(url_for("console.agent", agent_id=agent.id))
    return _form_page(form, service.get_agent(agent_id), agent_form.place(errors, form))


@bp.post("/agents/<agent_id>/archive")
@page(EDIT)
def archive_agent(agent_id: str) -> Response:
    agent = service.get_agent(agent_id)
    name = agent.name
    service.archive_agent(agent)
    db.session.commit()
    flash(f"Agent {name} archived. Published workflows that use it keep their version.", "ok")
    return redirect(url_for("console.agents"))


# --------------------------------------------------------------------------- the agent page


def _period() -> int:
    days = request.args.get("days", "7")
    return int(days) if days.isdigit() and int(days) in PERIODS else 7


def _performance(agent: Agent, days: int) -> Any:
    if not console_access().can(PERFORMANCE):
        return None
    until = utcnow()
    return performance.agent_performance(agent.id, until - timedelta(days=days), until)


def _agent_page(agent: Agent, chat_state: dict[str, Any] | None = None, status: int = 200) -> Any:
    access = console_access()
    days = _period()
    version = service.current_version(agent)
    return render("console/agents_detail.html", status, title=agent.name, agent=agent,
                  config=_config(agent), version=version, days=days, periods=PERIODS,
                  perf=_performance(agent, days), can_edit=access.can(EDIT),
                  can_chat=access.can(CHAT), chat=chat_state or {"messages": []},
                  can_compare=access.can("run.start"))


@bp.get("/agents/<agent_id>")
@page(READ)
def agent(agent_id: str) -> Any:
    return _agent_page(service.get_agent(agent_id))


@bp.post("/agents/<agent_id>/chat")
@page(CHAT)
def chat_with_agent(agent_id: str) -> Any:
    """One turn: the message goes to the agent's current version; the transcript so far
    comes back (htmx swaps the panel; without script the whole page)."""
    agent = service.get_agent(agent_id)
    state = _turn(agent, request.form.get("conversation_id", ""),
                  request.form.get("content", ""))
    status = 422 if state.get("error") else 200
    if request.headers.get("HX-Request"):
        # htmx swaps only 2xx answers: the error is in the panel, said plainly.
        return render("console/agents_chat.html", agent=agent, chat=state, can_chat=True)[0]
    return _agent_page(agent, state, status)


def _turn(agent: Agent, conversation_id: str, content: str) -> dict[str, Any]:
    state: dict[str, Any] = {"messages": [], "content": content}
    try:
        if conversation_id:
            conversation = chat.get(agent.id, conversation_id)
        elif not content.strip():
            raise ValidationFailed.field("content", "write a message first")
        else:
            conversation = chat.start(agent.id, "Console test chat")
            db.session.commit()  # a failed first turn keeps its conversation
        state["conversation_id"] = str(conversation.id)
        if not content.strip():
            raise ValidationFailed.field("content", "write a message first")
        reply = chat.send(conversation, content)
        db.session.commit()
        state["content"] = ""
        state["last"] = reply
    except OvertureError as error:
        db.session.rollback()
        state["error"] = _said(error)
    if state.get("conversation_id"):
        state["messages"] = memory.history(state["conversation_id"], TRANSCRIPT)
    return state


def _said(error: OvertureError) -> str:
    if isinstance(error, ValidationFailed) and error.errors:
        text = error.errors[0]["message"]
    else:
        text = error.detail or error.title
    text = text.strip()
    return text[:1].upper() + text[1:]
