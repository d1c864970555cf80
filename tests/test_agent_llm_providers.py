"""Model providers (`pytest -k agent`): the real `openai` and `anthropic` SDKs against
local fake servers over HTTP, metered into the tenant's usage events."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal

import pytest
from werkzeug import Response

from overture.billing.usage import usage_totals
from overture.orchestration.llm import errors
from overture.orchestration.llm.calls import ModelSettings, chat
from overture.orchestration.llm.metering import UsageContext
from overture.orchestration.llm.prices import (
    DEFAULT_PRICES,
    ModelPrice,
    price_for,
    seed_default_prices,
    set_price,
)
from overture.orchestration.llm.types import Message, ResponseFormat, Tool
from overture.platform.db import db, scoped_to
from tests.vault_support import make_credential


@pytest.fixture(autouse=True)
def _loopback(monkeypatch):
    """The fake model servers listen on loopback, which the outbound guard refuses."""
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


WEATHER = Tool(name="get_weather", description="Current weather for a city",
               parameters={"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]})
ASK = (Message(role="system", content="You are terse."),
       Message(role="user", content="Weather in Oslo?"))


def openai_completion(content=None, tool_calls=None, prompt=11, completion=7,
                      finish="stop"):
    message = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
            for cid, name, args in tool_calls]
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1_760_000_000,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion}}


def anthropic_message(blocks, stop="end_turn", inp=25, out=9):
    return {"id": "msg_01", "type": "message", "role": "assistant",
            "model": "claude-haiku-4-5-20251001", "content": blocks,
            "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": inp, "output_tokens": out}}


@pytest.fixture
def openai_cred(world, httpserver):
    key = f"sk-test-{uuid.uuid4().hex}"
    cred = make_credential(world, "a", fields={"api_key": key,
                                               "base_url": httpserver.url_for("/v1")})
    return cred, key


@pytest.fixture
def anthropic_cred(world, httpserver):
    key = f"sk-ant-{uuid.uuid4().hex}"
    cred = make_credential(world, "a", fields={"api_key": key,
                                               "base_url": httpserver.url_for("").rstrip("/")})
    return cred, key


GPT = ModelSettings("openai", "gpt-4o-mini", temperature=0.2, max_output_tokens=300,
                    timeout=10)
CLAUDE = ModelSettings("anthropic", "claude-haiku-4-5", max_output_tokens=300, timeout=10)


def sent_json(httpserver, index=-1):
    request, _ = httpserver.log[index]
    return json.loads(request.get_data())


# ------------------------------------------------------------------ OpenAI-compatible


def test_agent_openai_plain_answer(world, httpserver, openai_cred):
    cred, key = openai_cred
    httpserver.expect_request("/v1/chat/completions", method="POST",
                              headers={"Authorization": f"Bearer {key}"}) \
        .respond_with_json(openai_completion("Cold, 3 °C."))
    with scoped_to(world.tenants["a"].id):
        out = chat(GPT, cred.id, ASK)
        db.session.commit()
    assert out.result.text == "Cold, 3 °C."
    assert out.result.tool_calls == ()
    assert out.result.stop_reason == "end"
    assert (out.result.input_tokens, out.result.output_tokens) == (11, 7)
    body = sent_json(httpserver)
    assert body["model"] == "gpt-4o-mini"
    assert body["temperature"] == 0.2
    assert body["max_completion_tokens"] == 300
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}


def test_agent_openai_tool_call_parsed(world, httpserver, openai_cred):
    cred, _ = openai_cred
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_json(
        openai_completion(tool_calls=[("call_1", "get_weather", '{"city": "Oslo"}')],
                          finish="tool_calls"))
    with scoped_to(world.tenants["a"].id):
        out = chat(GPT, cred.id, ASK, tools=[WEATHER])
        db.session.commit()
    (call,) = out.result.tool_calls
    assert (call.id, call.name, call.arguments) == ("call_1", "get_weather", {"city": "Oslo"})
    assert not call.malformed
    assert out.result.stop_reason == "tool_calls"
    body = sent_json(httpserver)
    assert body["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Current weather for a city",
        "parameters": WEATHER.parameters}}]


def test_agent_openai_tool_result_round_trip(world, httpserver, openai_cred):
    """The assistant's tool call and the tool's result go back in OpenAI's shape."""
    cred, _ = openai_cred
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        openai_completion("3 °C in Oslo."))
    first = openai_completion(tool_calls=[("call_1", "get_weather", '{"city":"Oslo"}')])
    from overture.orchestration.llm.types import ToolCall
    call = ToolCall.from_raw("call_1", "get_weather",
                             first["choices"][0]["message"]["tool_calls"][0]["function"]
                             ["arguments"])
    convo = (*ASK, Message(role="assistant", tool_calls=(call,)),
             Message(role="tool", tool_call_id="call_1", content='{"temp": 3}'))
    with scoped_to(world.tenants["a"].id):
        out = chat(GPT, cred.id, convo, tools=[WEATHER],
                   response_format=ResponseFormat(schema={"type": "object"}, name="answer"))
        db.session.commit()
    assert out.result.text == "3 °C in Oslo."
    body = sent_json(httpserver)
    assert body["messages"][2]["tool_calls"][0]["function"] == {
        "name": "get_weather", "arguments": '{"city": "Oslo"}'}
    assert body["messages"][3] == {"role": "tool", "tool_call_id": "call_1",
                                   "content": '{"temp": 3}'}
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "answer"


