"""Request and response shapes of the portal's publications."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import UUID, Boolean, DateTime, List, Nested, String
from apiflask.validators import Length, OneOf

from overture.orchestration.portal.publishing import MAX_DESCRIPTION, MAX_VISIBLE_STEPS
from overture.web.api.schemas import Multiline, Strict


class AgentPublicationIn(Strict):
    published = Boolean(metadata={"description": "shown in the portal (customers chat "
                                                 "with its current version)"})
    label = String(validate=Length(1, 120), metadata={"description": "the name customers "
                                                                     "see"})
    description = Multiline(validate=Length(0, MAX_DESCRIPTION))


class WorkflowPublicationIn(AgentPublicationIn):
    visible_steps = List(String(validate=Length(1, 63)), validate=Length(0, MAX_VISIBLE_STEPS),
                         metadata={"description": "ids of the steps whose outputs a customer "
                                                  "sees on their run; none unless listed"})
    show_output = Boolean(metadata={"description": "whether a customer sees the run's final "
                                                   "output"})


class StepChoiceOut(Schema):
    id = String()
    name = String()
    type = String()


class PublicationOut(Schema):
    id = UUID()
    kind = String(metadata={"description": "workflow or agent"})
    workflow_id = UUID(allow_none=True)
    agent_id = UUID(allow_none=True)
    published = Boolean()
    label = String()
    description = String()
    visible_steps = List(String())
    show_output = Boolean()
    updated_by_id = UUID(allow_none=True)
    updated_at = DateTime()
    portal_url = String(metadata={"description": "where customers find it"})


class WorkflowPublicationOut(PublicationOut):
    steps = List(Nested(StepChoiceOut), metadata={
        "description": "the steps of the workflow's live version, that may be shown"})


class PublicationQuery(Strict):
    kind = String(load_default=None, validate=OneOf(["workflow", "agent"]))


class PublicationList(Schema):
    portal_url = String(metadata={"description": "the workspace's portal"})
    items = List(Nested(PublicationOut))
