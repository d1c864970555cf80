"""Housekeeping around agents (`-k agent`): the scheduler deletes expired agent notes
now and then; and a workflow renamed to a taken name is a 409 (the same savepoint
mistake the agents' rename once had), leaving the workflow as it was."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from overture.orchestration import scheduler
from overture.orchestration.agents import memory, service
from overture.orchestration.agents.models import AgentNote
from overture.platform.db import db, scoped_to, utcnow
from tests.support import as_user

LOCAL = {"provider": "local", "model": "wordllama"}


def note_texts(tenant_id: Any) -> set[str]:
    with scoped_to(tenant_id):
        return set(db.session.scalars(select(AgentNote.text)))


def add_notes(tenant_id: Any, *notes: tuple[str, int]) -> None:
    """(text, age in days) notes of a fresh agent that keeps them for 7 days."""
    with scoped_to(tenant_id):
        agent = service.create_agent(f"keeper-{len(note_texts(tenant_id))}",
                                     {"model": LOCAL, "notes_retention_days": 7})
        for text, age in notes:
            memory.remember(agent.id, text, now=utcnow() - timedelta(days=age))
        db.session.commit()


@pytest.fixture
def purge_clock(monkeypatch):
    """A fresh NOTES_PURGE, so the rounds of other tests do not decide what is due."""
    fresh = scheduler.Periodic(interval=scheduler.NOTES_PURGE.interval)
    monkeypatch.setattr(scheduler, "NOTES_PURGE", fresh)
    return fresh


def test_agent_scheduler_round_purges_expired_notes_of_every_tenant(app, world,
                                                                     purge_clock):
    a, b = world.tenants["a"].id, world.tenants["b"].id
    add_notes(a, ("A stale", 8), ("A fresh", 1))
    add_notes(b, ("B stale", 30), ("B kept", 0))
    scheduler.one_round(app)
    assert note_texts(a) == {"A fresh"}
    assert note_texts(b) == {"B kept"}

    # Within the interval the next rounds leave a newly expired note for later...
    add_notes(a, ("A stale again", 9))
    scheduler.one_round(app)
    assert note_texts(a) == {"A fresh", "A stale again"}
    # ...and once the interval has passed, a round deletes it.
    purge_clock.last -= purge_clock.interval
    scheduler.one_round(app)
    assert note_texts(a) == {"A fresh"}


def test_agent_scheduler_purge_is_paced_by_its_interval(world, purge_clock):
    a = world.tenants["a"].id
    add_notes(a, ("stale", 8))
    assert purge_clock.due(100.0) is True  # a purge just ran
    assert scheduler.purge_notes(now=100.0 + purge_clock.interval - 1) == 0
    assert note_texts(a) == {"stale"}
    assert scheduler.purge_notes(now=100.0 + purge_clock.interval) == 1
    assert note_texts(a) == set()


def test_agent_workflow_rename_to_a_taken_name_is_409_and_changes_nothing(app, world):
    builder = as_user(app, world, "a_builder")

    def create(name: str) -> dict[str, Any]:
        response = builder.post("/workflows", json={"name": name,
                                                    "definition": {"steps": []}})
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()

    create("refunds")
    other = create("invoices")
    for body in ({"name": "refunds"},
                 {"name": "refunds", "description": "moved", "definition": {"steps": [
                     {"id": "x", "type": "transform"}]}}):
        response = builder.patch(f"/workflows/{other['id']}", json=body)
        assert response.status_code == 409, response.get_data(as_text=True)
        assert "refunds" in response.get_json()["detail"]
    after = builder.get(f"/workflows/{other['id']}").get_json()
    assert (after["name"], after["description"], after["definition"]) == (
        "invoices", "", {"steps": []})
    # A free name and the other changes still go through together.
    renamed = builder.patch(f"/workflows/{other['id']}", json={
        "name": "billing", "description": "moved"})
    assert renamed.status_code == 200, renamed.get_data(as_text=True)
    assert (renamed.get_json()["name"], renamed.get_json()["description"]) == (
        "billing", "moved")
