"""The multi-agent step types inside real published workflows, run by real `overture
worker` processes (`pytest -k agent`): agent, classify, supervisor, review_loop and
group; usage against what the fake model servers reported; version pinning."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select

from overture.billing.usage import usage_totals
from overture.orchestration import workflows
from overture.orchestration.llm.prices import DEFAULT_PRICES
from overture.orchestration.models import WorkflowVersion
from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to
from overture.platform.errors import ValidationFailed
from tests.agent_fakes import (
    FakeAnthropic,
    FakeOpenAI,
    answer,
    create_agent,
    make_connection,
    scripted,
    update_agent,
)
from tests.engine_support import Receiver, publish, rows_of, running_workers, start, wait_for


@pytest.fixture(autouse=True)
def _loopback(monkeypatch):
    """The fake model servers listen on loopback, which the outbound guard refuses."""
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


@pytest.fixture(scope="module")
def workers(settings):
    with running_workers(settings, processes=2, threads=4) as worker:
        yield worker


def wait_for_step(tenant_id: Any, run_id: Any, step_id: str, status: str,
                  timeout: float = 30.0) -> Any:
    """The step run once it reaches `status` (an approval step waiting, say)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [r for r in rows_of(tenant_id, run_id) if r.step_id == step_id]
        if rows and rows[-1].status == status:
            return rows[-1]
        if time.monotonic() > deadline:
            steps = [(r.step_id, r.status, r.error) for r in rows_of(tenant_id, run_id)]
            raise AssertionError(f"{step_id} not {status} after {timeout}s: {steps}")
        time.sleep(0.05)


def output_of(tenant_id: Any, run_id: Any, step_id: str) -> Any:
    return next(r.output for r in rows_of(tenant_id, run_id) if r.step_id == step_id)


def totals(tenant_id: Any, run_id: Any) -> dict[str, Decimal]:
    with scoped_to(tenant_id):
        found = usage_totals(run_id)
        db.session.rollback()
    return found


def audit_of(tenant_id: Any, action: str, run_id: Any) -> list[dict[str, Any]]:
    with scoped_to(tenant_id):
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()
        found = [e.details for e in events if e.details.get("run_id") == str(run_id)]
        db.session.rollback()
    return found


APPROVAL = {"type": "approval", "prompt": "A person decides", "next": None}


# --------------------------------------------------------------------------- agent


def test_agent_step_runs_the_tool_loop_in_a_workflow_and_routes_on_status(
        app_ctx, world, workers, httpserver):
    a = world.tenants["a"].id
    fake = FakeOpenAI(httpserver)
    credential = fake.credential(world)
    create_agent(world, scripted("archivist", {"answer": answer({"plan": "pro"}),
                                               "input_tokens": 7, "output_tokens": 2}))
    create_agent(world, {
        "name": "lookup", "role": "finds accounts",
        "model": {"provider": "openai", "model": "gpt-4o-mini"},
        "credential_id": str(credential.id),
        "tools": [{"kind": "agent", "ref": "archivist", "name": "ask_archive"}]})
    wf = publish(a, {"steps": [
        {"id": "find", "type": "agent", "agent": "lookup",
         "task": "Find the plan of {{ input.email }}", "input": {"email": "{{ input.email }}"},
         "routes": [{"status": "needs_human", "next": "approve"}], "next": "reply"},
        {"id": "reply", "type": "transform",
         "output": "plan: {{ steps.find.output.plan }} ({{ steps.find.status }})"},
        {"id": "approve", **APPROVAL},
    ]})
    fake.tool_call(("ask_archive", {"task": "plan of ada@example.com"}), tokens=(310, 22))
    fake.say(answer({"plan": "pro"}), tokens=(405, 18))
    run = wait_for(a, start(a, wf, {"email": "ada@example.com",
                                    "internal_note": "do not show the agent"}))
    assert run.status == "succeeded", run.error
    assert run.output == "plan: pro (ok)"
    user_message = fake.requests[0]["messages"][1]["content"]
    assert "Find the plan of ada@example.com" in user_message
    assert "do not show" not in user_message  # the input mapping decides what it sees
    usage = totals(a, run.id)
    assert usage["llm_input_tokens"] == fake.reported[0] + 7 == 722
    assert usage["llm_output_tokens"] == fake.reported[1] + 2 == 42
    assert usage["agent_invocations"] == 2 and usage["agent_tool_calls"] == 1
    (called,) = audit_of(a, "agent.tool_called", run.id)
    assert (called["agent"], called["tool"], called["step_id"]) == ("lookup", "ask_archive",
                                                                    "find")
    assert called["input_digest"].startswith("sha256:")

    fake.say(answer("a refund this size needs a person", status="needs_human"))
    waiting = start(a, wf, {"email": "bob@example.com"})
    wait_for_step(a, waiting, "approve", "waiting")
    assert output_of(a, waiting, "find")["status"] == "needs_human"