def test_agent_openai_malformed_tool_arguments_surface_raw(world, httpserver, openai_cred):
    cred, _ = openai_cred
    broken = '{"city": "Oslo"'  # truncated JSON, as models do
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        openai_completion(tool_calls=[("call_9", "get_weather", broken),
                                      ("call_10", "get_weather", '["not", "an object"]')],
                          finish="tool_calls"))
    with scoped_to(world.tenants["a"].id):
        out = chat(GPT, cred.id, ASK, tools=[WEATHER])
        db.session.commit()
    first, second = out.result.tool_calls
    assert first.malformed and first.arguments is None and first.raw_arguments == broken
    assert second.malformed and second.raw_arguments == '["not", "an object"]'


def test_agent_openai_429_with_retry_after_then_success(world, httpserver, openai_cred):
    cred, _ = openai_cred
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_response(
        Response(json.dumps({"error": {"message": "slow down", "type": "rate_limit"}}),
                 status=429, headers={"Retry-After": "1"}, content_type="application/json"))
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(
        openai_completion("finally"))
    started = time.monotonic()
    with scoped_to(world.tenants["a"].id):
        out = chat(GPT, cred.id, ASK)
        db.session.commit()
    assert out.result.text == "finally"
    assert time.monotonic() - started >= 1.0  # it waited as told, not the 0.5 s default
    assert len(httpserver.log) == 2
    httpserver.check_assertions()


def test_agent_openai_rate_limit_exhausted_is_clear(world, httpserver, openai_cred):
    cred, _ = openai_cred
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        {"error": {"message": "slow down"}}, status=429)
    quick = ModelSettings("openai", "gpt-4o-mini", timeout=5, max_retries=1)
    with scoped_to(world.tenants["a"].id), pytest.raises(errors.ProviderRateLimited):
        chat(quick, cred.id, ASK)
    assert len(httpserver.log) == 2  # one try, one retry


def test_agent_openai_401_is_a_clear_error(world, httpserver, openai_cred):
    cred, key = openai_cred
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                   "code": "invalid_api_key"}}, status=401)
    with scoped_to(world.tenants["a"].id), pytest.raises(errors.ProviderAuthFailed) as info:
        chat(GPT, cred.id, ASK)
    assert "rejected" in info.value.detail and "401" in info.value.detail
    assert key not in info.value.detail
    assert len(httpserver.log) == 1  # an auth failure is not retried
    with scoped_to(world.tenants["a"].id):
        assert usage_totals() == {}


def test_agent_azure_openai_uses_deployment_and_api_version(world, httpserver):
    key = f"azure-{uuid.uuid4().hex}"
    cred = make_credential(world, "a", fields={
        "api_key": key, "base_url": httpserver.url_for("").rstrip("/"),
        "api_version": "2024-10-21"})
    httpserver.expect_request("/openai/deployments/my-gpt/chat/completions",
                              query_string={"api-version": "2024-10-21"},
                              headers={"api-key": key}).respond_with_json(
        openai_completion("hi from azure"))
    with scoped_to(world.tenants["a"].id):
        out = chat(ModelSettings("azure_openai", "my-gpt", timeout=5), cred.id, ASK)
        db.session.commit()
    assert out.result.text == "hi from azure"


# ------------------------------------------------------------------ Anthropic


def test_agent_anthropic_plain_answer(world, httpserver, anthropic_cred):
    cred, key = anthropic_cred
    httpserver.expect_request("/v1/messages", method="POST").respond_with_json(
        anthropic_message([{"type": "text", "text": "Cold."}]))
    with scoped_to(world.tenants["a"].id):
        out = chat(CLAUDE, cred.id, ASK)
        db.session.commit()
    assert out.result.text == "Cold."
    assert out.result.stop_reason == "end"
    assert (out.result.input_tokens, out.result.output_tokens) == (25, 9)
    request, _ = httpserver.log[-1]
    # the SDK sends the vault's key (this SDK version as a bearer token)
    assert key in (request.headers.get("x-api-key"), request.headers.get("Authorization",
                                                                          "")[7:])
    assert request.headers.get("anthropic-version")
    body = sent_json(httpserver)
    assert body["system"] == "You are terse."
    assert body["messages"] == [{"role": "user", "content": "Weather in Oslo?"}]
    assert body["max_tokens"] == 300


