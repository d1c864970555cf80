"""The agent runtime (`pytest -k agent`): the tool-calling loop against local fake
OpenAI-compatible and Anthropic servers over real HTTP, with real connector actions
reaching local servers, limits, malformed arguments, refusals, and the offline
providers. Agents here are in-memory specs; the pattern tests use stored ones."""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from werkzeug import Response

from overture.connectors.execute import digest
from overture.orchestration.agents import knowledge
from overture.orchestration.agents.runtime import Runner
from overture.orchestration.agents.service import LoadedAgent
from overture.orchestration.agents.spec import AgentSpec
from overture.orchestration.agents.task import Task
from overture.orchestration.llm.local_provider import Classify, LocalProvider
from overture.orchestration.llm.prices import DEFAULT_PRICES
from overture.orchestration.llm.types import ChatRequest, Message
from overture.orchestration.outcomes import StepFailed
from overture.orchestration.steps import StepContext
from overture.platform.db import db, scoped_to
from tests.agent_fakes import FakeAnthropic, FakeOpenAI, answer, make_connection, scripted
from tests.engine_support import Receiver

STRIPE_KEY = "sk_test_agent_0000000000000000"
ADA = {"id": "cus_ada", "email": "ada@example.com", "name": "Ada Lovelace", "phone": None,
       "description": None, "created": 1_700_000_000, "metadata": {}}


@pytest.fixture(autouse=True)
def _loopback(monkeypatch):
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


@pytest.fixture
def tenant(world):
    with scoped_to(world.tenants["a"].id):
        yield world.tenants["a"]
        db.session.rollback()


def step_context(tenant_id: Any) -> StepContext:
    step_run = uuid.uuid4()
    return StepContext(step={"id": "s", "type": "agent"}, path="", scope={},
                       idempotency_key=f"ovt-{step_run}", attempt=1, timeout=60,
                       tenant_id=str(tenant_id), started_at=datetime.now(UTC),
                       run_id=str(uuid.uuid4()), workflow_id=str(uuid.uuid4()),
                       step_run_id=str(step_run))


def runner_for(ctx: StepContext, *configs: dict[str, Any]) -> Runner:
    agents = {c["name"]: LoadedAgent(uuid.uuid4(), uuid.uuid4(), 1, c["name"],
                                     AgentSpec.from_json(c)) for c in configs}
    return Runner(ctx, lambda name: agents[name])


def totals(ctx: StepContext) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(Decimal)
    for entry in ctx.ledger.usage:
        out[entry.metric] += entry.quantity
    return dict(out)


def notes(ctx: StepContext, action: str) -> list[dict[str, Any]]:
    return [n.details for n in ctx.ledger.audit if n.action == action]


def gpt(name: str, credential: Any, **more: Any) -> dict[str, Any]:
    return {"name": name, "role": "support assistant", "instructions": "Help the customer.",
            "model": {"provider": "openai", "model": "gpt-4o-mini", "max_output_tokens": 300},
            "credential_id": str(credential.id), **more}


def claude(name: str, credential: Any, **more: Any) -> dict[str, Any]:
    return {"name": name, "model": {"provider": "anthropic", "model": "claude-haiku-4-5"},
            "credential_id": str(credential.id), **more}


@pytest.fixture
def stripe(world, httpserver):
    """A Stripe-shaped customer search at /stripe/v1, and a connection named `crm`."""
    seen: list[Any] = []

    def customers(request):
        seen.append(request)
        found = [ADA] if request.args.get("email") == ADA["email"] else []
        return Response(json.dumps({"object": "list", "data": found, "has_more": False}),
                        content_type="application/json")

    httpserver.expect_request("/stripe/v1/customers", method="GET") \
        .respond_with_handler(customers)
    make_connection(world, "stripe", "crm", {"api_key": STRIPE_KEY},
                    base_url=httpserver.url_for("/stripe/v1"))
    return seen


CRM_TOOLS = [{"kind": "action", "ref": "crm/find_customer"}]


# --------------------------------------------------------------------------- the loop


