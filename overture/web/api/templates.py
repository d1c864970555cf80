"""Templates (agency): snapshot a client workspace, provision new workspaces from it,
roll a new version out to them and roll it back. Roll-outs run in the request."""

from __future__ import annotations

from typing import Any

from overture.connectors import connections
from overture.connectors.models import Connection
from overture.orchestration.templates import rollouts, service
from overture.orchestration.templates.catalogue import use_cases
from overture.orchestration.templates.models import Rollout, Template
from overture.platform.db import db
from overture.web.api import api
from overture.web.api.connector_schemas import ConnectionOut
from overture.web.api.schemas import PageQuery
from overture.web.api.template_schemas import (
    CredentialsFill,
    ProvisionCreate,
    ProvisionOut,
    RolloutCreate,
    RolloutOut,
    TemplateCreate,
    TemplateDetail,
    TemplatePage,
    TemplateVersionCreate,
    TemplateVersionOut,
    UseCaseList,
    UseCaseTemplateCreate,
)
from overture.web.auth import current_access, require

TAGS = ["Templates"]


def template_view(template: Template) -> dict[str, Any]:
    return {"id": template.id, "name": template.name,
            "latest_version": template.latest_version,
            "created_by_id": template.created_by_id, "created_at": template.created_at,
            "versions": service.versions(template),
            "workspaces": service.workspaces(template)}


def rollout_view(rollout: Rollout) -> dict[str, Any]:
    return {"id": rollout.id, "template_id": rollout.template_id, "version": rollout.version,
            "status": rollout.status, "stop_on_failure": rollout.stop_on_failure,
            "created_by_id": rollout.created_by_id, "created_at": rollout.created_at,
            "finished_at": rollout.finished_at, "rolled_back_at": rollout.rolled_back_at,
            "workspaces": rollouts.progress(rollout)}


@api.post("/templates")
@require("workspace.manage")
@api.input(TemplateCreate, arg_name="body")
@api.output(TemplateDetail, status_code=201)
@api.doc(tags=TAGS, summary="Snapshot a client workspace as a new template (version 1)")
def create_template(body: dict[str, Any]) -> dict[str, Any]:
    template = service.create_template(current_access(), body["workspace_id"], body["name"])
    db.session.commit()
    return template_view(template)


@api.get("/templates/use-cases")
@require("workspace.manage")
@api.output(UseCaseList)
@api.doc(tags=TAGS, summary="The ready-made use cases an agency can add as templates")
def list_use_cases() -> dict[str, Any]:
    return {"items": list(use_cases().values())}


@api.post("/templates/use-cases")
@require("workspace.manage")
@api.input(UseCaseTemplateCreate, arg_name="body")
@api.output(TemplateDetail, status_code=201)
@api.doc(tags=TAGS, summary="Add a ready-made use case as a new template (version 1)")
def create_use_case_template(body: dict[str, Any]) -> dict[str, Any]:
    template = service.create_from_use_case(current_access(), body["use_case"], body["name"])
    db.session.commit()
    return template_view(template)


@api.get("/templates")
@require("workspace.manage")
@api.input(PageQuery, location="query", arg_name="query")
@api.output(TemplatePage)
@api.doc(tags=TAGS, summary="This agency's templates")
def list_templates(query: dict[str, Any]) -> dict[str, Any]:
    return service.list_templates(current_access(), query["cursor"], query["limit"]).body()


@api.get("/templates/<template_id>")
@require("workspace.manage")
@api.output(TemplateDetail)
@api.doc(tags=TAGS, summary="One template, its versions and the workspaces made from it")
def get_template(template_id: str) -> dict[str, Any]:
    return template_view(service.get_template(current_access(), template_id))


@api.post("/templates/<template_id>/versions")
@require("workspace.manage")
@api.input(TemplateVersionCreate, arg_name="body")
@api.output(TemplateVersionOut, status_code=201)
@api.doc(tags=TAGS, summary="Snapshot a client workspace as the template's next version")
def create_template_version(template_id: str, body: dict[str, Any]) -> Any:
    access = current_access()
    version = service.add_version(access, service.get_template(access, template_id),
                                  body["workspace_id"])
    db.session.commit()
    return version


@api.post("/templates/<template_id>/provision")
@require("workspace.create")
@api.input(ProvisionCreate, arg_name="body")
@api.output(ProvisionOut, status_code=201)
@api.doc(tags=TAGS, summary="Create a client workspace from the template's latest version "
                            "(all in one transaction); lists the connections to fill in")
def provision(template_id: str, body: dict[str, Any]) -> dict[str, Any]:
    access = current_access()
    template = service.get_template(access, template_id)
    workspace, placeholders = service.provision(access, template, body["name"], body["slug"])
    db.session.commit()
    return {"workspace": workspace, "version": template.latest_version,
            "placeholders": placeholders}


@api.post("/templates/<template_id>/rollouts")
@require("workspace.manage")
@api.input(RolloutCreate, arg_name="body")
@api.output(RolloutOut, status_code=201)
@api.doc(tags=TAGS, summary="Roll a template version out to workspaces made from it, "
                            "canaries first; runs to its end in this request")
def create_rollout(template_id: str, body: dict[str, Any]) -> dict[str, Any]:
    access = current_access()
    rollout = rollouts.start(access, service.get_template(access, template_id),
                             body["version"], body["workspace_ids"], body["canary_ids"],
                             body["stop_on_failure"])
    return rollout_view(rollout)


@api.get("/rollouts/<rollout_id>")
@require("workspace.manage")
@api.output(RolloutOut)
@api.doc(tags=TAGS, summary="A roll-out and its progress in each workspace")
def get_rollout(rollout_id: str) -> dict[str, Any]:
    return rollout_view(rollouts.get_rollout(rollout_id))


@api.post("/rollouts/<rollout_id>/rollback")
@require("workspace.manage")
@api.output(RolloutOut)
@api.doc(tags=TAGS, summary="Put every workspace the roll-out changed back on its "
                            "previous versions")
def rollback_rollout(rollout_id: str) -> dict[str, Any]:
    rollout = rollouts.rollback(current_access(), rollouts.get_rollout(rollout_id))
    return rollout_view(rollout)


@api.post("/connections/<connection_id>/credentials")
@require("credential.manage")
@api.input(CredentialsFill, arg_name="body")
@api.output(ConnectionOut)
@api.doc(tags=["Connectors"], summary="Give a connection made from a template its "
                                      "credentials (sealed in the vault)")
def fill_connection(connection_id: str, body: dict[str, Any]) -> Connection:
    access = current_access()
    connection = connections.fill_placeholder(
        access, connections.get_connection(access, connection_id),
        credential_fields=body["credentials"], credential_id=body["credential_id"])
    db.session.commit()
    return connection
