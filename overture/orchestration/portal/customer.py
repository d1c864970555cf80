"""What a portal user sees and does: the workspace's published workflows and agents,
runs they start, their own runs, the approvals assigned to them, and their data.

Everything runs in the workspace's scope, as that user. A run, an approval or a
conversation that is not theirs is not found, exactly like one that does not exist.
A run is shown through its publication: its status and times, the outputs of the
steps the builder chose, its final output if chosen; never step inputs, errors,
connector responses, tokens or costs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select

from overture.billing import usage
from overture.orchestration import approvals, runs, workflows
from overture.orchestration.agents import chat
from overture.orchestration.agents.models import Agent, Conversation, ConversationMessage
from overture.orchestration.definition import Graph
from overture.orchestration.definition import input_problems as definition_input_problems
from overture.orchestration.models import (
    Approval,
    ApprovalStatus,
    Run,
    RunStatus,
    StepRun,
    StepStatus,
    Workflow,
)
from overture.orchestration.portal import publishing
from overture.orchestration.portal.models import Publication
from overture.platform.db import db, get_or_404, utcnow
from overture.platform.errors import NotFound, ValidationFailed
from overture.tenants.models import User
from overture.tenants.roles import Role

TRIGGER = "portal"
EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
MAX_NOTE = 2_000
RUNS_SHOWN = 50
EXPORT_LIMIT = 10_000  # runs and conversations in one download


@dataclass(frozen=True)
class Offer:
    """A published workflow or agent, as a customer sees it."""

    kind: str  # workflow | agent
    id: uuid.UUID
    label: str
    description: str


# --------------------------------------------------------------------------- what is offered


def offers() -> list[Offer]:
    """The published workflows with a live version and agents with a version."""
    rows = db.session.execute(
        select(Publication, Workflow, Agent)
        .outerjoin(Workflow, Workflow.id == Publication.workflow_id)
        .outerjoin(Agent, Agent.id == Publication.agent_id)
        .where(Publication.published.is_(True))
        .order_by(Publication.label, Publication.id)).all()
    found = []
    for publication, workflow, agent in rows:
        if _usable(workflow, agent):
            found.append(Offer(publication.kind, publication.target_id, publication.label,
                               publication.description))
    return found


def _usable(workflow: Workflow | None, agent: Agent | None) -> bool:
    target = workflow or agent
    return (target is not None and target.archived_at is None
            and target.current_version_id is not None)


def workflow_offer(workflow_id: Any) -> tuple[Workflow, Publication]:
    """A published workflow; anything else is not found."""
    workflow = get_or_404(Workflow, workflow_id, "workflow")
    publication = publishing.of_workflow(workflow.id)
    if publication is None or not publication.published or not _usable(workflow, None):
        raise NotFound("workflow not found")
    return workflow, publication


def agent_offer(agent_id: Any) -> tuple[Agent, Publication]:
    agent = get_or_404(Agent, agent_id, "agent")
    publication = publishing.of_agent(agent.id)
    if publication is None or not publication.published or not _usable(None, agent):
        raise NotFound("agent not found")
    return agent, publication


def input_schema(workflow: Workflow) -> dict[str, Any]:
    """The live version's `input_schema` (a form with no fields when it has none)."""
    version = workflows.current_version(workflow)
    schema = (version.definition or {}).get("input_schema") if version else None
    return schema if isinstance(schema, dict) else EMPTY_SCHEMA


def input_problems(workflow: Workflow, input: dict[str, Any]) -> list[dict[str, str]]:
    """What the input gets wrong against the schema, without starting anything."""
    return definition_input_problems(input_schema(workflow), input)


# --------------------------------------------------------------------------- activity


def note_activity(user_id: uuid.UUID, now: datetime) -> None:
    """Count the customer as active in the portal this month (the `portal_active_users`
    meter: once per person and month however often they come back). Commits."""
    usage.record_portal_activity(user_id, now)
    db.session.commit()


# --------------------------------------------------------------------------- runs


def start(workflow: Workflow, input: dict[str, Any], user_id: uuid.UUID) -> Run:
    """A run of the live version, started by the user; the input must fit the
    workflow's schema (ValidationFailed naming each field). The caller commits."""
    run, _ = runs.start_run(workflow, input, TRIGGER, started_by=user_id, check_schema=True)
    return run


def my_runs(user_id: uuid.UUID, limit: int = RUNS_SHOWN) -> list[Run]:
    return list(db.session.scalars(select(Run).where(Run.started_by_id == user_id)
                                   .order_by(Run.created_at.desc(), Run.id.desc())
                                   .limit(limit)))


def my_run(run_id: Any, user_id: uuid.UUID) -> Run:
    run = get_or_404(Run, run_id, "run")
    if run.started_by_id != user_id:
        raise NotFound("run not found")
    return run


def summaries(found: list[Run]) -> list[dict[str, Any]]:
    """Runs as a list shows them: what, its status, when (one query for the labels)."""
    ids = {r.workflow_id for r in found}
    labels = dict(db.session.execute(select(Publication.workflow_id, Publication.label).where(
        Publication.workflow_id.in_(ids))).all()) if ids else {}
    return [{"id": str(r.id), "label": labels.get(r.workflow_id, "Request"),
             "status": r.status, "created_at": r.created_at} for r in found]