def test_agent_loop_openai_calls_a_connector_action_and_answers(world, httpserver, stripe,
                                                                tenant):
    fake = FakeOpenAI(httpserver)
    credential = fake.credential(world)
    fake.tool_call(("crm_find_customer", {"email": "ada@example.com"}), tokens=(300, 25))
    fake.say(answer({"customer": "cus_ada", "reply": "Found you, Ada."}, confidence=0.8),
             tokens=(420, 40))
    ctx = step_context(tenant.id)
    runner = runner_for(ctx, gpt("helper", credential, tools=CRM_TOOLS))

    result = runner.invoke("helper", Task(prompt='{"email": "ada@example.com"}'))

    assert (result.status, result.confidence) == ("ok", 0.8)
    assert result.output == {"customer": "cus_ada", "reply": "Found you, Ada."}
    assert (result.provider, result.model) == ("openai", "gpt-4o-mini")
    first = fake.requests[0]
    (tool,) = first["tools"]
    assert tool["function"]["name"] == "crm_find_customer"
    assert tool["function"]["parameters"]["properties"]["email"]["type"] == "string"
    assert "support assistant" in first["messages"][0]["content"]
    assert '"needs_human"' in first["messages"][0]["content"]  # the contract is explained
    # the action reached the (fake) app with the connection's key, and its output went back
    (request,) = stripe
    assert request.args["email"] == "ada@example.com"
    assert request.headers["Authorization"] == f"Bearer {STRIPE_KEY}"
    (fed_back,) = fake.tool_results(1)
    assert json.loads(fed_back)["customer"]["id"] == "cus_ada"
    # usage: exactly what the server reported, priced; one invocation, one tool call
    usage = totals(ctx)
    assert usage["llm_input_tokens"] == 720 == fake.reported[0]
    assert usage["llm_output_tokens"] == 65 == fake.reported[1]
    price_in, price_out = (Decimal(p) for p in DEFAULT_PRICES[("openai", "gpt-4o-mini")])
    assert usage["llm_cost"] == (720 * price_in + 65 * price_out) / 1_000_000
    assert usage["agent_invocations"] == 1 and usage["agent_tool_calls"] == 1
    assert ctx.ledger.tokens == 785 and ctx.ledger.agent_calls == 1
    (called,) = notes(ctx, "agent.tool_called")
    assert called == {"agent": "helper", "tool": "crm_find_customer", "kind": "action",
                      "input_digest": digest({"email": "ada@example.com"})}
    assert "ada@example.com" not in json.dumps([n.details for n in ctx.ledger.audit])


def test_agent_loop_anthropic_side_effect_action_carries_the_step_key(world, httpserver,
                                                                      tenant):
    fake = FakeAnthropic(httpserver)
    credential = fake.credential(world)
    tools = [{"kind": "action", "ref": "hooks/request", "name": "notify",
              "allow_side_effects": True}]
    with Receiver() as receiver:
        # the token goes only to the connection's own origin: the receiver's
        make_connection(world, "http", "hooks", {"bearer_token": "hook-token"},
                        base_url=receiver.url("/"))
        fake.tool_call(("notify", {"method": "POST", "url": receiver.url("/effect"),
                                   "json": {"ticket": 7}}), tokens=(210, 33))
        fake.say(answer("notified"), tokens=(260, 12))
        ctx = step_context(tenant.id)
        result = runner_for(ctx, claude("notifier", credential, tools=tools)).invoke(
            "notifier", Task(prompt="Tell the team about ticket 7", label="agent"))
        assert receiver.effects_on("/effect") == [f"{ctx.idempotency_key}-agent-1"]
    assert result.output == "notified"
    assert fake.requests[0]["tools"][0]["name"] == "notify"
    (fed_back,) = fake.tool_results(1)
    assert json.loads(fed_back)["status"] == 200
    assert totals(ctx)["llm_input_tokens"] == 470 and totals(ctx)["llm_output_tokens"] == 45


def test_agent_text_only_model_answer_becomes_ok_with_no_confidence(world, httpserver,
                                                                   tenant):
    fake = FakeOpenAI(httpserver)
    fake.say("Your order ships tomorrow.")
    ctx = step_context(tenant.id)
    result = runner_for(ctx, gpt("plain", fake.credential(world))).invoke(
        "plain", Task(prompt="When does it ship?"))
    assert (result.status, result.confidence, result.output) == (
        "ok", None, "Your order ships tomorrow.")
    assert "response_format" not in fake.requests[0]


# --------------------------------------------------------------------------- mistakes


