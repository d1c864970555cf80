"""What a workspace publishes to its portal, per workflow and per agent: published or
not, a label and a description for customers, and for a workflow the steps whose
outputs a customer sees on their run and whether its final output is shown.

Nothing is shown unless chosen: a new publication shows no step and no final output
until the builder ticks them. Each change is audited with what it now shows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from overture.orchestration import workflows
from overture.orchestration.agents import service as agents
from overture.orchestration.agents.models import Agent
from overture.orchestration.definition import Graph
from overture.orchestration.models import Workflow
from overture.orchestration.portal.models import Publication
from overture.platform import audit
from overture.platform.db import db
from overture.platform.errors import Conflict, ValidationFailed
from overture.platform.validation import check_text, clean_name

MAX_DESCRIPTION = 2_000
MAX_VISIBLE_STEPS = 200


@dataclass(frozen=True)
class StepChoice:
    """A step a builder may show to customers: its id, name and type."""

    id: str
    name: str
    type: str


@dataclass(frozen=True)
class Settings:
    """What the builder asks for; `None` keeps the stored value (a partial change)."""

    published: bool | None = None
    label: str | None = None
    description: str | None = None
    visible_steps: list[str] | None = None
    show_output: bool | None = None


def list_publications(kind: str | None = None) -> list[Publication]:
    stmt = select(Publication)
    if kind == "workflow":
        stmt = stmt.where(Publication.workflow_id.is_not(None))
    elif kind == "agent":
        stmt = stmt.where(Publication.agent_id.is_not(None))
    elif kind is not None:
        raise ValidationFailed.field("kind", "workflow or agent")
    return list(db.session.scalars(stmt.order_by(Publication.created_at, Publication.id)))


def of_workflow(workflow_id: uuid.UUID) -> Publication | None:
    return db.session.scalars(select(Publication).where(
        Publication.workflow_id == workflow_id)).one_or_none()


def of_agent(agent_id: uuid.UUID) -> Publication | None:
    return db.session.scalars(select(Publication).where(
        Publication.agent_id == agent_id)).one_or_none()


def step_choices(workflow: Workflow) -> list[StepChoice]:
    """The steps of the workflow's live version, in reading order (nested ones too)."""
    version = workflows.current_version(workflow)
    if version is None:
        return []
    graph = Graph.of(version.definition)
    return [StepChoice(sid, str(step.get("name") or sid), str(step.get("type")))
            for sid, step in graph.steps.items()]


def set_workflow(workflow: Workflow, settings: Settings,
                 by: uuid.UUID | None) -> Publication:
    """Create or change the workflow's publication; the caller commits."""
    publication = of_workflow(workflow.id) or Publication(
        workflow_id=workflow.id, label=workflow.name, description=workflow.description or "",
        visible_steps=[], show_output=False, published=False)
    if settings.visible_steps is not None:
        publication.visible_steps = _visible(workflow, settings.visible_steps)
    if settings.show_output is not None:
        publication.show_output = settings.show_output
    if settings.published and workflow.current_version_id is None:
        raise Conflict("publish the workflow before showing it in the portal: customers "
                       "can only start its live version")
    return _save(publication, settings, by, workflow.id)


def set_agent(agent: Agent, settings: Settings, by: uuid.UUID | None) -> Publication:
    """Create or change the agent's publication; the caller commits."""
    if settings.visible_steps or settings.show_output:
        raise ValidationFailed.field("visible_steps" if settings.visible_steps
                                     else "show_output", "only workflows have steps to show")
    publication = of_agent(agent.id) or Publication(
        agent_id=agent.id, label=agent.name, description=agent.description or "",
        visible_steps=[], show_output=False, published=False)
    if settings.published and agents.current_version(agent) is None:
        raise Conflict("the agent has no version to chat with yet")
    return _save(publication, settings, by, agent.id)


def remove(publication: Publication) -> None:
    """Forget the publication: the portal no longer shows it, nor the steps of
    customers' earlier runs."""
    audit.record("portal.publication_removed", target_type=publication.kind,
                 target_id=publication.target_id)
    db.session.delete(publication)
    db.session.flush()


def _save(publication: Publication, settings: Settings, by: uuid.UUID | None,
          target: uuid.UUID) -> Publication:
    if settings.label is not None:
        publication.label = clean_name(settings.label, "label")
    if settings.description is not None:
        description = settings.description.strip()
        if len(description) > MAX_DESCRIPTION:
            raise ValidationFailed.field("description", f"at most {MAX_DESCRIPTION} characters")
        publication.description = check_text(description, "description", multiline=True)
    if settings.published is not None:
        publication.published = settings.published
    publication.updated_by_id = by
    if publication.id is None:
        db.session.add(publication)
    db.session.flush()
    audit.record("portal.publication_changed", target_type=publication.kind, target_id=target,
                 details=_shown(publication))
    return publication


def _visible(workflow: Workflow, wanted: list[Any]) -> list[str]:
    if len(wanted) > MAX_VISIBLE_STEPS:
        raise ValidationFailed.field("visible_steps", f"at most {MAX_VISIBLE_STEPS} steps")
    known = [c.id for c in step_choices(workflow)]
    unknown = [str(s) for s in wanted if s not in known]
    if unknown:
        raise ValidationFailed.field("visible_steps", "no step " + ", ".join(
            repr(s) for s in unknown) + " in the workflow's live version")
    return [sid for sid in known if sid in wanted]  # reading order, once each


def _shown(publication: Publication) -> dict[str, Any]:
    return {"published": publication.published, "label": publication.label,
            "visible_steps": list(publication.visible_steps or []),
            "show_output": publication.show_output}
