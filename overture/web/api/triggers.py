"""Polling trigger subscriptions of a workflow: each new event of a connection's
trigger (a new email, ...) starts one run of the workflow's current version."""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import UUID, Boolean, DateTime, Integer, List, Nested, String
from apiflask.validators import Length, Range

from overture.orchestration import triggers, workflows
from overture.orchestration.trigger_models import TriggerSubscription
from overture.platform.db import db
from overture.web.api import api
from overture.web.api.schemas import PageQuery, Strict
from overture.web.auth import current_access, require

TAGS = ["Triggers"]
INTERVAL = Range(triggers.MIN_INTERVAL, triggers.MAX_INTERVAL)


class TriggerCreate(Strict):
    connection_id = UUID(required=True)
    trigger_key = String(required=True, validate=Length(1, 80),
                         metadata={"description": "a polling trigger of the connection's "
                                                  "connector, e.g. `new_email`"})
    interval_seconds = Integer(load_default=triggers.DEFAULT_INTERVAL, validate=INTERVAL,
                               metadata={"description": "seconds between two polls"})
    enabled = Boolean(load_default=True)


class TriggerUpdate(Strict):
    interval_seconds = Integer(validate=INTERVAL)
    enabled = Boolean()


class TriggerOut(Schema):
    id = UUID()
    workflow_id = UUID()
    connection_id = UUID()
    trigger_key = String()
    interval_seconds = Integer()
    enabled = Boolean()
    next_poll_at = DateTime()
    last_polled_at = DateTime(allow_none=True)
    last_error = String(allow_none=True)
    created_at = DateTime()


class TriggerPage(Schema):
    items = List(Nested(TriggerOut))
    next_cursor = String(allow_none=True)


@api.get("/workflows/<workflow_id>/triggers")
@require("workflow.read")
@api.input(PageQuery, location="query", arg_name="query")
@api.output(TriggerPage)
@api.doc(tags=TAGS, summary="A workflow's polling trigger subscriptions")
def list_triggers(workflow_id: str, query: dict[str, Any]) -> dict[str, Any]:
    workflow = workflows.get_workflow(workflow_id)
    page = triggers.list_subscriptions(query["cursor"], query["limit"], workflow.id)
    return page.body()


@api.post("/workflows/<workflow_id>/triggers")
@require("workflow.edit")
@api.input(TriggerCreate, arg_name="body")
@api.output(TriggerOut, status_code=201)
@api.doc(tags=TAGS, summary="Start a run for each new event of a connection's polling "
                            "trigger")
def create_trigger(workflow_id: str, body: dict[str, Any]) -> TriggerSubscription:
    subscription = triggers.create_subscription(
        workflows.get_workflow(workflow_id), body["connection_id"], body["trigger_key"],
        body["interval_seconds"], body["enabled"], current_access().principal.user.id)
    db.session.commit()
    return subscription


@api.get("/triggers/<subscription_id>")
@require("workflow.read")
@api.output(TriggerOut)
@api.doc(tags=TAGS, summary="One trigger subscription")
def get_trigger(subscription_id: str) -> TriggerSubscription:
    return triggers.get_subscription(subscription_id)


@api.patch("/triggers/<subscription_id>")
@require("workflow.edit")
@api.input(TriggerUpdate, arg_name="body")
@api.output(TriggerOut)
@api.doc(tags=TAGS, summary="Pause, resume or re-time a trigger subscription")
def update_trigger(subscription_id: str, body: dict[str, Any]) -> TriggerSubscription:
    subscription = triggers.update_subscription(triggers.get_subscription(subscription_id),
                                                **body)
    db.session.commit()
    return subscription


@api.delete("/triggers/<subscription_id>")
@require("workflow.edit")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Delete a trigger subscription (the runs it started stay)")
def delete_trigger(subscription_id: str) -> tuple[str, int]:
    triggers.delete_subscription(triggers.get_subscription(subscription_id))
    db.session.commit()
    return "", 204