def test_agent_malformed_arguments_go_back_once_then_the_agent_can_fix_them(
        world, httpserver, stripe, tenant):
    fake = FakeOpenAI(httpserver)
    fake.tool_call(("crm_find_customer", '{"email": "ada@exa'))  # cut-off JSON
    fake.tool_call(("crm_find_customer", {"email": "ada@example.com"}))
    fake.say(answer("found"))
    ctx = step_context(tenant.id)
    result = runner_for(ctx, gpt("helper", fake.credential(world), tools=CRM_TOOLS)).invoke(
        "helper", Task(prompt="find ada"))
    assert result.output == "found"
    (error,) = fake.tool_results(1)
    assert "not a JSON object" in error and "Fix them" in error
    assert len(stripe) == 1  # only the fixed call reached the app
    assert totals(ctx)["agent_tool_calls"] == 1


def test_agent_malformed_arguments_twice_fail_clearly(world, httpserver, stripe, tenant):
    fake = FakeOpenAI(httpserver)
    fake.tool_call(("crm_find_customer", '{"email": '))
    fake.tool_call(("crm_find_customer", {"email": 42}))  # JSON, but not what the schema says
    ctx = step_context(tenant.id)
    runner = runner_for(ctx, gpt("helper", fake.credential(world), tools=CRM_TOOLS))
    with pytest.raises(StepFailed) as failed:
        runner.invoke("helper", Task(prompt="find ada"))
    assert failed.value.code == "agent_malformed_tool_call"
    assert "crm_find_customer" in failed.value.message and "42" in failed.value.message
    assert len(fake.requests) == 2 and not stripe
    assert totals(ctx)["llm_input_tokens"] == 100  # both calls were paid for


def test_agent_forbidden_tools_are_refused_and_audited(world, httpserver, stripe, tenant):
    fake = FakeOpenAI(httpserver)
    tools = [*CRM_TOOLS, {"kind": "action", "ref": "crm/create_refund"}]  # no side effects
    fake.tool_call(("crm_create_refund", {"payment_intent": "pi_1"}),
                   ("drop_database", {"really": True}))
    fake.say(answer("I could not refund.", status="needs_human"))
    ctx = step_context(tenant.id)
    result = runner_for(ctx, gpt("helper", fake.credential(world), tools=tools)).invoke(
        "helper", Task(prompt="refund pi_1"))
    assert result.status == "needs_human"
    assert [t["function"]["name"] for t in fake.requests[0]["tools"]] == ["crm_find_customer"]
    refund, unknown = fake.tool_results(1)
    assert refund.startswith("refused:") and "side effects" in refund
    assert unknown.startswith("refused:") and "not one of this agent's tools" in unknown
    refusals = notes(ctx, "agent.tool_refused")
    assert [(r["agent"], r["tool"]) for r in refusals] == [
        ("helper", "crm_create_refund"), ("helper", "drop_database")]
    assert not notes(ctx, "agent.tool_called") and not stripe
    assert "agent_tool_calls" not in totals(ctx)


def test_agent_rate_limited_then_answers_after_retry_after(world, httpserver, tenant):
    fake = FakeOpenAI(httpserver)
    fake.fail(429, retry_after="1")
    fake.say(answer("hello"), tokens=(70, 5))
    ctx = step_context(tenant.id)
    started = time.monotonic()
    result = runner_for(ctx, gpt("helper", fake.credential(world))).invoke(
        "helper", Task(prompt="hi"))
    assert result.output == "hello"
    assert time.monotonic() - started >= 1.0  # waited as the server asked
    assert len(fake.requests) == 2
    assert totals(ctx)["llm_input_tokens"] == 70  # the refused call cost nothing


def test_agent_rejected_key_is_a_clear_non_retried_failure(world, httpserver, tenant):
    fake = FakeAnthropic(httpserver)
    fake.fail(401)
    ctx = step_context(tenant.id)
    with pytest.raises(StepFailed) as failed:
        runner_for(ctx, claude("helper", fake.credential(world))).invoke(
            "helper", Task(prompt="hi"))
    assert failed.value.code == "llm_auth_failed"
    assert "credential" in failed.value.message


# --------------------------------------------------------------------------- limits


def test_agent_token_budget_exhausted_mid_loop_stops_with_usage_kept(world, httpserver,
                                                                     stripe, tenant):
    fake = FakeOpenAI(httpserver)
    fake.tool_call(("crm_find_customer", {"email": "ada@example.com"}), tokens=(120, 40))
    fake.say(answer("never asked for"))
    ctx = step_context(tenant.id)
    config = gpt("helper", fake.credential(world), tools=CRM_TOOLS,
                 limits={"max_tokens": 150})
    with pytest.raises(StepFailed) as failed:
        runner_for(ctx, config).invoke("helper", Task(prompt="find ada"))
    assert failed.value.code == "agent_budget_exhausted"
    assert failed.value.details["limit"] == "max_tokens"
    assert "160 tokens of its 150" in failed.value.message
    assert len(fake.requests) == 1  # stopped before calling the model again
    assert fake.requests[0]["max_completion_tokens"] == 150  # never asked for more than left
    usage = totals(ctx)
    assert (usage["llm_input_tokens"], usage["llm_output_tokens"]) == (120, 40)
    assert usage["agent_tool_calls"] == 1 and len(stripe) == 1


