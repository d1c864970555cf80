"""Metering (`-k billing`): every meter written where its work is recorded, with its
attribution, exactly once when messages are redelivered and steps retried, and the
hourly and daily roll-ups always equal to the raw events they sum.

Steps run in this process (the engine's own `process`), every message delivered twice:
the claim drops the copy, and the meters must not move."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from overture.billing import meters as m
from overture.billing import periods, reports, usage
from overture.billing.rollups import UsageDaily
from overture.orchestration import accounting
from overture.orchestration.agents import chat, knowledge
from overture.orchestration.models import StepStatus
from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to
from tests.agent_fakes import answer, create_agent, scripted
from tests.billing_support import events_of, meters, raw
from tests.engine_support import Receiver, publish, rows_of, start_unsent, wait_for
from tests.support import as_key

pytestmark = pytest.mark.usefixtures("loopback_allowed")  # the receiver is on loopback


def post(receiver: Receiver, path: str, **extra: Any) -> dict[str, Any]:
    return {"type": "action", "action": "http.request",
            "input": {"method": "POST", "url": receiver.url(path), "json": {}}, **extra}


def audited(tenant_id: Any, action: str) -> int:
    with scoped_to(tenant_id):
        found = db.session.query(AuditEvent).filter(AuditEvent.action == action).count()
        db.session.rollback()
    return found


def test_billing_a_run_is_metered_where_its_work_is_recorded_once_despite_redelivery(
        app_ctx, world, inbox, receiver):
    a = world.tenants["a"].id
    agent_id = create_agent(world, scripted("triager", {
        "answer": answer("billing"), "input_tokens": 120, "output_tokens": 30}))
    wf = publish(a, {"steps": [
        {"id": "prepare", "type": "transform", "output": {"n": 1}, "next": "triage"},
        {"id": "triage", "type": "agent", "agent": "triager", "next": "notify"},
        {"id": "notify", **post(receiver, "/notify"), "next": "done"},
        {"id": "done", "type": "transform", "output": "ok"}]})
    run_id = start_unsent(a, wf)
    inbox.sent.append((rows_of(a, run_id)[0].id, a, None))
    inbox.drain(copies=2)
    assert wait_for(a, run_id, timeout=5).status == "succeeded"

    rows = {r.step_id: r for r in rows_of(a, run_id)}
    assert meters(a) == {m.RUNS_STARTED: 1, m.STEPS: 4, m.AGENT_CALLS: 1,
                         m.INPUT_TOKENS: 120, m.OUTPUT_TOKENS: 30, m.ACTION_CALLS: 1}
    (started,) = events_of(a, metric=m.RUNS_STARTED)
    assert (started.run_id, started.workflow_id) == (run_id, wf)
    steps = events_of(a, metric=m.STEPS)
    assert sorted((e.step_id, e.step_run_id) for e in steps) == sorted(
        (r.step_id, r.id) for r in rows.values())
    assert {e.run_id for e in steps} == {run_id} and {e.workflow_id for e in steps} == {wf}
    (tokens,) = events_of(a, metric=m.INPUT_TOKENS)
    assert (tokens.agent_id, tokens.dimension, tokens.step_id, tokens.step_run_id) == (
        agent_id, "scripted:script", "triage", rows["triage"].id)
    (call,) = events_of(a, metric=m.ACTION_CALLS)
    assert (call.dimension, call.run_id, call.step_id, call.step_run_id) == (
        "http", run_id, "notify", rows["notify"].id)
    assert len(receiver.hits_to("/notify")) == 1


def test_billing_a_retried_step_counts_once_and_every_call_it_made_counts(
        app_ctx, world, inbox, receiver):
    """The step's first attempt loses its connection and is retried: one step
    executed, two connector calls made (both reached the app), as the audit log says."""
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [
        {"id": "charge", **post(receiver, "/charge?drop=1"),
         "retry": {"max_attempts": 3, "backoff_seconds": 0.01}}]})
    run_id = start_unsent(a, wf)
    inbox.sent.append((rows_of(a, run_id)[0].id, a, None))
    inbox.drain(copies=2)
    run = wait_for(a, run_id, timeout=5)
    assert run.status == "succeeded", run.error
    (row,) = rows_of(a, run_id)
    assert row.attempt == 2
    assert meters(a) == {m.RUNS_STARTED: 1, m.STEPS: 1, m.ACTION_CALLS: 2}
    assert audited(a, "connector.action_called") == 2 == len(receiver.hits_to("/charge"))


def test_billing_a_step_that_waits_and_comes_back_counts_once(app_ctx, world, inbox):
    """A delay step is recorded twice (when it starts waiting, when its time comes):
    executed once. A step that fails for good counts too."""
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [
        {"id": "pause", "type": "delay", "seconds": 0.05, "next": "boom"},
        {"id": "boom", "type": "transform", "output": "{{ 1 / 0 }}"}]})
    run_id = start_unsent(a, wf)
    inbox.sent.append((rows_of(a, run_id)[0].id, a, None))
    inbox.drain(copies=2)
    assert wait_for(a, run_id, timeout=5).status == "failed"
    assert {r.step_id: r.status for r in rows_of(a, run_id)} == {
        "pause": StepStatus.SUCCEEDED, "boom": StepStatus.FAILED}
    assert meters(a) == {m.RUNS_STARTED: 1, m.STEPS: 2}


def test_billing_writing_the_same_usage_twice_inserts_nothing_the_second_time(app_ctx, world):
    """What the engine does when a commit's answer was lost and the record is tried
    again, at the level of the database: the key, not the caller's care, makes it once."""
    a = world.tenants["a"].id
    agent = world.users["a_admin"].id  # any id: an agent's
    entries = [usage.Entry(m.INPUT_TOKENS, Decimal(100), "openai:gpt-4o-mini", agent),
               usage.Entry(m.INPUT_TOKENS, Decimal(20), "openai:gpt-4o-mini", agent),
               usage.Entry(m.MODEL_COST, Decimal("0.0123"), "openai:gpt-4o-mini", agent),
               usage.Entry(m.AGENT_CALLS, Decimal(2), "", agent)]
    where = usage.Attribution(step_id="ask")
    with scoped_to(a):
        assert usage.record(entries, attribution=where, key="claim:x:1") == 3
        assert usage.record(entries, attribution=where, key="claim:x:1") == 0
        assert usage.record(entries[:1], attribution=where, key="claim:x:2") == 1  # a retry
        db.session.commit()
    with scoped_to(a):  # the attribution's agent is an entry's unless it names its own
        assert usage.record([usage.Entry(m.AGENT_TOOL_CALLS, Decimal(1)),
                             usage.Entry(m.AGENT_TOOL_CALLS, Decimal(2), "", agent)],
                            attribution=usage.Attribution(agent_id=agent), key="chat:1") == 1
        db.session.commit()
    assert meters(a) == {m.INPUT_TOKENS: 220, m.MODEL_COST: Decimal("0.0123"),
                         m.AGENT_CALLS: 2, m.AGENT_TOOL_CALLS: 3}


