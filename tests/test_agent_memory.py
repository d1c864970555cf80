"""Agent memory: notes with retention, and conversation memory of portal chats
(`-k agent`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from overture.orchestration.agents import memory, service
from overture.orchestration.agents.models import AgentNote
from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to, utcnow
from overture.platform.errors import NotFound, ValidationFailed
from tests.support import as_key, as_user

LOCAL = {"provider": "local", "model": "wordllama"}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code,
                                            response.get_data(as_text=True))
    return response.get_json()


def new_agent(name: str = "helper", retention: int | None = 30) -> Any:
    return service.create_agent(name, {"model": LOCAL, "notes_retention_days": retention})


def note_count(tenant_id: Any) -> int:
    with scoped_to(tenant_id):
        return db.session.scalar(select(func.count()).select_from(AgentNote)) or 0


# --------------------------------------------------------------------------- notes


def test_agent_notes_expire_after_the_agents_retention(world):
    with scoped_to(world.tenants["a"].id):
        agent = new_agent(retention=7)
        now = utcnow()
        fresh = memory.remember(agent.id, "Customer Acme prefers email.")
        assert fresh.expires_at is not None
        assert timedelta(days=7) - timedelta(seconds=5) < fresh.expires_at - now \
            <= timedelta(days=7, seconds=5)
        # Written eight days ago: past its seven days.
        memory.remember(agent.id, "Old: Acme was on the Starter plan.",
                        now=now - timedelta(days=8))
        db.session.commit()
        assert [n.text for n in memory.recall(agent.id)] == ["Customer Acme prefers email."]
        # Nine days on, the fresh one has expired too, before any sweeper ran.
        assert memory.recall(agent.id, now=now + timedelta(days=9)) == []


def test_agent_notes_recall_is_newest_first_and_limited(world):
    with scoped_to(world.tenants["a"].id):
        agent = new_agent()
        start = utcnow() - timedelta(hours=1)
        for i in range(5):
            memory.remember(agent.id, f"note {i}", now=start + timedelta(minutes=i))
        db.session.commit()
        assert [n.text for n in memory.recall(agent.id, limit=3)] == ["note 4", "note 3",
                                                                       "note 2"]
        with pytest.raises(ValidationFailed):
            memory.recall(agent.id, limit=0)
        with pytest.raises(ValidationFailed) as empty:
            memory.remember(agent.id, "   ")
        assert empty.value.errors[0]["field"] == "text"


def test_agent_notes_without_retention_are_kept(world):
    with scoped_to(world.tenants["a"].id):
        agent = new_agent(retention=None)
        kept = memory.remember(agent.id, "Keep forever.", now=utcnow() - timedelta(days=3650))
        db.session.commit()
        assert kept.expires_at is None
        assert memory.purge_expired() == 0
        assert [n.text for n in memory.recall(agent.id)] == ["Keep forever."]
        # An explicit retention overrides the agent's setting.
        short = memory.remember(agent.id, "Brief.", retention_days=1)
        assert short.expires_at is not None


def test_agent_notes_purge_deletes_only_expired_in_every_tenant(world):
    a, b = world.tenants["a"].id, world.tenants["b"].id
    past = utcnow() - timedelta(days=40)
    for tenant in (a, b):
        with scoped_to(tenant):
            agent = new_agent()
            memory.remember(agent.id, "expired", now=past)
            memory.remember(agent.id, "current")
            db.session.commit()
    with scoped_to(a):
        assert memory.purge_expired() == 1
        db.session.commit()
    assert (note_count(a), note_count(b)) == (1, 2)  # A's purge left B alone
    assert memory.purge_all_expired() == 1
    db.session.commit()
    assert (note_count(a), note_count(b)) == (1, 1)
    with scoped_to(b):
        assert [n.text for n in memory.recall(agent.id)] == ["current"]


def test_agent_notes_belong_to_the_agents_tenant(world):
    with scoped_to(world.tenants["a"].id):
        agent = new_agent()
        memory.remember(agent.id, "A's secret customer list")
        db.session.commit()
    with scoped_to(world.tenants["b"].id):
        with pytest.raises(NotFound):
            memory.recall(agent.id)
        with pytest.raises(NotFound):
            memory.remember(agent.id, "planted by B")


def test_agent_notes_api_add_and_list(app, world):
    builder = as_user(app, world, "a_builder")
    aid = ok(builder.post("/agents", json={"name": "helper", "config": {
        "model": LOCAL, "notes_retention_days": 2}}), 201)["id"]
    first = ok(builder.post(f"/agents/{aid}/notes", json={"text": "Acme renews in May."}), 201)
    ok(builder.post(f"/agents/{aid}/notes", json={"text": "Globex asked for SSO."}), 201)
    assert first["expires_at"] is not None
    notes = ok(builder.get(f"/agents/{aid}/notes"))["items"]
    assert [n["text"] for n in notes] == ["Globex asked for SSO.", "Acme renews in May."]
    assert len(ok(builder.get(f"/agents/{aid}/notes", query_string={"limit": 1}))["items"]) == 1

    # Expired notes disappear from the API before the sweeper deletes them.
    with scoped_to(world.tenants["a"].id):
        row = db.session.get(AgentNote, first["id"])
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert [n["text"] for n in ok(builder.get(f"/agents/{aid}/notes"))["items"]] == [
        "Globex asked for SSO."]

    def fields(response: Any) -> set[str]:
        assert response.status_code == 422, response.get_data(as_text=True)
        return {e["field"] for e in response.get_json()["errors"]}

    assert fields(builder.post(f"/agents/{aid}/notes", json={"text": ""})) == {"text"}
    assert fields(builder.post(f"/agents/{aid}/notes", json={})) == {"text"}
    assert "text" in fields(builder.post(f"/agents/{aid}/notes", json={"text": "x" * 5000}))
    assert fields(builder.get(f"/agents/{aid}/notes", query_string={"limit": 0})) == {"limit"}
    with scoped_to(world.tenants["a"].id):
        added = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "agent.note_added")).all()
        assert [e.target_id for e in added] == [aid, aid]
        assert added[0].actor_id == str(world.users["a_builder"].id)
        assert "Acme" not in str(added[0].details)  # the note's text stays out of the log
    assert as_key(app, world, "b_admin").get(f"/agents/{aid}/notes").status_code == 404


# --------------------------------------------------------------------------- conversations


def test_agent_conversation_history_keeps_order_and_the_last_turns(world):
    with scoped_to(world.tenants["a"].id):
        agent = new_agent()
        customer = world.users["a_member"].id
        chat = memory.start_conversation(agent.id, customer, "Refund question")
        other = memory.start_conversation(agent.id, None)
        turns = [("user", "I want a refund."), ("assistant", "Which order?"),
                 ("user", "Order 1042."), ("assistant", "Refund issued.")]
        for role, content in turns:
            memory.append(chat.id, role, content)
        memory.append(other.id, "user", "Unrelated chat.")
        db.session.commit()

        assert [(m.role, m.content) for m in memory.history(chat.id)] == turns
        assert [m.content for m in memory.history(chat.id, limit=2)] == ["Order 1042.",
                                                                         "Refund issued."]
        assert [c.id for c in memory.conversations_of(agent.id, customer)] == [chat.id]
        assert {c.id for c in memory.conversations_of(agent.id)} == {chat.id, other.id}
        with pytest.raises(ValidationFailed) as bad_role:
            memory.append(chat.id, "wizard", "hi")
        assert bad_role.value.errors[0]["field"] == "role"
        with pytest.raises(ValidationFailed):
            memory.history(chat.id, limit=0)

    with scoped_to(world.tenants["b"].id):
        with pytest.raises(NotFound):
            memory.history(chat.id)
        with pytest.raises(NotFound):
            memory.append(chat.id, "user", "injected by B")
        with pytest.raises(NotFound):
            memory.start_conversation(agent.id)
        assert memory.conversations_of(agent.id) == []
    with scoped_to(world.tenants["a"].id):
        assert len(memory.history(chat.id)) == len(turns)
