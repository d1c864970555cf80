"""Per-agent notes in the runtime (`-k agent`): an agent whose spec enables `notes` reads
its newest unexpired notes in its system prompt and keeps new ones with a `remember`
tool, audited and metered like any tool call, kept for its retention; an agent without
`notes` sees none and may not remember. Against the fake OpenAI server over HTTP, and
in a published workflow on worker processes (the note outlives the step's rollback)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from overture.connectors.execute import digest
from overture.orchestration.agents import memory, service
from overture.orchestration.agents.models import AgentNote
from overture.orchestration.agents.prompts import (
    NOTES_IN_PROMPT,
    NOTES_PROMPT_CHARS,
    notes_section,
)
from overture.orchestration.agents.runtime import Runner
from overture.orchestration.agents.task import Task
from overture.orchestration.steps import StepContext
from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to, utcnow
from tests.agent_fakes import FakeOpenAI, answer, create_agent, scripted
from tests.engine_support import publish, running_workers, start, wait_for


@pytest.fixture(autouse=True)
def _loopback(monkeypatch):
    """The fake model servers listen on loopback, which the outbound guard refuses."""
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


def step_context(tenant_id: Any) -> StepContext:
    step_run = uuid.uuid4()
    return StepContext(step={"id": "s", "type": "agent"}, path="", scope={},
                       idempotency_key=f"ovt-{step_run}", attempt=1, timeout=60,
                       tenant_id=str(tenant_id), started_at=datetime.now(UTC),
                       step_run_id=str(step_run))


def stored_runner(ctx: StepContext) -> Runner:
    """Agents as stored, at their current versions (what a chat runs)."""
    return Runner(ctx, service.load_current)


def gpt(name: str, credential: Any, **more: Any) -> dict[str, Any]:
    return {"name": name, "role": "concierge", "credential_id": str(credential.id),
            "model": {"provider": "openai", "model": "gpt-4o-mini"}, **more}


def notes_of(tenant_id: Any, agent_id: Any) -> list[Any]:
    """Committed notes only (read in a fresh transaction), oldest first: (id, text,
    expires_at) rows."""
    with scoped_to(tenant_id):
        db.session.rollback()
        found = db.session.execute(select(AgentNote.id, AgentNote.text, AgentNote.expires_at)
                                   .where(AgentNote.agent_id == agent_id)
                                   .order_by(AgentNote.created_at)).all()
        db.session.rollback()
    return list(found)


def ledger_notes(ctx: StepContext, action: str) -> list[dict[str, Any]]:
    return [n.details for n in ctx.ledger.audit if n.action == action]


def seed(tenant_id: Any, agent_id: Any, *notes: tuple[str, timedelta]) -> None:
    """Notes written `age` ago (the agent's retention applies from then)."""
    with scoped_to(tenant_id):
        for text, age in notes:
            memory.remember(agent_id, text, now=utcnow() - age)
        db.session.commit()


# --------------------------------------------------------------------------- the prompt


def test_agent_with_notes_reads_the_newest_unexpired_and_remembers_a_new_one(
        world, httpserver):
    a = world.tenants["a"].id
    fake = FakeOpenAI(httpserver)
    agent_id = create_agent(world, gpt("concierge", fake.credential(world), notes=True,
                                       notes_retention_days=10))
    seed(a, agent_id, ("expired: Ada's old card ends 4242", timedelta(days=11)),
         *[(f"fact {i}", timedelta(hours=30 - i)) for i in range(NOTES_IN_PROMPT + 2)])
    fake.tool_call(("remember", {"text": "Ada prefers email, not phone."}), tokens=(90, 12))
    fake.say(answer("Noted: email it is."), tokens=(130, 9))

    ctx = step_context(a)
    with scoped_to(a):
        result = stored_runner(ctx).invoke("concierge", Task(prompt="Ada: email me, please"))
    assert result.output == "Noted: email it is."

    system = fake.requests[0]["messages"][0]["content"]
    shown = [line[2:] for line in system.splitlines() if line.startswith("- fact ")]
    newest = [f"fact {i}" for i in range(NOTES_IN_PROMPT + 1, 1, -1)]
    assert shown == newest  # newest first, the newest NOTES_IN_PROMPT only
    assert "4242" not in system  # expired: never shown, sweeper or not
    assert "remember" in [t["function"]["name"] for t in fake.requests[0]["tools"]]

    # The note is committed at once, kept for the agent's ten days.
    kept = notes_of(a, agent_id)[-1]
    assert kept.text == "Ada prefers email, not phone."
    assert timedelta(days=10) - timedelta(minutes=1) < kept.expires_at - utcnow() \
        <= timedelta(days=10)
    (fed_back,) = fake.tool_results(1)
    assert json.loads(fed_back)["note_id"] == str(kept.id)
    # Audited and metered as any tool call: a digest, never the text.
    (called,) = ledger_notes(ctx, "agent.tool_called")
    assert called == {"agent": "concierge", "tool": "remember", "kind": "notes",
                      "input_digest": digest({"text": "Ada prefers email, not phone."})}
    assert "email" not in json.dumps([n.details for n in ctx.ledger.audit])
    assert [e.quantity for e in ctx.ledger.usage if e.metric == "agent_tool_calls"] == [1]
    # Its next invocation reads it first.
    fake.say(answer("I will email you."))
    with scoped_to(a):
        stored_runner(step_context(a)).invoke("concierge", Task(prompt="Ada again"))
    system = fake.requests[-1]["messages"][0]["content"]
    assert system.index("- Ada prefers email, not phone.") < system.index("- fact ")


def test_agent_without_notes_sees_none_and_may_not_remember(world, httpserver):
    a = world.tenants["a"].id
    fake = FakeOpenAI(httpserver)
    agent_id = create_agent(world, gpt("plain", fake.credential(world)))
    seed(a, agent_id, ("a note someone added through the API", timedelta(minutes=1)))
    fake.tool_call(("remember", {"text": "sneaky"}))
    fake.say(answer("done"))
    ctx = step_context(a)
    with scoped_to(a):
        assert stored_runner(ctx).invoke("plain", Task(prompt="hi")).output == "done"
    assert "tools" not in fake.requests[0]
    assert "someone added" not in fake.requests[0]["messages"][0]["content"]
    (refused,) = ledger_notes(ctx, "agent.tool_refused")
    assert refused["tool"] == "remember"
    assert [n.text for n in notes_of(a, agent_id)] == ["a note someone added through the API"]


def test_agent_remembering_the_same_text_again_keeps_one_note(world):
    a = world.tenants["a"].id
    same = {"tool_calls": [{"name": "remember", "arguments": {"text": "VIP: Globex"}}]}
    agent_id = create_agent(world, scripted(
        "clerk", same, same, {"tool_calls": [{"name": "remember", "arguments": {"text": ""}}]},
        {"answer": answer("kept")}, notes=True, notes_retention_days=None))
    ctx = step_context(a)
    with scoped_to(a):
        assert stored_runner(ctx).invoke("clerk", Task(prompt="go")).output == "kept"
    (note,) = notes_of(a, agent_id)
    assert (note.text, note.expires_at) == ("VIP: Globex", None)
    # Two calls audited; the empty note went back to the model as invalid, unaudited.
    assert len(ledger_notes(ctx, "agent.tool_called")) == 2


def test_agent_notes_in_the_prompt_are_bounded_in_size():
    section = notes_section(["x" * 3_000, "y" * 3_000, "z" * 3_000, "w"])
    assert "x" * 3_000 in section and "y" * 3_000 in section
    assert "z" not in section and "- w" not in section  # older ones past the budget
    assert len(section) < NOTES_PROMPT_CHARS + 200
    assert "(none yet)" in notes_section([])


# --------------------------------------------------------------------------- on workers


@pytest.fixture(scope="module")
def workers(settings):
    with running_workers(settings, processes=1, threads=4) as worker:
        yield worker


def test_agent_note_kept_in_a_workflow_run_is_read_by_the_next_run(app_ctx, world, workers,
                                                                   httpserver):
    a = world.tenants["a"].id
    fake = FakeOpenAI(httpserver)
    agent_id = create_agent(world, gpt("concierge", fake.credential(world), notes=True))
    wf = publish(a, {"steps": [{"id": "talk", "type": "agent", "agent": "concierge",
                                "task": "{{ input.says }}"}]})
    fake.tool_call(("remember", {"text": "Initech renews in March."}))
    fake.say(answer("noted"))
    first = wait_for(a, start(a, wf, {"says": "We renew in March."}))
    assert first.status == "succeeded", first.error
    assert [n.text for n in notes_of(a, agent_id)] == ["Initech renews in March."]
    with scoped_to(a):
        (called,) = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "agent.tool_called")).all()
        assert (called.details["tool"], called.details["run_id"]) == ("remember",
                                                                      str(first.id))
        db.session.rollback()

    fake.say(answer("March, as you said."))
    second = wait_for(a, start(a, wf, {"says": "When do we renew?"}))
    assert second.status == "succeeded", second.error
    assert "- Initech renews in March." in fake.requests[-1]["messages"][0]["content"]
