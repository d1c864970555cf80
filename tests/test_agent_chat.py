"""Conversations with an agent through API v1, the portal chat (`-k agent`): each message
runs the agent's current version on the conversation so far, stores both turns, and
records usage (agent id, no workflow or run) and audit in the request; failures store
no turn but still pay; roles and tenants keep them apart. With the scripted provider
and with the fake OpenAI server over HTTP (the history really reaches the model)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from overture.billing.usage import UsageEvent
from overture.orchestration.agents import chat
from overture.orchestration.agents.models import ConversationMessage
from overture.orchestration.llm.prices import DEFAULT_PRICES
from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to
from tests.agent_fakes import FakeOpenAI, answer, create_agent, scripted
from tests.support import as_key, as_user


@pytest.fixture(autouse=True)
def _loopback(monkeypatch):
    """The fake model servers listen on loopback, which the outbound guard refuses."""
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


# In a chat every message is a new invocation, so a script answers by keyword (`when`).
DESK = scripted(
    "desk",
    {"when": "refund", "answer": answer("Which order is it?"), "input_tokens": 40,
     "output_tokens": 6},
    {"when": "1042", "answer": answer({"order": 1042, "refund": "issued"}),
     "input_tokens": 70, "output_tokens": 9},
    {"when": "busy", "error": "rate_limited"},
    {"when": "loop", "tool_calls": [{"name": "ghost", "arguments": {}}], "input_tokens": 33},
    limits={"max_iterations": 1})


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code,
                                            response.get_data(as_text=True))
    return response.get_json()


def usage_rows(tenant_id: Any) -> list[Any]:
    with scoped_to(tenant_id):
        rows = db.session.execute(select(
            UsageEvent.metric, UsageEvent.quantity, UsageEvent.agent_id,
            UsageEvent.workflow_id, UsageEvent.run_id)).all()
        db.session.rollback()
    return list(rows)


def usage_sums(tenant_id: Any) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = {}
    for metric, quantity, *_ in usage_rows(tenant_id):
        sums[metric] = sums.get(metric, Decimal(0)) + quantity
    return sums


def audit_events(tenant_id: Any, prefix: str) -> list[Any]:
    with scoped_to(tenant_id):
        rows = db.session.execute(select(AuditEvent.action, AuditEvent.actor_id,
                                         AuditEvent.details)
                                  .where(AuditEvent.action.startswith(prefix))
                                  .order_by(AuditEvent.seq)).all()
        db.session.rollback()
    return list(rows)


def message_count(tenant_id: Any) -> int:
    with scoped_to(tenant_id):
        count = db.session.scalar(select(func.count()).select_from(ConversationMessage))
        db.session.rollback()
    return int(count or 0)


# --------------------------------------------------------------------------- scripted


def test_agent_chat_turns_are_stored_metered_and_audited(app, world):
    a = world.tenants["a"].id
    aid = str(create_agent(world, DESK))
    operator = as_user(app, world, "a_operator")
    member_id = str(world.users["a_member"].id)
    base = f"/agents/{aid}/conversations"
    started = ok(operator.post(base, json={"title": "Ada, order 1042",
                                           "end_user_id": member_id}), 201)
    assert (started["agent_id"], started["title"], started["end_user_id"]) == (
        aid, "Ada, order 1042", member_id)
    cid = started["id"]

    first = ok(operator.post(f"{base}/{cid}/messages", json={"content": "I want a refund"}))
    assert first["message"]["content"] == "Which order is it?"
    assert (first["status"], first["confidence"]) == ("ok", 0.9)
    assert first["usage"] == {"input_tokens": 40, "output_tokens": 6, "cost": None,
                              "agent_invocations": 1, "tool_calls": 0}
    second = ok(operator.post(f"{base}/{cid}/messages", json={"content": "Order 1042."}))
    assert second["output"] == {"order": 1042, "refund": "issued"}
    assert second["message"]["content"] == '{"order": 1042, "refund": "issued"}'

    detail = ok(operator.get(f"{base}/{cid}"))
    assert [(m["role"], m["content"]) for m in detail["messages"]] == [
        ("user", "I want a refund"), ("assistant", "Which order is it?"),
        ("user", "Order 1042."), ("assistant", '{"order": 1042, "refund": "issued"}')]
    assert [m["content"] for m in ok(operator.get(f"{base}/{cid}", query_string={
        "limit": 1}))["messages"]] == ['{"order": 1042, "refund": "issued"}']
    assert [c["id"] for c in ok(operator.get(base))["items"]] == [cid]
    assert ok(operator.get(base, query_string={"end_user_id": member_id}))["items"][0]["id"] \
        == cid
    assert ok(operator.get(base, query_string={
        "end_user_id": str(world.users["a_admin"].id)}))["items"] == []

    # Usage: the agent's, in no workflow or run; what the script reported.
    assert {(agent, wf, run) for _, _, agent, wf, run in usage_rows(a)} == {
        (uuid.UUID(aid), None, None)}
    assert usage_sums(a) == {"agent_invocations": 2, "llm_input_tokens": 110,
                             "llm_output_tokens": 15}
    events = audit_events(a, "agent.conversation_")
    assert [e.action for e in events] == ["agent.conversation_started",
                                          "agent.conversation_replied",
                                          "agent.conversation_replied"]
    assert {e.actor_id for e in events} == {str(world.users["a_operator"].id)}
    assert {e.details["conversation_id"] for e in events} == {cid}
    assert "refund" not in str([e.details for e in events])  # no message text in the log


def test_agent_chat_failures_store_no_turn_but_pay_and_say_why(app, world):
    a = world.tenants["a"].id
    aid = str(create_agent(world, DESK))
    builder = as_user(app, world, "a_builder")
    base = f"/agents/{aid}/conversations"
    cid = ok(builder.post(base, json={}), 201)["id"]

    busy = builder.post(f"{base}/{cid}/messages", json={"content": "are you busy?"})
    assert busy.status_code == 503, busy.get_data(as_text=True)
    assert busy.get_json()["type"].endswith("agent-unavailable")
    assert busy.get_json()["error"]["code"] == "rate_limited"

    loop = builder.post(f"{base}/{cid}/messages", json={"content": "loop forever"})
    assert loop.status_code == 422, loop.get_data(as_text=True)
    problem = loop.get_json()
    assert problem["type"].endswith("agent-failed")
    assert (problem["error"]["code"], problem["error"]["limit"]) == (
        "agent_budget_exhausted", "max_iterations")
    assert message_count(a) == 0
    # What the failed turns used is paid for; the refusal and the failures are audited.
    assert usage_sums(a) == {"agent_invocations": 2, "llm_input_tokens": 33}
    failed = audit_events(a, "agent.conversation_failed")
    assert [e.details["code"] for e in failed] == ["rate_limited", "agent_budget_exhausted"]
    (refused,) = audit_events(a, "agent.tool_refused")
    assert (refused.details["tool"], refused.details["conversation_id"]) == ("ghost", cid)

    # The conversation goes on afterwards.
    ok(builder.post(f"{base}/{cid}/messages", json={"content": "a refund, please"}))
    assert message_count(a) == 2


@pytest.mark.parametrize(("path", "body", "field"), [
    ("", {"title": "x" * 201}, "title"),
    ("", {"end_user_id": "not-a-uuid"}, "end_user_id"),
    ("", {"colour": "blue"}, "colour"),
    ("/{cid}/messages", {"content": ""}, "content"),
    ("/{cid}/messages", {"content": "   "}, "content"),
    ("/{cid}/messages", {}, "content"),
    ("/{cid}/messages", {"content": "x" * 100_001}, "content"),
])
def test_agent_chat_bad_input_is_422_naming_the_field(app, world, path, body, field):
    aid = str(create_agent(world, DESK))
    admin = as_key(app, world, "a_admin")
    base = f"/agents/{aid}/conversations"
    cid = ok(admin.post(base, json={}), 201)["id"]
    response = admin.post(base + path.format(cid=cid), json=body)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert field in {e["field"] for e in response.get_json()["errors"]}


def test_agent_chat_end_user_must_be_a_member_here(app, world):
    aid = str(create_agent(world, DESK))
    admin = as_key(app, world, "a_admin")
    base = f"/agents/{aid}/conversations"
    for outsider in ("b_admin", "platform"):
        response = admin.post(base, json={"end_user_id": str(world.users[outsider].id)})
        assert response.status_code == 422, response.get_data(as_text=True)
        assert response.get_json()["errors"][0]["field"] == "end_user_id"
    assert admin.get(f"{base}", query_string={"limit": 0}).status_code == 422
    assert admin.get(f"{base}/not-an-id").status_code == 404


def test_agent_chat_roles_run_start_to_chat_run_read_to_read(app, world):
    aid = str(create_agent(world, DESK))
    base = f"/agents/{aid}/conversations"
    cid = ok(as_user(app, world, "a_operator").post(base, json={}), 201)["id"]
    viewer = as_user(app, world, "a_viewer")
    assert ok(viewer.get(base))["items"][0]["id"] == cid
    assert ok(viewer.get(f"{base}/{cid}"))["messages"] == []
    assert viewer.post(base, json={}).status_code == 403
    assert viewer.post(f"{base}/{cid}/messages", json={"content": "refund"}).status_code == 403
    member = as_user(app, world, "a_member")
    assert member.get(base).status_code == 403
    assert member.post(f"{base}/{cid}/messages", json={"content": "refund"}).status_code == 403
    assert message_count(world.tenants["a"].id) == 0


def test_agent_chat_other_tenants_and_agents_see_nothing(app, world):
    a = world.tenants["a"].id
    aid = str(create_agent(world, DESK))
    other = str(create_agent(world, scripted("other", {"answer": answer("hi")})))
    admin = as_key(app, world, "a_admin")
    base = f"/agents/{aid}/conversations"
    cid = ok(admin.post(base, json={}), 201)["id"]
    ok(admin.post(f"{base}/{cid}/messages", json={"content": "refund"}))
    # The conversation is this agent's: not reachable under another one.
    assert admin.get(f"/agents/{other}/conversations/{cid}").status_code == 404
    assert admin.post(f"/agents/{other}/conversations/{cid}/messages",
                      json={"content": "refund"}).status_code == 404
    assert ok(admin.get(f"/agents/{other}/conversations"))["items"] == []
    b_aid = str(create_agent(world, DESK, tenant="b"))
    for caller in (as_key(app, world, "b_admin"), as_key(app, world, "c_owner")):
        assert caller.get(base).status_code == 404
        assert caller.post(base, json={}).status_code == 404
        assert caller.get(f"{base}/{cid}").status_code == 404
        assert caller.post(f"{base}/{cid}/messages", json={"content": "refund"}
                           ).status_code == 404
        # Even under an agent of the caller's own, A's conversation is not found.
        assert caller.get(f"/agents/{b_aid}/conversations/{cid}").status_code == 404
    assert message_count(a) == 2
    with scoped_to(world.tenants["b"].id):
        assert chat.list_conversations(b_aid, None, None).items == []


# --------------------------------------------------------------------------- a real model API


def test_agent_chat_sends_the_history_to_the_model(app, world, httpserver, monkeypatch):
    a = world.tenants["a"].id
    fake = FakeOpenAI(httpserver)
    aid = str(create_agent(world, {
        "name": "support", "role": "support assistant", "credential_id":
        str(fake.credential(world).id), "model": {"provider": "openai",
                                                  "model": "gpt-4o-mini"}}))
    operator = as_user(app, world, "a_operator")
    base = f"/agents/{aid}/conversations"
    cid = ok(operator.post(base, json={"title": "Ada"}), 201)["id"]
    fake.say(answer("Which order is it?"), tokens=(120, 8))
    fake.say("Thanks: the refund for 1042 is on its way.", tokens=(180, 14))
    ok(operator.post(f"{base}/{cid}/messages", json={"content": "I want a refund"}))
    second = ok(operator.post(f"{base}/{cid}/messages", json={"content": "Order 1042."}))
    assert second["message"]["content"] == "Thanks: the refund for 1042 is on its way."

    sent = [(m["role"], m["content"]) for m in fake.requests[1]["messages"]]
    assert sent[0][0] == "system" and "support assistant" in sent[0][1]
    assert sent[1:] == [("user", "I want a refund"), ("assistant", "Which order is it?"),
                        ("user", "Order 1042.")]
    # Tokens as the server reported them, priced; the response says the turn's share.
    price_in, price_out = (Decimal(p) for p in DEFAULT_PRICES[("openai", "gpt-4o-mini")])
    sums = usage_sums(a)
    assert (sums["llm_input_tokens"], sums["llm_output_tokens"]) == (300, 22) == tuple(
        fake.reported)
    micro = Decimal("0.000001")  # usage events keep six decimals, per call
    assert sums["llm_cost"] == sum(((i * price_in + o * price_out) / 1_000_000).quantize(micro)
                                   for i, o in ((120, 8), (180, 14)))
    assert second["usage"]["input_tokens"] == 180
    assert Decimal(second["usage"]["cost"]) == (180 * price_in + 14 * price_out) / 1_000_000

    # The history is bounded: the newest turns only, starting with a user's.
    monkeypatch.setattr(chat, "HISTORY_TURNS", 3)
    fake.say("You're welcome.")
    ok(operator.post(f"{base}/{cid}/messages", json={"content": "Thank you!"}))
    sent = [(m["role"], m["content"]) for m in fake.requests[2]["messages"][1:]]
    assert sent == [("user", "Order 1042."),
                    ("assistant", "Thanks: the refund for 1042 is on its way."),
                    ("user", "Thank you!")]


def test_agent_chat_is_in_the_openapi_document(app):
    paths = app.test_client().get("/api/v1/openapi.json").get_json()["paths"]
    base = "/api/v1/agents/{agent_id}/conversations"
    assert set(paths[base]) >= {"get", "post"}
    assert "get" in paths[base + "/{conversation_id}"]
    assert "post" in paths[base + "/{conversation_id}/messages"]