def test_billing_the_engine_records_a_ledger_again_without_counting_it_again(app_ctx, world):
    """accounting.write_ledger keys a step's usage by the claim that ran it."""
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [{"id": "only", "type": "transform", "output": 1}]})
    run_id = start_unsent(a, wf)
    with scoped_to(a):
        from overture.orchestration.ledger import Ledger
        from overture.orchestration.models import Run, StepRun

        run = db.session.get(Run, run_id)
        row = db.session.scalars(db.select(StepRun).where(StepRun.run_id == run_id)).one()
        row.claim = "the-claim"
        ledger = Ledger()
        ledger.meter(m.AGENT_CALLS, 1)
        for _ in range(2):
            accounting.write_ledger(run, row, ledger, None)  # type: ignore[arg-type]
        db.session.commit()
    assert meters(a)[m.AGENT_CALLS] == 1


def test_billing_portal_users_count_once_a_month(app_ctx, world):
    a = world.tenants["a"].id
    ada, bob = world.users["a_member"].id, world.users["a_viewer"].id
    december, january = (datetime(2026, 12, 3, 9, tzinfo=UTC), datetime(2027, 1, 2, tzinfo=UTC))
    with scoped_to(a):
        assert usage.record_portal_activity(ada, december) is True
        assert usage.record_portal_activity(ada, december.replace(day=20)) is False
        assert usage.record_portal_activity(bob, december.replace(day=31)) is True
        assert usage.record_portal_activity(ada, january) is True  # a new month
        db.session.commit()
        assert reports.month_total(m.PORTAL_USERS, december) == 2
        assert reports.month_total(m.PORTAL_USERS, january) == 1
        db.session.rollback()
    with scoped_to(world.tenants["b"].id):  # another workspace counts its own users
        assert usage.record_portal_activity(ada, december) is True
        db.session.commit()
    assert {e.user_id for e in events_of(a, metric=m.PORTAL_USERS)} == {ada, bob}
    assert meters(a) == {m.PORTAL_USERS: 3}