def test_agent_anthropic_tool_use_parsed_and_results_sent_back(world, httpserver,
                                                               anthropic_cred):
    cred, _ = anthropic_cred
    httpserver.expect_ordered_request("/v1/messages").respond_with_json(anthropic_message(
        [{"type": "text", "text": "Checking."},
         {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
          "input": {"city": "Oslo"}}], stop="tool_use"))
    httpserver.expect_ordered_request("/v1/messages").respond_with_json(
        anthropic_message([{"type": "text", "text": "3 °C."}]))
    with scoped_to(world.tenants["a"].id):
        first = chat(CLAUDE, cred.id, ASK, tools=[WEATHER]).result
        (call,) = first.tool_calls
        assert (call.id, call.name, call.arguments) == ("toolu_1", "get_weather",
                                                        {"city": "Oslo"})
        assert first.stop_reason == "tool_calls" and first.text == "Checking."
        convo = (*ASK, first.as_message(),
                 Message(role="tool", tool_call_id="toolu_1", content='{"temp": 3}'))
        second = chat(CLAUDE, cred.id, convo, tools=[WEATHER]).result
        db.session.commit()
    assert second.text == "3 °C."
    assert sent_json(httpserver, 0)["tools"] == [{
        "name": "get_weather", "description": "Current weather for a city",
        "input_schema": WEATHER.parameters}]
    messages = sent_json(httpserver, 1)["messages"]
    assert messages[1] == {"role": "assistant", "content": [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}]}
    assert messages[2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"temp": 3}'}]}


def test_agent_anthropic_malformed_tool_input_surfaces_raw(world, httpserver, anthropic_cred):
    cred, _ = anthropic_cred
    httpserver.expect_request("/v1/messages").respond_with_json(anthropic_message(
        [{"type": "tool_use", "id": "toolu_2", "name": "get_weather",
          "input": '{"city": "Os'}], stop="tool_use"))
    with scoped_to(world.tenants["a"].id):
        out = chat(CLAUDE, cred.id, ASK, tools=[WEATHER])
        db.session.commit()
    (call,) = out.result.tool_calls
    assert call.malformed and call.raw_arguments == '{"city": "Os'


def test_agent_anthropic_429_with_retry_after_then_success(world, httpserver, anthropic_cred):
    cred, _ = anthropic_cred
    httpserver.expect_ordered_request("/v1/messages").respond_with_response(Response(
        json.dumps({"type": "error", "error": {"type": "rate_limit_error",
                                                "message": "slow down"}}),
        status=429, headers={"Retry-After": "1"}, content_type="application/json"))
    httpserver.expect_ordered_request("/v1/messages").respond_with_json(
        anthropic_message([{"type": "text", "text": "ok"}]))
    started = time.monotonic()
    with scoped_to(world.tenants["a"].id):
        out = chat(CLAUDE, cred.id, ASK)
        db.session.commit()
    assert out.result.text == "ok"
    assert time.monotonic() - started >= 1.0
    assert len(httpserver.log) == 2


def test_agent_anthropic_401_is_a_clear_error(world, httpserver, anthropic_cred):
    cred, key = anthropic_cred
    httpserver.expect_request("/v1/messages").respond_with_json(
        {"type": "error", "error": {"type": "authentication_error",
                                    "message": "invalid x-api-key"}}, status=401)
    with scoped_to(world.tenants["a"].id), pytest.raises(errors.ProviderAuthFailed) as info:
        chat(CLAUDE, cred.id, ASK)
    assert info.value.code == "llm-auth-failed" and key not in info.value.detail
    assert len(httpserver.log) == 1


# ------------------------------------------------------------------ usage and prices


