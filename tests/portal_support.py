"""The portal's test world: in workspace A (slug `ws-a`) a published refund workflow
with an input schema, a hidden internal step and an approval the customer answers, a
published help-desk agent, and two portal customers (`a_member` and `a_member2`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient

from overture.orchestration import workflows
from overture.orchestration.agents import service as agents
from overture.orchestration.portal import publishing
from overture.platform.db import db, scoped_to
from overture.tenants.models import Membership
from overture.tenants.roles import Role
from overture.tenants.users import create_user
from tests.support import PASSWORD, World

PORTAL = "/portal/ws-a"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SECRET = "sk-internal-crm-7f3a9c"  # what the hidden step returns: must never reach a customer

REFUND_SCHEMA = {
    "type": "object", "required": ["order", "reason"],
    "properties": {
        "order": {"type": "string", "title": "Order number", "pattern": "^[0-9]{4}$",
                  "description": "the four digits on your receipt"},
        "reason": {"type": "string", "title": "Reason", "enum": ["damaged", "late", "other"]},
        "amount": {"type": "integer", "title": "Amount (EUR)", "minimum": 1, "maximum": 500},
        "email": {"type": "string", "format": "email", "title": "Email for the receipt"},
        "gift": {"type": "boolean", "title": "It was a gift"},
    },
}
# `lookup` stands for a connector call (its output is internal); `summary` is what the
# customer is shown; the approval asks the customer who started the run.
REFUND = {
    "input_schema": REFUND_SCHEMA,
    "steps": [
        {"id": "lookup", "type": "transform", "name": "CRM lookup",
         "output": {"token": SECRET, "customer_tier": "gold"}, "next": "summary"},
        {"id": "summary", "type": "transform", "name": "Your request",
         "output": {"order": "{{ input.order }}", "reason": "{{ input.reason }}"},
         "next": "confirm"},
        {"id": "confirm", "type": "approval", "prompt": "Refund order {{ input.order }}?",
         "data": {"order": "{{ input.order }}"}, "assignee": {"starter": True},
         "next": "done"},
        {"id": "done", "type": "transform", "output": "refund issued"},
    ],
    "output": {"message": "Refund for order {{ input.order }} is on its way."},
}
DESK = {"name": "desk", "model": {"provider": "scripted", "model": "script"},
        "script": [{"when": "refund", "answer": {
            "status": "ok", "confidence": 0.9,
            "output": "Refunds take 3 to 5 days. Which order is it?"}}]}


@dataclass
class Portal:
    workflow_id: Any
    agent_id: Any


def customer(world: World, handle: str = "a_member2", tenant: str = "a") -> Any:
    """Another portal customer of the workspace."""
    user = create_user(f"{handle}@customers.example.com", PASSWORD, handle)
    with scoped_to(world.tenants[tenant].id):
        db.session.add(Membership(user_id=user.id, role=Role.MEMBER))
        db.session.commit()
    world.users[handle] = user
    return user


def set_up(world: World, definition: dict[str, Any] | None = None,
           agent: dict[str, Any] | None = None) -> Portal:
    """The published workflow and agent of workspace A, shown in its portal."""
    builder = world.users["a_builder"].id
    with scoped_to(world.tenants["a"].id, user_id=builder):
        workflow = workflows.create_workflow("refunds", draft=definition or REFUND)
        workflows.publish(workflow, builder)
        publishing.set_workflow(workflow, publishing.Settings(
            published=True, label="Request a refund",
            description="We check your order and pay you back.", visible_steps=["summary"],
            show_output=True), builder)
        bot = agents.create_agent((agent or DESK)["name"], agent or DESK)
        publishing.set_agent(bot, publishing.Settings(published=True, label="Help desk",
                                                     description="Questions about orders"),
                             builder)
        db.session.commit()
        return Portal(workflow.id, bot.id)


class Customer:
    """A person in the portal: a Flask client that asks for pages as a browser does
    and posts forms with the CSRF token the pages carry."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.csrf = ""

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.client.get(PORTAL + path, headers=HTML, **kwargs)
        found = CSRF_RE.search(response.get_data(as_text=True))
        if found:
            self.csrf = found.group(1)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        headers = {**HTML, **kwargs.pop("headers", {})}
        return self.client.post(PORTAL + path, data={"csrf_token": self.csrf, **(data or {})},
                                headers=headers, **kwargs)


def sign_in(app: Any, world: World, handle: str = "a_member") -> Customer:
    person = Customer(app.test_client())
    person.get("/login")
    response = person.post("/login", {"email": world.users[handle].email,
                                      "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == PORTAL + "/"
    person.get("/")  # the signed-in session's own CSRF token
    return person


def text(response: Any) -> str:
    html = response.get_data(as_text=True)
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def sse(response: Any) -> list[tuple[str, Any]]:
    events = []
    for block in response.get_data(as_text=True).split("\n\n"):
        name = re.search(r"^event: (.+)$", block, re.M)
        data = re.search(r"^data: (.+)$", block, re.M)
        if name and data:
            events.append((name.group(1), json.loads(data.group(1))))
    return events