def test_agent_iteration_and_cost_budgets(world, httpserver, stripe, tenant):
    fake = FakeOpenAI(httpserver)
    for _ in range(3):
        fake.tool_call(("crm_find_customer", {"email": "ada@example.com"}), tokens=(10, 1))
    credential = fake.credential(world)
    ctx = step_context(tenant.id)
    with pytest.raises(StepFailed) as failed:
        runner_for(ctx, gpt("looper", credential, tools=CRM_TOOLS,
                            limits={"max_iterations": 2})).invoke("looper", Task(prompt="x"))
    assert failed.value.details["limit"] == "max_iterations"
    assert len(fake.requests) == 2
    # a cost budget: gpt-4o-mini at $0.15/M input; 1M tokens reported costs $0.15+
    fake.turns.clear()
    fake.tool_call(("crm_find_customer", {"email": "ada@example.com"}),
                   tokens=(1_000_000, 10))
    with pytest.raises(StepFailed) as failed:
        runner_for(ctx, gpt("spender", credential, tools=CRM_TOOLS,
                            limits={"max_cost": "0.10", "max_tokens": 5_000_000})).invoke(
            "spender", Task(prompt="x"))
    assert failed.value.details["limit"] == "max_cost"


# --------------------------------------------------------------------------- output contract


def test_agent_structured_output_is_asked_for_checked_and_corrected_once(world, httpserver,
                                                                        tenant):
    schema = {"type": "object", "required": ["priority"],
              "properties": {"priority": {"enum": ["low", "high"]}}}
    fake = FakeOpenAI(httpserver)
    fake.say(answer({"priority": "urgent"}))
    fake.say(answer({"priority": "high"}, confidence=0.7))
    ctx = step_context(tenant.id)
    result = runner_for(ctx, gpt("triager", fake.credential(world),
                                 output={"schema": schema})).invoke(
        "triager", Task(prompt="the site is down"))
    assert (result.output, result.confidence) == ({"priority": "high"}, 0.7)
    asked = fake.requests[0]["response_format"]
    assert asked["type"] == "json_schema"
    assert asked["json_schema"]["schema"]["properties"]["output"] == schema
    correction = fake.requests[1]["messages"][-1]
    assert correction["role"] == "user" and "urgent" in correction["content"]

    fake.say("not json at all")
    fake.say(answer({"priority": "medium"}))
    with pytest.raises(StepFailed) as failed:
        runner_for(ctx, gpt("triager", fake.credential(world),
                            output={"schema": schema})).invoke("triager", Task(prompt="x"))
    assert failed.value.code == "agent_invalid_output"


# --------------------------------------------------------------------------- delegation


def test_agent_delegates_to_another_agent_as_a_tool(world, httpserver, tenant):
    fake = FakeOpenAI(httpserver)
    fake.tool_call(("ask_researcher", {"task": "What is our refund window?"}))
    fake.say(answer("30 days, says research."))
    ctx = step_context(tenant.id)
    researcher = scripted("researcher", {"answer": answer("30 days"),
                                         "input_tokens": 9, "output_tokens": 3})
    lead = gpt("lead", fake.credential(world), tools=[{"kind": "agent", "ref": "researcher"}])
    runner = runner_for(ctx, lead, researcher)
    result = runner.invoke("lead", Task(prompt="refund window?"))
    assert result.output == "30 days, says research."
    (fed_back,) = fake.tool_results(1)
    delegated = json.loads(fed_back)
    assert (delegated["agent"], delegated["status"], delegated["output"]) == (
        "researcher", "ok", "30 days")
    assert runner.delegations == [{"by": "lead", "agent": "researcher",
                                   "task": "What is our refund window?", "status": "ok",
                                   "output": "30 days"}]
    assert totals(ctx)["agent_invocations"] == 2 and ctx.ledger.agent_calls == 2
    by_agent = {e.agent_id for e in ctx.ledger.usage if e.metric == "agent_invocations"}
    assert len(by_agent) == 2  # each invocation metered under its own agent
    assert totals(ctx)["llm_input_tokens"] == 100 + 9  # the scripted agent's tokens count


