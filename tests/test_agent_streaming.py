"""Streaming an agent's answer as the model writes it (`-k agent`): the real `openai` and
`anthropic` SDKs read the fake servers' event streams piece by piece and put the same
result together as without streaming; `contract.OutputText` shows the `output` of a
JSON answer as it arrives; a chat's watcher gets the answer's text piece by piece, and
is told to start over when the model goes on to call a tool."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from overture.orchestration.agents import chat
from overture.orchestration.agents.contract import OutputText
from overture.orchestration.agents.models import ConversationMessage
from overture.orchestration.llm.calls import ModelSettings, connection_from
from overture.orchestration.llm.registry import make_provider
from overture.orchestration.llm.types import ChatRequest, Message, Tool
from overture.platform.db import db, scoped_to
from tests.agent_fakes import (
    FakeAnthropic,
    FakeOpenAI,
    Turn,
    answer,
    create_agent,
    scripted,
    streamed_pieces,
)


@pytest.fixture(autouse=True)
def _loopback(monkeypatch):
    """The fake model servers listen on loopback, which the outbound guard refuses."""
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


ASK = (Message(role="system", content="You are terse."),
       Message(role="user", content="Weather in Oslo?"))
WEATHER = Tool(name="get_weather", description="Current weather for a city",
               parameters={"type": "object", "properties": {"city": {"type": "string"}}})
SAID = "It is 4 °C in Oslo,\nwith \"light\" rain. 🌧"


def fed(text: str, size: int) -> str:
    reader = OutputText()
    return "".join(reader.feed(text[i:i + size]) for i in range(0, len(text), size))


# --------------------------------------------------------------------------- OutputText


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
@pytest.mark.parametrize("sent", [
    json.dumps({"status": "ok", "confidence": 0.8, "output": SAID}),
    json.dumps({"output": SAID, "status": "ok", "confidence": None}, ensure_ascii=False),
    "```json\n" + json.dumps({"status": "ok", "notes": {"output": "not this"},
                              "output": SAID}) + "\n```",
])
def test_output_text_shows_the_output_of_a_json_answer_as_it_arrives(sent, size):
    assert fed(sent, size) == SAID


def test_output_text_shows_plain_text_as_is_and_nothing_of_structured_output():
    assert fed("  Just a sentence, not JSON.", 4) == "Just a sentence, not JSON."
    assert fed(json.dumps({"status": "ok", "output": {"order": 1042}}), 3) == ""
    reader = OutputText()
    # An escape split across two pieces waits for its second half.
    assert reader.feed('{"status": "ok", "output": "a\\') == "a"
    assert reader.feed('u00e9b') == "éb"
    assert reader.feed('"}') == ""


# --------------------------------------------------------------------------- providers


def provider_for(world: Any, fake: Any, name: str, model: str) -> Any:
    credential = fake.credential(world)
    with scoped_to(world.tenants["a"].id):
        connection = connection_from(ModelSettings(name, model), credential.id, "test")
        db.session.rollback()
    return make_provider(connection)


@pytest.mark.parametrize("fake_class,name,model", [
    (FakeOpenAI, "openai", "gpt-4o-mini"), (FakeAnthropic, "anthropic", "claude-haiku-4-5")])
def test_a_provider_streams_each_piece_and_gives_the_same_result(world, httpserver,
                                                                 fake_class, name, model):
    fake = fake_class(httpserver)
    provider = provider_for(world, fake, name, model)
    fake.say(SAID, tokens=(31, 12))
    fake.tool_call(("get_weather", {"city": "Oslo"}), tokens=(40, 9))

    pieces: list[str] = []
    result = provider.stream(ChatRequest(model=model, messages=ASK), pieces.append)
    assert fake.requests[0]["stream"] is True
    assert pieces == streamed_pieces(SAID) and len(pieces) > 5  # one by one, in order
    assert (result.text, result.stop_reason) == (SAID, "end")
    assert (result.input_tokens, result.output_tokens) == (31, 12)

    pieces.clear()
    called = provider.stream(ChatRequest(model=model, messages=ASK, tools=(WEATHER,)),
                             pieces.append)
    assert pieces == [] and called.stop_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in called.tool_calls] == [("get_weather",
                                                                  {"city": "Oslo"})]
    assert (called.input_tokens, called.output_tokens) == (40, 9)


# --------------------------------------------------------------------------- a chat


class Watched:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def text(self, piece: str) -> None:
        self.seen.append(piece)

    def restart(self) -> None:
        self.seen.append("<restart>")


def stored(tenant_id: Any) -> list[tuple[str, str]]:
    with scoped_to(tenant_id):
        rows = db.session.execute(select(ConversationMessage.role, ConversationMessage.content)
                                  .order_by(ConversationMessage.id)).all()
        db.session.rollback()
    return [tuple(r) for r in rows]


def talk(world: Any, agent_id: Any, content: str, watcher: Watched) -> chat.Reply:
    with scoped_to(world.tenants["a"].id, user_id=world.users["a_member"].id):
        conversation = chat.start(agent_id, end_user_id=world.users["a_member"].id)
        reply = chat.send(conversation, content, watcher)
        db.session.commit()
    return reply


def test_a_chat_shows_the_answer_while_the_model_writes_it(world, httpserver):
    fake = FakeOpenAI(httpserver)
    agent = create_agent(world, {
        "name": "helper", "notes": True, "credential_id": str(fake.credential(world).id),
        "model": {"provider": "openai", "model": "gpt-4o-mini"}})
    # The model says something, then calls a tool: that text was not the answer.
    thinking = fake.tools_body([("remember", {"text": "asks about Oslo"})], (20, 5))
    thinking["choices"][0]["message"]["content"] = "Let me note that first."
    fake.turns.append(Turn(body=thinking, tokens=(20, 5)))
    fake.say(answer(SAID), tokens=(30, 12))

    watcher = Watched()
    reply = talk(world, agent, "Weather in Oslo?", watcher)
    restart = watcher.seen.index("<restart>")
    assert "".join(watcher.seen[:restart]) == "Let me note that first."
    assert "".join(watcher.seen[restart + 1:]) == SAID == reply.assistant.content
    assert len(watcher.seen) - restart > 5  # the answer came in pieces
    assert stored(world.tenants["a"].id) == [("user", "Weather in Oslo?"), ("assistant", SAID)]


def test_a_chat_with_an_offline_agent_streams_too(world):
    agent = create_agent(world, scripted(
        "desk", {"when": "refund", "answer": answer("Which order is it, please?")}))
    watcher = Watched()
    reply = talk(world, agent, "I want a refund", watcher)
    assert watcher.seen == ["Which", " order", " is", " it,", " please?"]
    assert reply.assistant.content == "Which order is it, please?"


def test_a_structured_answer_is_not_streamed(world):
    agent = create_agent(world, scripted(
        "form", {"answer": answer({"order": 1042})},
        output={"schema": {"type": "object", "properties": {"order": {"type": "integer"}}}}))
    watcher = Watched()
    reply = talk(world, agent, f"order please {uuid.uuid4().hex}", watcher)
    assert watcher.seen == []
    assert json.loads(reply.assistant.content) == {"order": 1042}