def test_agent_llm_usage_sums_to_reported_tokens_and_cost(world, httpserver):
    a, b = world.tenants["a"], world.tenants["b"]
    base = httpserver.url_for("").rstrip("/")
    gpt_cred = make_credential(world, "a", fields={"api_key": "k1", "base_url": base + "/v1"})
    claude_cred = make_credential(world, "a", fields={"api_key": "k2", "base_url": base})
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(
        openai_completion("one", prompt=1200, completion=340))
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(
        openai_completion("two", prompt=800, completion=60))
    httpserver.expect_ordered_request("/v1/messages").respond_with_json(
        anthropic_message([{"type": "text", "text": "three"}], inp=5000, out=1500))
    # the platform admin edits Claude's price; the default stays for GPT
    set_price("anthropic", "claude-haiku-4-5", "2.00", "8.00")
    db.session.commit()

    run_id, workflow_id, agent_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ctx = UsageContext(workflow_id=workflow_id, run_id=run_id, step_id="triage",
                       agent_id=agent_id)
    with scoped_to(a.id):
        costs = [chat(GPT, gpt_cred.id, ASK, usage=ctx).cost,
                 chat(GPT, gpt_cred.id, ASK, usage=ctx).cost,
                 chat(CLAUDE, claude_cred.id, ASK, usage=ctx).cost]
        db.session.commit()
        totals = usage_totals(run_id)
    gpt_in, gpt_out = (Decimal(p) for p in DEFAULT_PRICES[("openai", "gpt-4o-mini")])
    expected_cost = ((Decimal(2000) * gpt_in + Decimal(400) * gpt_out)
                     + (Decimal(5000) * Decimal("2.00") + Decimal(1500) * Decimal("8.00"))
                     ) / Decimal(1_000_000)
    assert totals["llm_input_tokens"] == 1200 + 800 + 5000
    assert totals["llm_output_tokens"] == 340 + 60 + 1500
    assert totals["llm_cost"] == expected_cost.quantize(Decimal("0.000001"))
    assert costs[2] == Decimal("0.022")  # 5000 * 2 / 1M + 1500 * 8 / 1M
    with scoped_to(b.id):
        assert usage_totals(run_id) == {}  # another tenant sees none of it
    from sqlalchemy import select

    from overture.billing.usage import UsageEvent
    with scoped_to(a.id):
        events = db.session.execute(select(UsageEvent)).scalars().all()
    assert len(events) == 9
    assert {(e.workflow_id, e.run_id, e.step_id, e.agent_id) for e in events} == {
        (workflow_id, run_id, "triage", agent_id)}


def test_agent_llm_price_table_seeds_defaults_and_keeps_edits(app_ctx):
    set_price("openai", "gpt-4o", "1.00", "2.00")
    db.session.commit()
    added = seed_default_prices()
    db.session.commit()
    assert added == len(DEFAULT_PRICES) - 1
    assert price_for("openai", "gpt-4o").input_per_mtok == Decimal("1.00")  # edit kept
    assert price_for("azure_openai", "gpt-4o").output_per_mtok == Decimal("2.00")
    assert price_for("openai_compatible", "llama3.1:8b") is None
    assert db.session.query(ModelPrice).count() == len(DEFAULT_PRICES)
    with pytest.raises(errors.OvertureError):
        set_price("openai", "gpt-4o", "-1", "2")


def test_agent_llm_unpriced_self_hosted_model_meters_tokens_only(world, httpserver):
    cred = make_credential(world, "a", fields={"api_key": "ollama",
                                               "base_url": httpserver.url_for("/v1")})
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        openai_completion("local", prompt=40, completion=4))
    run_id = uuid.uuid4()
    with scoped_to(world.tenants["a"].id):
        out = chat(ModelSettings("openai_compatible", "llama3.1:8b", timeout=5), cred.id, ASK,
                   usage=UsageContext(run_id=run_id))
        db.session.commit()
        totals = usage_totals(run_id)
    assert out.cost is None
    assert totals == {"llm_input_tokens": 40, "llm_output_tokens": 4}


def test_agent_openai_5xx_is_retried(world, httpserver, openai_cred):
    cred, _ = openai_cred
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(
        {"error": {"message": "overloaded"}}, status=503)
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(
        openai_completion("after a hiccup"))
    with scoped_to(world.tenants["a"].id):
        out = chat(GPT, cred.id, ASK)
        db.session.commit()
    assert out.result.text == "after a hiccup"
    assert len(httpserver.log) == 2


def test_agent_anthropic_timeout_is_clear(world, httpserver, anthropic_cred):
    cred, _ = anthropic_cred

    def slow(request):
        time.sleep(1.5)
        return Response(json.dumps(anthropic_message([{"type": "text", "text": "late"}])),
                        content_type="application/json")

    httpserver.expect_request("/v1/messages").respond_with_handler(slow)
    impatient = ModelSettings("anthropic", "claude-haiku-4-5", timeout=0.3, max_retries=0)
    with scoped_to(world.tenants["a"].id), pytest.raises(errors.ProviderUnavailable) as info:
        chat(impatient, cred.id, ASK)
    assert "timed out" in info.value.detail
