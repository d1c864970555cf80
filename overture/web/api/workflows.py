"""Workflows and their versions."""

from __future__ import annotations

import uuid
from typing import Any

from overture.orchestration import webhook_rates, workflows
from overture.orchestration.models import Workflow, WorkflowVersion
from overture.platform.db import db
from overture.tenants import domains
from overture.web import webhook_limits
from overture.web.api import api
from overture.web.api.schemas import PageQuery
from overture.web.api.workflow_schemas import (
    RollbackIn,
    VersionList,
    VersionOut,
    WorkflowCreate,
    WorkflowOut,
    WorkflowPage,
    WorkflowUpdate,
)
from overture.web.auth import current_access, require

TAGS = ["Workflows"]


def workflow_view(workflow: Workflow, numbers: dict[uuid.UUID, int] | None = None
                  ) -> dict[str, Any]:
    """`numbers`: the current version numbers of a page of workflows, read together."""
    current = workflow.current_version_id
    if numbers is None:
        numbers = workflows.version_numbers([current])
    base = domains.public_base_url(workflow.tenant_id)
    return {
        "id": workflow.id, "name": workflow.name, "description": workflow.description,
        "draft": workflow.draft,
        "current_version": numbers.get(current) if current else None,
        "webhook_url": f"{base}/hooks/{workflow.tenant_id}/{workflow.webhook_token}",
        "webhook_signed": workflow.webhook_credential_id is not None,
        "webhook_enabled": workflow.webhook_enabled,
        "webhook_rate_per_minute": webhook_rates.of(workflow),
        "webhook_rate_ceiling": webhook_rates.ceiling(),
        "failure_alerts": workflow.failure_alerts,
        "failure_recipients": list(workflow.failure_recipients or []),
        "created_at": workflow.created_at, "updated_at": workflow.updated_at,
    }


@api.get("/workflows")
@require("workflow.read")
@api.input(PageQuery, location="query", arg_name="query")
@api.output(WorkflowPage)
@api.doc(tags=TAGS, summary="List workflows")
def list_workflows(query: dict[str, Any]) -> dict[str, Any]:
    page = workflows.list_workflows(query["cursor"], query["limit"])
    numbers = workflows.version_numbers(w.current_version_id for w in page.items)
    return page.body([workflow_view(w, numbers) for w in page.items])


@api.post("/workflows")
@require("workflow.edit")
@api.input(WorkflowCreate, arg_name="body")
@api.output(WorkflowOut, status_code=201)
@api.doc(tags=TAGS, summary="Create a workflow with a draft definition")
def create_workflow(body: dict[str, Any]) -> dict[str, Any]:
    workflow = workflows.create_workflow(body["name"], body["description"], body["definition"],
                                         current_access().principal.user.id)
    db.session.commit()
    return workflow_view(workflow)


@api.get("/workflows/<workflow_id>")
@require("workflow.read")
@api.output(WorkflowOut)
@api.doc(tags=TAGS, summary="One workflow and its draft")
def get_workflow(workflow_id: str) -> dict[str, Any]:
    return workflow_view(workflows.get_workflow(workflow_id))


@api.patch("/workflows/<workflow_id>")
@require("workflow.edit")
@api.input(WorkflowUpdate, arg_name="body")
@api.output(WorkflowOut)
@api.doc(tags=TAGS, summary="Rename, describe, replace the draft, set up its webhook "
                            "(signing credential, on or off, calls a minute) or its failure "
                            "alerts")
def update_workflow(workflow_id: str, body: dict[str, Any]) -> dict[str, Any]:
    workflow = workflows.get_workflow(workflow_id)
    workflows.update_workflow(workflow, name=body.get("name"),
                              description=body.get("description"),
                              draft=body.get("definition"))
    if "webhook_credential_id" in body:
        workflows.set_webhook_credential(current_access(), workflow,
                                         body["webhook_credential_id"])
    if "webhook_enabled" in body:
        workflows.set_webhook_enabled(workflow, body["webhook_enabled"])
    if "webhook_rate_per_minute" in body:
        webhook_rates.set_rate(workflow, body["webhook_rate_per_minute"])
    if "failure_alerts" in body or "failure_recipients" in body:
        workflows.set_failure_alerts(workflow, body.get("failure_alerts"),
                                     body.get("failure_recipients"))
    db.session.commit()
    webhook_limits.forget(workflow.tenant_id, workflow.webhook_token)
    return workflow_view(workflow)


@api.delete("/workflows/<workflow_id>")
@require("workflow.edit")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Archive a workflow (its runs stay readable)")
def archive_workflow(workflow_id: str) -> tuple[str, int]:
    workflows.archive_workflow(workflows.get_workflow(workflow_id))
    db.session.commit()
    return "", 204


@api.post("/workflows/<workflow_id>/publish")
@require("workflow.publish")
@api.output(VersionOut, status_code=201)
@api.doc(tags=TAGS, summary="Validate the draft and freeze it as the next version")
def publish_workflow(workflow_id: str) -> WorkflowVersion:
    version = workflows.publish(workflows.get_workflow(workflow_id),
                                current_access().principal.user.id)
    db.session.commit()
    return version


@api.post("/workflows/<workflow_id>/rollback")
@require("workflow.publish")
@api.input(RollbackIn, arg_name="body")
@api.output(VersionOut)
@api.doc(tags=TAGS, summary="Make an older version current again")
def rollback_workflow(workflow_id: str, body: dict[str, Any]) -> WorkflowVersion:
    version = workflows.rollback(workflows.get_workflow(workflow_id), body["version"])
    db.session.commit()
    return version


@api.get("/workflows/<workflow_id>/versions")
@require("workflow.read")
@api.output(VersionList)
@api.doc(tags=TAGS, summary="Every published version")
def list_versions(workflow_id: str) -> dict[str, Any]:
    return {"items": workflows.versions(workflows.get_workflow(workflow_id))}