def test_agent_step_acts_through_a_connector_with_the_step_runs_key(
        app_ctx, world, workers, httpserver):
    a = world.tenants["a"].id
    fake = FakeAnthropic(httpserver)
    with Receiver() as receiver:
        # the token goes only to the connection's own origin: the receiver's
        make_connection(world, "http", "hooks", {"bearer_token": "hook-token"},
                        base_url=receiver.url("/"))
        create_agent(world, {
            "name": "notifier",
            "model": {"provider": "anthropic", "model": "claude-haiku-4-5"},
            "credential_id": str(fake.credential(world).id),
            "tools": [{"kind": "action", "ref": "hooks/request", "name": "notify",
                       "allow_side_effects": True}]})
        wf = publish(a, {"steps": [{"id": "tell", "type": "agent", "agent": "notifier"}]})
        fake.tool_call(("notify", {"method": "POST", "url": receiver.url("/tickets"),
                                   "json": {"ticket": 7}}), tokens=(150, 20))
        fake.say(answer("told the team"), tokens=(190, 8))
        run = wait_for(a, start(a, wf, {"ticket": 7}))
        assert run.status == "succeeded", run.error
        (row,) = rows_of(a, run.id)
        # the side effect carries a key derived from the step run: a retry repeats it
        assert receiver.effects_on("/tickets") == [f"ovt-{row.id}-agent-1"]
    assert run.output["output"] == "told the team"
    assert json.loads(fake.tool_results(1)[0])["body"]["effect"] == 1
    assert totals(a, run.id)["agent_tool_calls"] == 1


def test_agent_usage_across_openai_and_anthropic_steps_sums_to_reported_tokens(
        app_ctx, world, workers, httpserver):
    a = world.tenants["a"].id
    gpt, claude = FakeOpenAI(httpserver), FakeAnthropic(httpserver)
    create_agent(world, {"name": "first", "model": {"provider": "openai",
                                                    "model": "gpt-4o-mini"},
                         "credential_id": str(gpt.credential(world).id)})
    create_agent(world, {"name": "second", "model": {"provider": "anthropic",
                                                     "model": "claude-haiku-4-5"},
                         "credential_id": str(claude.credential(world).id)})
    wf = publish(a, {"steps": [
        {"id": "one", "type": "agent", "agent": "first", "next": "two"},
        {"id": "two", "type": "agent", "agent": "second",
         "input": {"draft": "{{ steps.one.output }}"}},
    ]})
    gpt.say("draft", tokens=(1234, 321))
    claude.say(answer("polished"), tokens=(2345, 432))
    run = wait_for(a, start(a, wf, {"ticket": "help"}))
    assert run.status == "succeeded", run.error
    assert claude.requests[0]["messages"][0]["content"].endswith('{"draft": "draft"}')
    usage = totals(a, run.id)
    assert usage["llm_input_tokens"] == gpt.reported[0] + claude.reported[0] == 3579
    assert usage["llm_output_tokens"] == gpt.reported[1] + claude.reported[1] == 753
    gpt_in, gpt_out = (Decimal(p) for p in DEFAULT_PRICES[("openai", "gpt-4o-mini")])
    cl_in, cl_out = (Decimal(p) for p in DEFAULT_PRICES[("anthropic", "claude-haiku-4-5")])
    expected = (1234 * gpt_in + 321 * gpt_out + 2345 * cl_in + 432 * cl_out) / 1_000_000
    assert usage["llm_cost"] == expected.quantize(Decimal("0.000001"))
    assert (run.tokens, run.agent_calls) == (3579 + 753, 2)  # the run's own tally agrees
    assert run.cost == expected.quantize(Decimal("0.000001"))