def test_agent_delegation_depth_is_capped(tenant):
    # an agent that always delegates further: the fourth level is told to stop
    looper = scripted(
        "looper",
        {"when": "deeper than", "answer": answer("bottom")},
        {"when": '"status": "ok"', "answer": answer("up")},
        {"when": "go", "tool_calls": [{"name": "ask_looper", "arguments": {"task": "go"}}]},
        tools=[{"kind": "agent", "ref": "looper"}])
    ctx = step_context(tenant.id)
    runner = runner_for(ctx, looper)
    result = runner.invoke("looper", Task(prompt="go"))
    assert result.output == "up"
    assert ctx.ledger.agent_calls == 4  # the step's agent and three levels below it
    assert len(runner.delegations) == 3


# --------------------------------------------------------------------------- offline providers


def test_agent_scripted_provider_keyed_turns_and_exhaustion(tenant):
    agent = scripted("bot", {"when": "refund", "answer": answer("refund policy")},
                     {"text": "first"}, {"text": "second", "input_tokens": 4})
    ctx = step_context(tenant.id)
    runner = runner_for(ctx, agent)
    assert runner.invoke("bot", Task(prompt="hello")).output == "first"
    assert runner.invoke("bot", Task(prompt="I want a REFUND")).output == "refund policy"
    assert runner.invoke("bot", Task(prompt="and?")).output == "second"
    with pytest.raises(StepFailed) as failed:
        runner.invoke("bot", Task(prompt="more"))
    assert failed.value.code == "agent_script_exhausted"
    assert totals(ctx)["llm_input_tokens"] == 4
    assert "llm_cost" not in totals(ctx)  # a script costs nothing


def test_agent_scripted_provider_can_simulate_failures(tenant):
    ctx = step_context(tenant.id)
    runner = runner_for(ctx, scripted("flaky", {"error": "rate_limited"}))
    with pytest.raises(StepFailed) as failed:
        runner.invoke("flaky", Task(prompt="x"))
    assert failed.value.code == "rate_limited"  # retried by a step's default policy


def test_agent_local_provider_classifies_by_sentence_similarity():
    from overture.orchestration.agents import embeddings

    routes = {"billing": "invoices, payments, refunds and charges",
              "technical": "errors, crashes, bugs and login problems",
              "sales": "pricing, quotes and buying more seats"}
    provider = LocalProvider(embeddings.embed, classify=Classify(routes))

    def pick(text: str) -> dict[str, Any]:
        result = provider.chat(ChatRequest(model="local", messages=(
            Message(role="user", content=text),)))
        assert result.provider == "local" and result.input_tokens == 0
        return json.loads(result.text)

    clear = pick("I was charged twice on my last invoice, please refund me")
    assert clear["output"] == {"route": "billing"} and clear["confidence"] > 0.6
    assert pick("The app crashes with an error every time I log in")["output"] == {
        "route": "technical"}
    vague = pick("hello")
    assert vague["confidence"] < clear["confidence"]


def test_agent_local_provider_drafts_from_knowledge(world, tenant):
    collection = knowledge.create_collection("policies")
    knowledge.add_document(collection, "Refunds", "Refunds are possible within 30 days of "
                           "purchase. Send the order number to billing.")
    knowledge.add_document(collection, "Passwords", "Reset your password from the login "
                           "page with the 'forgot password' link.")
    db.session.commit()
    drafter = {"name": "drafter", "model": {"provider": "local", "model": "template"},
               "instructions": "Hello {{ input.customer }}, {{ item.passages[0].text }}",
               "tools": [{"kind": "knowledge", "ref": "policies"}]}
    ctx = step_context(tenant.id)
    ticket = {"customer": "Ada", "question": "Can I get a refund for my purchase?"}
    result = runner_for(ctx, drafter).invoke(
        "drafter", Task(prompt=json.dumps(ticket), data=ticket))
    assert result.provider == "local"  # shown as what it is
    assert result.output.startswith("Hello Ada, Refunds are possible within 30 days")
    assert result.confidence is not None
    usage = totals(ctx)
    assert usage["agent_tool_calls"] == 1 and "llm_input_tokens" not in usage
    (called,) = notes(ctx, "agent.tool_called")
    assert called["tool"] == "search_policies" and called["kind"] == "knowledge"
