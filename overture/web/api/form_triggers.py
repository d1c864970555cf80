"""Form triggers of a workflow: a hosted form, made from the published version's input
schema, at a secret URL on the workspace's portal (and domain); each submission starts
one run with trigger `form` (orchestration/form_triggers.py)."""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import UUID, Boolean, DateTime, Integer, List, Nested, String
from apiflask.validators import Length

from overture.orchestration import form_triggers, workflows
from overture.orchestration.trigger_models import FormTrigger
from overture.platform.db import db
from overture.web.api import api
from overture.web.api.schemas import Strict
from overture.web.auth import current_access, require

TAGS = ["Triggers"]


class FormTriggerCreate(Strict):
    title = String(required=True, validate=Length(1, form_triggers.TITLE_MAX),
                   metadata={"description": "the form's heading"})
    description = String(load_default="", validate=Length(0, form_triggers.TEXT_MAX),
                         metadata={"description": "words under the heading"})
    success_message = String(load_default="", validate=Length(0, form_triggers.TEXT_MAX),
                             metadata={"description": "shown once a submission is sent"})
    honeypot = Boolean(load_default=True, metadata={
        "description": "a hidden field people never see: a submission that fills it looks "
                       "accepted but starts nothing"})
    enabled = Boolean(load_default=True)


class FormTriggerUpdate(Strict):
    title = String(validate=Length(1, form_triggers.TITLE_MAX))
    description = String(validate=Length(0, form_triggers.TEXT_MAX))
    success_message = String(validate=Length(0, form_triggers.TEXT_MAX))
    honeypot = Boolean()
    enabled = Boolean()


class FormTriggerOut(Schema):
    id = UUID()
    workflow_id = UUID()
    url = String(metadata={"description": "the form's public address"})
    title = String()
    description = String()
    success_message = String()
    honeypot = Boolean()
    enabled = Boolean()
    submissions = Integer(metadata={"description": "runs its submissions started"})
    honeypot_hits = Integer(metadata={"description": "submissions the honeypot caught"})
    last_submission_at = DateTime(allow_none=True)
    created_at = DateTime()


class FormTriggerList(Schema):
    items = List(Nested(FormTriggerOut))


def form_view(trigger: FormTrigger) -> dict[str, Any]:
    return {"id": trigger.id, "workflow_id": trigger.workflow_id,
            "url": form_triggers.public_url(trigger), "title": trigger.title,
            "description": trigger.description, "success_message": trigger.success_message,
            "honeypot": trigger.honeypot, "enabled": trigger.enabled,
            "submissions": trigger.submissions, "honeypot_hits": trigger.honeypot_hits,
            "last_submission_at": trigger.last_submission_at,
            "created_at": trigger.created_at}


@api.get("/workflows/<workflow_id>/form-triggers")
@require("workflow.read")
@api.output(FormTriggerList)
@api.doc(tags=TAGS, summary="A workflow's hosted forms")
def list_form_triggers(workflow_id: str) -> dict[str, Any]:
    workflow = workflows.get_workflow(workflow_id)
    return {"items": [form_view(t) for t in form_triggers.list_for(workflow.id)]}


@api.post("/workflows/<workflow_id>/form-triggers")
@require("workflow.edit")
@api.input(FormTriggerCreate, arg_name="body")
@api.output(FormTriggerOut, status_code=201)
@api.doc(tags=TAGS, summary="A hosted form whose submissions start runs")
def create_form_trigger(workflow_id: str, body: dict[str, Any]) -> dict[str, Any]:
    trigger = form_triggers.create(workflows.get_workflow(workflow_id), **body,
                                   created_by=current_access().principal.user.id)
    db.session.commit()
    return form_view(trigger)


@api.get("/form-triggers/<trigger_id>")
@require("workflow.read")
@api.output(FormTriggerOut)
@api.doc(tags=TAGS, summary="One hosted form")
def get_form_trigger(trigger_id: str) -> dict[str, Any]:
    return form_view(form_triggers.get(trigger_id))


@api.patch("/form-triggers/<trigger_id>")
@require("workflow.edit")
@api.input(FormTriggerUpdate, arg_name="body")
@api.output(FormTriggerOut)
@api.doc(tags=TAGS, summary="Retitle, reword, open or close a hosted form")
def update_form_trigger(trigger_id: str, body: dict[str, Any]) -> dict[str, Any]:
    trigger = form_triggers.update(form_triggers.get(trigger_id), **body)
    db.session.commit()
    db.session.refresh(trigger)
    return form_view(trigger)


@api.delete("/form-triggers/<trigger_id>")
@require("workflow.edit")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Delete a hosted form (the runs it started stay)")
def delete_form_trigger(trigger_id: str) -> tuple[str, int]:
    form_triggers.delete(form_triggers.get(trigger_id))
    db.session.commit()
    return "", 204