def test_agent_run_policy_max_agent_calls_stops_the_run(app_ctx, world, workers):
    """A workflow's `max_agent_calls` bounds the agent invocations of a run: the step
    that goes over fails the run, its usage still recorded, and nothing after it runs."""
    a = world.tenants["a"].id
    create_agent(world, scripted("echo", {"answer": answer("heard")}))
    wf = publish(a, {"policy": {"max_agent_calls": 2}, "steps": [
        {"id": "one", "type": "agent", "agent": "echo", "next": "two"},
        {"id": "two", "type": "agent", "agent": "echo", "next": "three"},
        {"id": "three", "type": "agent", "agent": "echo", "next": "after"},
        {"id": "after", "type": "transform", "output": "should not run"}]})
    run = wait_for(a, start(a, wf, {"ticket": "help"}))
    assert run.status == "failed" and run.error["code"] == "max_agent_calls", run.error
    assert run.agent_calls == 3
    statuses = {r.step_id: r.status for r in rows_of(a, run.id)}
    assert statuses == {"one": "succeeded", "two": "succeeded", "three": "failed"}
    assert totals(a, run.id)["agent_invocations"] == 3


def test_agent_budget_exhausted_mid_loop_fails_the_run_or_escalates(
        app_ctx, world, workers, httpserver):
    a = world.tenants["a"].id
    fake = FakeOpenAI(httpserver)
    create_agent(world, scripted("helper", {"when": "more", "answer": answer("more")}))
    create_agent(world, {
        "name": "spender", "model": {"provider": "openai", "model": "gpt-4o-mini"},
        "credential_id": str(fake.credential(world).id), "limits": {"max_tokens": 500},
        "tools": [{"kind": "agent", "ref": "helper"}]})
    failing = publish(a, {"steps": [{"id": "work", "type": "agent", "agent": "spender"}]},
                      name="fails")
    escalating = publish(a, {"steps": [
        {"id": "work", "type": "agent", "agent": "spender", "on_error": "manager"},
        {"id": "manager", **APPROVAL}]}, name="escalates")

    fake.tool_call(("ask_helper", {"task": "more"}), tokens=(300, 50))
    fake.tool_call(("ask_helper", {"task": "more"}), tokens=(400, 60))
    run = wait_for(a, start(a, failing))
    assert run.status == "failed"
    assert (run.error["code"], run.error["step"]) == ("agent_budget_exhausted", "work")
    assert "810 tokens of its 500" in run.error["message"]
    assert len(fake.requests) == 2
    usage = totals(a, run.id)  # what was spent before it stopped is on the bill
    assert (usage["llm_input_tokens"], usage["llm_output_tokens"]) == (700, 110)
    assert usage["agent_tool_calls"] == 2 and usage["agent_invocations"] == 3

    fake.tool_call(("ask_helper", {"task": "more"}), tokens=(600, 1))
    escalated = start(a, escalating)
    wait_for_step(a, escalated, "manager", "waiting")
    assert totals(a, escalated)["llm_input_tokens"] == 600


# --------------------------------------------------------------------------- classify


def triage_definition(**classify: Any) -> dict[str, Any]:
    return {"steps": [
        {"id": "triage", "type": "classify", "agent": "router",
         "input": {"subject": "{{ input.subject }}", "body": "{{ input.body }}"},
         "routes": [
             {"name": "billing", "description": "invoices, payments, refunds and charges",
              "next": "billing"},
             {"name": "technical", "description": "errors, crashes, bugs and login problems",
              "next": "technical"},
             {"name": "sales", "description": "pricing, quotes and buying more seats",
              "next": "sales"}], **classify},
        {"id": "billing", "type": "transform", "output": "billing"},
        {"id": "technical", "type": "transform", "output": "technical"},
        {"id": "sales", "type": "transform", "output": "sales"},
        {"id": "human", **APPROVAL},
    ]}


def test_agent_classify_routes_offline_and_falls_back_below_the_threshold(
        app_ctx, world, workers):
    a = world.tenants["a"].id
    create_agent(world, {"name": "router", "role": "ticket triage",
                         "model": {"provider": "local", "model": "wordllama"}})
    wf = publish(a, triage_definition(
        threshold=0.7, human="human",
        rules=[{"when": "input.plan == 'enterprise'", "route": "sales"}]))
    clear = start(a, wf, {"subject": "Charged twice",
                          "body": "My invoice shows two payments, please refund one"})
    crash = start(a, wf, {"subject": "Crash", "body": "The app crashes with an error on login"})
    vague_vip = start(a, wf, {"subject": "hello", "body": "quick question",
                              "plan": "enterprise"})
    vague = start(a, wf, {"subject": "hello", "body": "quick question", "plan": "free"})
    assert wait_for(a, clear).output == "billing"
    assert wait_for(a, crash).output == "technical"
    assert wait_for(a, vague_vip).output == "sales"
    decided = output_of(a, vague_vip, "triage")
    assert decided["decided_by"] == "rule" and decided["confidence"] < 0.7
    assert decided["agent"]["provider"] == "local"
    wait_for_step(a, vague, "human", "waiting")
    assert output_of(a, vague, "triage")["decided_by"] == "human"
    by_agent = output_of(a, clear, "triage")
    assert by_agent["decided_by"] == "agent" and by_agent["confidence"] >= 0.7


