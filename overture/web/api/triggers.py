"""Polling trigger subscriptions of a workflow: each new event of a connection's
trigger (a new email, ...) starts one run of the workflow's current version."""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import UUID, Boolean, DateTime, Dict, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from overture.orchestration import triggers, vendor_events, vendor_triggers, workflows
from overture.orchestration.trigger_models import TriggerSubscription, VendorTrigger
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


# --------------------------------------------------------------------------- vendor feeds


class VendorTriggerCreate(Strict):
    source = String(required=True, validate=OneOf(list(vendor_events.SOURCES)),
                    metadata={"description": "slack, hubspot, zendesk, jira or typeform"})
    secret = String(required=True, load_only=True, validate=Length(8, vendor_triggers.SECRET_MAX),
                    metadata={"description": "the vendor's signing secret (kept in the vault)"})
    settings = Dict(load_default=dict, metadata={
        "description": "`events`: which of the source's events start runs (default all); "
                       "Slack: `channels`, channel ids (default every channel)"})
    connection_id = UUID(load_default=None, allow_none=True)


class VendorTriggerUpdate(Strict):
    enabled = Boolean()
    settings = Dict()
    secret = String(load_only=True, validate=Length(8, vendor_triggers.SECRET_MAX))


class VendorTriggerOut(Schema):
    id = UUID()
    workflow_id = UUID()
    source = String()
    url = String(metadata={"description": "where the vendor posts its events"})
    connection_id = UUID(allow_none=True)
    settings = Dict()
    enabled = Boolean()
    last_event_at = DateTime(allow_none=True)
    created_at = DateTime()


class VendorTriggerList(Schema):
    items = List(Nested(VendorTriggerOut))


def vendor_view(trigger: VendorTrigger) -> dict[str, Any]:
    return {"id": trigger.id, "workflow_id": trigger.workflow_id, "source": trigger.source,
            "url": vendor_triggers.public_url(trigger),
            "connection_id": trigger.connection_id, "settings": trigger.settings,
            "enabled": trigger.enabled, "last_event_at": trigger.last_event_at,
            "created_at": trigger.created_at}


@api.get("/workflows/<workflow_id>/vendor-triggers")
@require("workflow.read")
@api.output(VendorTriggerList)
@api.doc(tags=TAGS, summary="A workflow's vendor event feeds (Slack, HubSpot, Zendesk, "
                            "Jira, Typeform)")
def list_vendor_triggers(workflow_id: str) -> dict[str, Any]:
    workflow = workflows.get_workflow(workflow_id)
    return {"items": [vendor_view(t) for t in vendor_triggers.list_for(workflow.id)]}


@api.post("/workflows/<workflow_id>/vendor-triggers")
@require("workflow.edit")
@api.input(VendorTriggerCreate, arg_name="body")
@api.output(VendorTriggerOut, status_code=201)
@api.doc(tags=TAGS, summary="Start a run for each signed event a vendor posts")
def create_vendor_trigger(workflow_id: str, body: dict[str, Any]) -> dict[str, Any]:
    access = current_access()
    trigger = vendor_triggers.create(access, workflows.get_workflow(workflow_id),
                                     body["source"], body["secret"], body["settings"],
                                     body["connection_id"], access.principal.user.id)
    db.session.commit()
    return vendor_view(trigger)


@api.patch("/vendor-triggers/<trigger_id>")
@require("workflow.edit")
@api.input(VendorTriggerUpdate, arg_name="body")
@api.output(VendorTriggerOut)
@api.doc(tags=TAGS, summary="Pause, resume, refilter or re-key a vendor trigger")
def update_vendor_trigger(trigger_id: str, body: dict[str, Any]) -> dict[str, Any]:
    trigger = vendor_triggers.update(current_access(), vendor_triggers.get(trigger_id), **body)
    db.session.commit()
    return vendor_view(trigger)


@api.delete("/vendor-triggers/<trigger_id>")
@require("workflow.edit")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Delete a vendor trigger and its secret (its runs stay)")
def delete_vendor_trigger(trigger_id: str) -> tuple[str, int]:
    vendor_triggers.delete(current_access(), vendor_triggers.get(trigger_id))
    db.session.commit()
    return "", 204
