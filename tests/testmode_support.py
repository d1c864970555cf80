"""Helpers of the test-mode tests: a workflow with an agent step and an HTTP action
against a local receiver, its steps run in this process (billing_support.Inbox)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from overture.billing.usage import UsageEvent
from overture.platform.db import db, scoped_to
from overture.tenants.events.models import EventDelivery
from tests.agent_fakes import answer, scripted
from tests.engine_api_support import ok
from tests.engine_support import Receiver


def writer(text: str) -> dict[str, Any]:
    """The `writer` agent, scripted to write `text` (one answer per step)."""
    return scripted("writer", {"answer": answer(text), "input_tokens": 100,
                               "output_tokens": 20})


def flow(receiver: Receiver) -> dict[str, Any]:
    return {"steps": [
        {"id": "prepare", "type": "transform", "output": {"n": "{{ input.n }}"},
         "next": "write"},
        {"id": "write", "type": "agent", "agent": "writer", "next": "notify"},
        {"id": "notify", "type": "action", "action": "http.request", "next": "done",
         "input": {"method": "POST", "url": receiver.url("/notify"),
                   "json": {"text": "{{ steps.write.output }}"}}},
        {"id": "done", "type": "transform", "output": "{{ steps.write.output }}"}]}


def usage_of(tenant_id: Any, run_id: Any) -> int:
    with scoped_to(tenant_id):
        found = db.session.scalar(select(func.count()).select_from(UsageEvent)
                                  .where(UsageEvent.run_id == run_id))
        db.session.rollback()
    return int(found or 0)


def deliveries(tenant_id: Any, run_id: Any) -> list[str]:
    """The outbound events written about this run (their types)."""
    with scoped_to(tenant_id):
        found = [d.event_type for d in db.session.scalars(select(EventDelivery))
                 if str(run_id) in d.body]
        db.session.rollback()
    return found


def step(run: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in run["steps"] if s["step_id"] == step_id)


def run_of(api: Any, run_id: str) -> dict[str, Any]:
    return ok(api.get(f"/runs/{run_id}"))


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code,
                                            response.get_data(as_text=True))
    assert response.content_type.startswith("application/problem+json"), response.content_type
    return response.get_json()
