"""The portal's publications: which workflows and agents a workspace shows its end
customers, with a label, a description and (for a workflow) the step outputs they see.
Reading needs `workflow.read`, changing `workflow.edit`."""

from __future__ import annotations

from typing import Any

from flask import url_for

from overture.orchestration import workflows
from overture.orchestration.agents import service as agents
from overture.orchestration.portal import publishing
from overture.orchestration.portal.models import Publication
from overture.platform.db import db
from overture.platform.errors import NotFound
from overture.tenants import domains
from overture.tenants.models import Tenant
from overture.web.api import api
from overture.web.api.portal_schemas import (
    AgentPublicationIn,
    PublicationList,
    PublicationOut,
    PublicationQuery,
    WorkflowPublicationIn,
    WorkflowPublicationOut,
)
from overture.web.auth import current_access, require

TAGS = ["Portal"]


def portal_address(tenant: Tenant) -> str:
    """The absolute address of a workspace's portal home (the console's "Open the
    portal")."""
    return domains.public_base_url(tenant.id) + url_for("portal.home", slug=tenant.slug)


def portal_url(publication: Publication | None = None) -> str:
    """Where customers find the workspace's portal, or a workflow's form in it: on the
    workspace's own address (its verified domain, else the installation's)."""
    tenant = current_access().require_tenant()
    slug = tenant.slug
    if publication is not None and publication.workflow_id is not None:
        path = url_for("portal.start_form", slug=slug, workflow_id=publication.workflow_id)
    elif publication is not None and publication.agent_id is not None:
        path = url_for("portal.chat", slug=slug, agent_id=publication.agent_id)
    else:
        path = url_for("portal.home", slug=slug)
    return domains.public_base_url(tenant.id) + path


def view(publication: Publication) -> dict[str, Any]:
    out = {name: getattr(publication, name) for name in PublicationOut().fields
           if name != "portal_url"}
    out["portal_url"] = portal_url(publication)
    return out


def _settings(body: dict[str, Any]) -> publishing.Settings:
    return publishing.Settings(**{k: body.get(k) for k in (
        "published", "label", "description", "visible_steps", "show_output")})


@api.get("/portal/publications")
@require("workflow.read")
@api.input(PublicationQuery, location="query", arg_name="query")
@api.output(PublicationList)
@api.doc(tags=TAGS, summary="What the workspace shows in its portal")
def list_publications(query: dict[str, Any]) -> dict[str, Any]:
    return {"portal_url": portal_url(),
            "items": [view(p) for p in publishing.list_publications(query["kind"])]}


def _workflow_view(workflow_id: str) -> dict[str, Any]:
    workflow = workflows.get_workflow(workflow_id)
    publication = publishing.of_workflow(workflow.id)
    if publication is None:
        raise NotFound("this workflow is not in the portal")
    return {**view(publication), "steps": publishing.step_choices(workflow)}


@api.get("/portal/workflows/<workflow_id>")
@require("workflow.read")
@api.output(WorkflowPublicationOut)
@api.doc(tags=TAGS, summary="How a workflow is shown in the portal, and the steps it may show")
def get_workflow_publication(workflow_id: str) -> dict[str, Any]:
    return _workflow_view(workflow_id)


@api.put("/portal/workflows/<workflow_id>")
@require("workflow.edit")
@api.input(WorkflowPublicationIn, arg_name="body")
@api.output(WorkflowPublicationOut)
@api.doc(tags=TAGS, summary="Publish, unpublish or change how a workflow is shown in the "
                            "portal (fields left out keep their value)")
def put_workflow_publication(workflow_id: str, body: dict[str, Any]) -> dict[str, Any]:
    workflow = workflows.get_workflow(workflow_id)
    publishing.set_workflow(workflow, _settings(body), current_access().principal.user.id)
    db.session.commit()
    return _workflow_view(workflow_id)


@api.delete("/portal/workflows/<workflow_id>")
@require("workflow.edit")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Take a workflow out of the portal and forget its settings")
def delete_workflow_publication(workflow_id: str) -> tuple[str, int]:
    workflow = workflows.get_workflow(workflow_id)
    publication = publishing.of_workflow(workflow.id)
    if publication is None:
        raise NotFound("this workflow is not in the portal")
    publishing.remove(publication)
    db.session.commit()
    return "", 204


def _agent_view(agent_id: str) -> dict[str, Any]:
    agent = agents.get_agent(agent_id)
    publication = publishing.of_agent(agent.id)
    if publication is None:
        raise NotFound("this agent is not in the portal")
    return view(publication)


@api.get("/portal/agents/<agent_id>")
@require("workflow.read")
@api.output(PublicationOut)
@api.doc(tags=TAGS, summary="How an agent is shown in the portal")
def get_agent_publication(agent_id: str) -> dict[str, Any]:
    return _agent_view(agent_id)


@api.put("/portal/agents/<agent_id>")
@require("workflow.edit")
@api.input(AgentPublicationIn, arg_name="body")
@api.output(PublicationOut)
@api.doc(tags=TAGS, summary="Publish, unpublish or change how an agent is shown in the "
                            "portal (fields left out keep their value)")
def put_agent_publication(agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
    agent = agents.get_agent(agent_id)
    publishing.set_agent(agent, _settings(body), current_access().principal.user.id)
    db.session.commit()
    return _agent_view(agent_id)


@api.delete("/portal/agents/<agent_id>")
@require("workflow.edit")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Take an agent out of the portal and forget its settings")
def delete_agent_publication(agent_id: str) -> tuple[str, int]:
    agent = agents.get_agent(agent_id)
    publication = publishing.of_agent(agent.id)
    if publication is None:
        raise NotFound("this agent is not in the portal")
    publishing.remove(publication)
    db.session.commit()
    return "", 204