def test_billing_knowledge_storage_and_embeddings(app, world):
    a = world.tenants["a"].id
    text = "Refunds take five days. " * 40 + "Shipping is free above 50 EUR."
    with scoped_to(a):
        collection = knowledge.create_collection("FAQ")
        document = knowledge.add_document(collection, "Refunds", text)
        other = knowledge.add_document(collection, "Shipping", "Shipping is free.")
        db.session.commit()
        passages = knowledge.passages(document) + knowledge.passages(other)
        stored = sum(len(p.embedding) for p in passages) + len(text) + len("Shipping is free.")
        collection_id, other_id, embedded = collection.id, other.id, len(passages)
        db.session.rollback()
    assert meters(a) == {m.KNOWLEDGE_BYTES: stored, m.EMBEDDINGS: embedded}

    api = as_key(app, world, "a_admin")
    found = api.get(f"/knowledge/{collection_id}/search?q=refund")
    assert found.status_code == 200 and found.json["items"]
    assert meters(a)[m.EMBEDDINGS] == embedded + 1  # the query

    assert api.delete(f"/knowledge/{collection_id}/documents/{other_id}").status_code == 204
    with scoped_to(a):
        next_hour = periods.this_month().until
        assert reports.levels(next_hour)[m.KNOWLEDGE_BYTES] == len(text) + sum(
            len(p.embedding) for p in knowledge.passages(knowledge.get_document(
                knowledge.get_collection(collection_id), document.id)))
        knowledge.delete_collection(knowledge.get_collection(collection_id))
        db.session.commit()
        assert reports.levels(next_hour)[m.KNOWLEDGE_BYTES] == 0
        db.session.rollback()
    assert meters(a)[m.KNOWLEDGE_BYTES] == 0
    assert len(events_of(a, metric=m.KNOWLEDGE_BYTES)) == 4  # two added, two deleted


def test_billing_a_portal_chat_meters_its_agent_and_end_user(app_ctx, world):
    a = world.tenants["a"].id
    agent_id = create_agent(world, scripted("helper", {
        "answer": answer("hi"), "input_tokens": 9, "output_tokens": 3}))
    member = world.users["a_member"].id
    with scoped_to(a):
        conversation = chat.start(agent_id, "Ada", end_user_id=member)
        chat.send(conversation, "hello")
        db.session.commit()
    (tokens,) = events_of(a, metric=m.INPUT_TOKENS)
    assert (tokens.agent_id, tokens.user_id, tokens.run_id, tokens.quantity) == (
        agent_id, member, None, 9)
    assert meters(a) == {m.AGENT_CALLS: 1, m.INPUT_TOKENS: 9, m.OUTPUT_TOKENS: 3}


def test_billing_events_belong_to_their_tenant_only(app_ctx, world):
    with scoped_to(world.tenants["a"].id):
        usage.record_usage(m.STEPS, 5)
        db.session.commit()
    assert raw(world.tenants["b"].id) == {}
    with scoped_to(world.tenants["b"].id):
        assert db.session.query(UsageDaily).count() == 0
        assert reports.month_total(m.STEPS) == 0
        db.session.rollback()
    with scoped_to(world.tenants["a"].id):
        assert reports.month_total(m.STEPS) == 5
        db.session.rollback()