def run_view(run: Run, user_id: uuid.UUID, with_input: bool = False) -> dict[str, Any]:
    """The run as its customer may see it, and nothing more."""
    publication = publishing.of_workflow(run.workflow_id)
    visible = list(publication.visible_steps or []) if publication else []
    view: dict[str, Any] = {
        "id": str(run.id), "workflow_id": str(run.workflow_id),
        "label": publication.label if publication else "Request",
        "status": run.status, "created_at": run.created_at, "finished_at": run.finished_at,
        "steps": _visible_steps(run, visible),
        "waiting_for_you": [str(a.id) for a in my_approvals(user_id, run.id)],
    }
    if publication is not None and publication.show_output \
            and run.status == RunStatus.SUCCEEDED:
        view["output"] = run.output
    if with_input:
        view["input"] = run.input
    return view


def _visible_steps(run: Run, visible: list[str]) -> list[dict[str, Any]]:
    if not visible:
        return []
    _, version = runs.version_of(run)
    names = {sid: str(step.get("name") or sid)
             for sid, step in Graph.of(version.definition).steps.items()}
    rows = db.session.scalars(select(StepRun).where(
        StepRun.run_id == run.id, StepRun.step_id.in_(visible)).order_by(StepRun.id))
    shown = []
    for row in rows:
        step: dict[str, Any] = {"step": row.step_id, "name": names.get(row.step_id, row.step_id),
                                "status": row.status}
        if row.status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED):
            step["output"] = row.output
        shown.append(step)
    return shown


# --------------------------------------------------------------------------- approvals


def _mine(user_id: uuid.UUID) -> Any:
    """Assigned to the user by name, or to portal members on a run the user started
    (never one assigned to everyone: that is the staff's)."""
    return or_(Approval.assignee_user_id == user_id,
               and_(Approval.assignee_user_id.is_(None), Approval.assignee_role == Role.MEMBER,
                    Approval.run_id.in_(select(Run.id).where(Run.started_by_id == user_id))))


def my_approvals(user_id: uuid.UUID, run_id: uuid.UUID | None = None) -> list[Approval]:
    """The pending approvals the user is asked to answer, oldest deadline first."""
    stmt = select(Approval).where(Approval.status == ApprovalStatus.PENDING, _mine(user_id))
    if run_id is not None:
        stmt = stmt.where(Approval.run_id == run_id)
    found = list(db.session.scalars(stmt.order_by(Approval.created_at, Approval.id)))
    found.sort(key=lambda a: (a.deadline_at is None, a.deadline_at or a.created_at))
    return found


def my_approval(approval_id: Any, user_id: uuid.UUID) -> Approval:
    ident = approvals.get_approval(approval_id).id
    found = db.session.scalars(select(Approval).where(Approval.id == ident, _mine(user_id))
                               ).one_or_none()
    if found is None:
        raise NotFound("approval not found")
    return found


def decide(approval: Approval, decision: str, note: str, user_id: uuid.UUID) -> Approval:
    """The one exactly-once decision (`approvals.decide`); a second answer is a 409."""
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise ValidationFailed.field("note", f"at most {MAX_NOTE} characters")
    return approvals.decide(approval, decision, user_id=user_id, role=Role.MEMBER,
                            note=note or None, via="portal")


# --------------------------------------------------------------------------- chats


def conversation(agent: Agent, user: User) -> Conversation:
    """The user's conversation with the agent: kept server-side and carried on at
    each visit; started on the first. The caller commits."""
    found = db.session.scalars(select(Conversation).where(
        Conversation.agent_id == agent.id, Conversation.end_user_id == user.id)
        .order_by(Conversation.updated_at.desc(), Conversation.id.desc()).limit(1)).first()
    return found or chat.start(agent.id, title=user.email, end_user_id=user.id)


def messages(conversation: Conversation, limit: int | None = None) -> list[ConversationMessage]:
    """The turns people see (the user's and the agent's), oldest first."""
    stmt = select(ConversationMessage).where(
        ConversationMessage.conversation_id == conversation.id,
        ConversationMessage.role.in_(("user", "assistant"))
    ).order_by(ConversationMessage.id.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(reversed(db.session.scalars(stmt).all()))


# --------------------------------------------------------------------------- their data


def export(user: User) -> dict[str, Any]:
    """Everything of the user's in this workspace, as JSON-ready values."""
    labels = {p.target_id: p.label for p in publishing.list_publications()}
    conversations = db.session.scalars(select(Conversation).where(
        Conversation.end_user_id == user.id).order_by(Conversation.created_at)
        .limit(EXPORT_LIMIT))
    decided = db.session.scalars(select(Approval).where(
        Approval.decided_by_id == user.id).order_by(Approval.decided_at).limit(EXPORT_LIMIT))
    return _json({
        "exported_at": utcnow(),
        "account": {"email": user.email, "name": user.name},
        "runs": [run_view(r, user.id, with_input=True)
                 for r in my_runs(user.id, EXPORT_LIMIT)],
        "conversations": [
            {"agent": labels.get(c.agent_id, "Assistant"), "started_at": c.created_at,
             "messages": [{"role": m.role, "content": m.content, "at": m.created_at}
                          for m in messages(c)]}
            for c in conversations],
        "approvals_answered": [
            {"prompt": a.prompt, "decision": a.status, "note": a.decision_note,
             "decided_at": a.decided_at} for a in decided],
    })


def _json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value