def test_agent_classify_with_a_model_that_picks_no_known_route_goes_to_a_human(
        app_ctx, world, workers):
    a = world.tenants["a"].id
    # a script starts over in each step run: keyed turns answer per ticket
    create_agent(world, scripted(
        "router", {"when": "unsure", "answer": answer(None, status="needs_human")},
        {"when": "invoice", "answer": answer({"route": "billing"}, confidence=0.95)}))
    wf = publish(a, triage_definition(threshold=0.5, human="human"))
    billing = wait_for(a, start(a, wf, {"subject": "invoice", "body": "y"}))
    assert billing.output == "billing", billing.error
    unsure = start(a, wf, {"subject": "unsure", "body": "y"})
    wait_for_step(a, unsure, "human", "waiting")


# --------------------------------------------------------------------------- supervisor


@pytest.fixture
def threaded_server():
    """A fake server that answers requests at the same time (the default one queues)."""
    server = HTTPServer(threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


def test_agent_supervisor_delegates_in_parallel_and_combines(app_ctx, world, workers,
                                                             threaded_server):
    a = world.tenants["a"].id
    fake = FakeOpenAI(threaded_server)
    credential = fake.credential(world)
    for name, role in (("billing_expert", "knows invoices"), ("tech_expert", "knows bugs")):
        create_agent(world, {"name": name, "role": role, "credential_id": str(credential.id),
                             "model": {"provider": "openai", "model": "gpt-4o-mini"}})
    create_agent(world, scripted(
        "coordinator",
        {"tool_calls": [{"name": "ask_billing_expert", "arguments": {"task": "the invoice"}},
                        {"name": "ask_tech_expert", "arguments": {"task": "the crash"}}]},
        {"answer": answer("combined: invoice fixed, crash explained")}))
    wf = publish(a, {"steps": [{"id": "solve", "type": "supervisor", "agent": "coordinator",
                                "specialists": ["billing_expert", "tech_expert"],
                                "max_rounds": 2}]})
    fake.say(answer("specialist view"), tokens=(100, 10), delay=1.0)
    fake.say(answer("specialist view"), tokens=(100, 10), delay=1.0)
    run = wait_for(a, start(a, wf, {"ticket": "invoice wrong and app crashes"}))
    assert run.status == "succeeded", run.error
    solved = output_of(a, run.id, "solve")
    assert solved["output"] == "combined: invoice fixed, crash explained"
    assert sorted((d["agent"], d["task"]) for d in solved["delegations"]) == [
        ("billing_expert", "the invoice"), ("tech_expert", "the crash")]
    (row,) = [r for r in rows_of(a, run.id) if r.step_id == "solve"]
    assert (row.finished_at - row.started_at).total_seconds() < 1.9  # the two overlapped
    assert totals(a, run.id)["agent_invocations"] == 3


def test_agent_supervisor_is_told_to_wrap_up_after_max_rounds(app_ctx, world, workers):
    a = world.tenants["a"].id
    create_agent(world, scripted("expert", {"when": "again", "answer": answer("noted")}))
    create_agent(world, scripted(
        "boss",
        {"when": "used all your rounds", "answer": answer("final from what I have")},
        {"tool_calls": [{"name": "ask_expert", "arguments": {"task": "again"}}]},
        {"tool_calls": [{"name": "ask_expert", "arguments": {"task": "again"}}]}))
    wf = publish(a, {"steps": [{"id": "solve", "type": "supervisor", "agent": "boss",
                                "specialists": ["expert"], "max_rounds": 1}]})
    run = wait_for(a, start(a, wf, {}))
    assert run.status == "succeeded", run.error
    solved = output_of(a, run.id, "solve")
    assert solved["output"] == "final from what I have"
    assert len(solved["delegations"]) == 1


# --------------------------------------------------------------------------- review loop


def review_definition() -> dict[str, Any]:
    return {"steps": [
        {"id": "write", "type": "review_loop", "drafter": "drafter", "reviewer": "reviewer",
         "task": "Reply to the customer", "max_rounds": 2, "escalate": "editor",
         "next": "send"},
        {"id": "send", "type": "transform", "output": "sent: {{ steps.write.draft }}"},
        {"id": "editor", **APPROVAL},
    ]}


def test_agent_review_loop_revises_until_approved(app_ctx, world, workers):
    a = world.tenants["a"].id
    create_agent(world, scripted(
        "drafter", {"when": "mention the 30 day window",
                    "answer": answer("Refunds within 30 days.")},
        {"answer": answer("We do refunds.")}))
    create_agent(world, scripted(
        "reviewer", {"when": "30 days", "answer": answer({"approved": True})},
        {"answer": answer({"approved": False, "feedback": "mention the 30 day window"})}))
    run = wait_for(a, start(a, publish(a, review_definition()), {"question": "refund?"}))
    assert run.status == "succeeded", run.error
    assert run.output == "sent: Refunds within 30 days."
    written = output_of(a, run.id, "write")
    assert (written["approved"], written["rounds"]) == (True, 2)
    assert [h["approved"] for h in written["history"]] == [False, True]


def test_agent_review_loop_escalates_when_never_approved(app_ctx, world, workers):
    a = world.tenants["a"].id
    create_agent(world, scripted("drafter", {"when": "reply", "answer": answer("meh")}))
    create_agent(world, scripted("reviewer", {"when": "meh", "answer": answer(
        {"approved": False, "feedback": "still not good"})}))
    run_id = start(a, publish(a, review_definition()), {"question": "refund?"})
    wait_for_step(a, run_id, "editor", "waiting")
    written = output_of(a, run_id, "write")
    assert (written["approved"], written["rounds"]) == (False, 2)
    assert "not approved after 2 round(s)" in written["escalated"]


def test_agent_review_loop_with_local_agents_runs_offline(app_ctx, world, workers):
    a = world.tenants["a"].id
    create_agent(world, {"name": "drafter", "model": {"provider": "local", "model": "t"},
                         "instructions": "Sorry about the {{ input.problem }}; "
                                         "a refund for the {{ input.problem }} is on its way."})
    create_agent(world, {"name": "reviewer", "model": {"provider": "local", "model": "e"}})
    run = wait_for(a, start(a, publish(a, review_definition()),
                            {"problem": "double charge on the invoice"}))
    assert run.status == "succeeded", run.error
    assert run.output.startswith("sent: Sorry about the double charge on the invoice")
    written = output_of(a, run.id, "write")
    assert written["approved"] and "local check" in written["feedback"]


# --------------------------------------------------------------------------- group


def speaker(name: str) -> dict[str, Any]:
    return scripted(name, {"when": "group", "answer": answer(f"{name} speaks")},
                    role=f"the {name}")


def test_agent_group_round_robin_and_until(app_ctx, world, workers):
    a = world.tenants["a"].id
    for name in ("ann", "bob", "cat"):
        create_agent(world, speaker(name))
    wf = publish(a, {"steps": [
        {"id": "talk", "type": "group", "agents": ["ann", "bob", "cat"], "max_turns": 4}]})
    wf2 = publish(a, {"steps": [
        {"id": "short", "type": "group", "agents": ["ann", "bob", "cat"], "max_turns": 10,
         "until": "item.last.agent == 'bob'"}]}, name="short")
    run = wait_for(a, start(a, wf, {"topic": "launch"}))
    assert run.status == "succeeded", run.error
    talk = output_of(a, run.id, "talk")
    assert [t["agent"] for t in talk["transcript"]] == ["ann", "bob", "cat", "ann"]
    assert talk["last"]["output"] == "ann speaks"
    short = wait_for(a, start(a, wf2, {}))
    assert [t["agent"] for t in short.output["transcript"]] == ["ann", "bob"]


def test_agent_group_speaker_by_rule_and_by_selector(app_ctx, world, workers):
    a = world.tenants["a"].id
    for name in ("planner", "critic", "writer"):
        create_agent(world, speaker(name))
    create_agent(world, scripted("chair", {"when": "Pick who",
                                           "answer": answer({"route": "writer"})}))
    by_rule = publish(a, {"steps": [{
        "id": "talk", "type": "group", "agents": ["planner", "critic", "writer"],
        "max_turns": 3, "speaker": "rule",
        "rules": [{"when": "item.last == null", "agent": "writer"},
                  {"when": "item.last.agent == 'writer'", "agent": "critic"}]}]}, name="rule")
    by_selector = publish(a, {"steps": [{
        "id": "talk", "type": "group", "agents": ["planner", "critic", "writer"],
        "max_turns": 2, "speaker": "selector", "selector": "chair"}]}, name="selector")
    ruled = wait_for(a, start(a, by_rule, {}))
    assert ruled.status == "succeeded", ruled.error
    # writer first, critic after the writer, then no rule holds: round robin (turn 2)
    assert [t["agent"] for t in ruled.output["transcript"]] == ["writer", "critic", "writer"]
    selected = wait_for(a, start(a, by_selector, {}))
    assert selected.status == "succeeded", selected.error
    assert [t["agent"] for t in selected.output["transcript"]] == ["writer", "writer"]
    assert totals(a, selected.id)["agent_invocations"] == 4  # two picks, two turns


# --------------------------------------------------------------------------- pinning


def test_agent_published_version_keeps_its_pinned_agent_version(app_ctx, world, workers):
    a = world.tenants["a"].id
    config = scripted("pinned", {"when": "go", "answer": answer("version one")})
    agent_id = create_agent(world, config)
    wf = publish(a, {"steps": [{"id": "say", "type": "agent", "agent": "pinned",
                                "input": "go"}]})
    update_agent(world, agent_id, {**config, "script": [
        {"when": "go", "answer": answer("version two")}]})
    old = wait_for(a, start(a, wf))
    assert (old.status, old.output["output"]) == ("succeeded", "version one")
    assert old.output["version"] == 1
    with scoped_to(a):
        workflow = workflows.get_workflow(wf)
        workflows.publish(workflow, None)
        db.session.commit()
        pins = [v.pins for v in db.session.scalars(select(WorkflowVersion).where(
            WorkflowVersion.workflow_id == wf).order_by(WorkflowVersion.number))]
        db.session.rollback()
    assert pins[0]["agents"]["pinned"] != pins[1]["agents"]["pinned"]
    new = wait_for(a, start(a, wf))
    assert (new.output["output"], new.output["version"]) == ("version two", 2)


def test_agent_publish_names_the_step_and_field_at_fault(app_ctx, world):
    a = world.tenants["a"].id
    create_agent(world, scripted("known", {"text": "hi"}))
    bad = {"steps": [
        {"id": "one", "type": "agent", "agent": "ghost", "next": "two"},
        {"id": "two", "type": "review_loop", "drafter": "known", "reviewer": "phantom",
         "next": "three"},
        {"id": "three", "type": "classify", "agent": "known", "threshold": 0.5,
         "routes": [{"name": "x", "next": None}, {"name": "y", "next": None}]},
        {"id": "four", "type": "group", "agents": ["known", "known2"], "speaker": "rule",
         "rules": [{"when": "item.last.agent ==", "agent": "stranger"}]},
    ]}
    with scoped_to(a), pytest.raises(ValidationFailed) as failed:
        workflows.publish(workflows.create_workflow("bad", draft=bad), None)
    db.session.rollback()
    fields = {e["field"] for e in failed.value.errors}
    assert {"steps.one.agent", "steps.two.reviewer", "steps.three.threshold",
            "steps.four.rules.0.when", "steps.four.rules.0.agent"} <= fields
    assert "steps.four.agents" in fields  # known2 does not exist


def test_agent_pins_follow_delegation(app_ctx, world):
    a = world.tenants["a"].id
    create_agent(world, scripted("deep", {"text": "x"}))
    create_agent(world, scripted("middle", {"text": "x"},
                                 tools=[{"kind": "agent", "ref": "deep"}]))
    create_agent(world, scripted("top", {"text": "x"},
                                 tools=[{"kind": "agent", "ref": "middle"}]))
    wf = publish(a, {"steps": [{"id": "go", "type": "agent", "agent": "top"}]})
    with scoped_to(a):
        (version,) = db.session.scalars(select(WorkflowVersion).where(
            WorkflowVersion.workflow_id == wf)).all()
        assert set(version.pins["agents"]) == {"top", "middle", "deep"}
        db.session.rollback()
