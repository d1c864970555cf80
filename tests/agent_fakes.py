"""Local fake model servers for the agent tests, over real HTTP (pytest-httpserver): an
OpenAI-compatible chat completions endpoint and Anthropic Messages. Each test scripts
its turns; the fake answers them in order, records what it was sent, and adds up the
tokens it reported, so a test can check the usage events against them.

    fake = FakeOpenAI(httpserver)
    fake.tool_call("crm_find_customer", {"email": "ada@example.com"}, tokens=(120, 30))
    fake.say({"status": "ok", "confidence": 0.9, "output": "done"}, tokens=(200, 40))
    credential = fake.credential(world)
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from werkzeug import Request, Response

from overture.connectors import connections
from overture.orchestration.agents import service
from overture.platform.db import db, scoped_to
from overture.tenants.access import Principal, access_to
from tests.support import World
from tests.vault_support import make_credential

Call = tuple[str, dict[str, Any] | str]  # (tool name, arguments or raw argument text)


@dataclass
class Turn:
    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    tokens: tuple[int, int] = (0, 0)
    delay: float = 0.0  # seconds before answering (outside the lock: answers overlap)


class FakeModelServer:
    path = ""

    def __init__(self, httpserver: Any) -> None:
        self.server = httpserver
        self.turns: list[Turn] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.reported = [0, 0]  # input, output tokens of the answers given
        self._lock = threading.Lock()
        httpserver.expect_request(self.path, method="POST").respond_with_handler(self._answer)

    # ------------------------------------------------------------------ scripting

    def say(self, answer: str | dict[str, Any], tokens: tuple[int, int] = (50, 10),
            delay: float = 0.0) -> None:
        """A final answer; a dict is sent as its JSON text."""
        text = answer if isinstance(answer, str) else json.dumps(answer)
        self.turns.append(Turn(body=self.text_body(text, tokens), tokens=tokens, delay=delay))

    def tool_call(self, *calls: Call, tokens: tuple[int, int] = (50, 10)) -> None:
        self.turns.append(Turn(body=self.tools_body(list(calls), tokens), tokens=tokens))

    def fail(self, status: int, retry_after: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after else {}
        self.turns.append(Turn(status=status, body=self.error_body(status), headers=headers))

    def credential(self, world: World, tenant: str = "a") -> Any:
        return make_credential(world, tenant, fields={"api_key": f"sk-{uuid.uuid4().hex}",
                                                      "base_url": self.base_url()})

    # ------------------------------------------------------------------ serving

    def _answer(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(json.loads(request.get_data()))
            streaming = bool(self.requests[-1].get("stream"))
            self.headers.append(dict(request.headers))
            if not self.turns:
                return Response(json.dumps(self.error_body(500, "the fake has no turn left")),
                                status=500, content_type="application/json")
            turn = self.turns.pop(0)
            if turn.status == 200:
                self.reported[0] += turn.tokens[0]
                self.reported[1] += turn.tokens[1]
        time.sleep(turn.delay)
        if streaming and turn.status == 200:
            events = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" if name
                             else f"data: {json.dumps(data)}\n\n"
                             for name, data in self.stream_events(turn.body))
            return Response(events + self.stream_end, content_type="text/event-stream")
        return Response(json.dumps(turn.body), status=turn.status, headers=turn.headers,
                        content_type="application/json")

    stream_end = ""

    def stream_events(self, body: dict[str, Any]) -> list[tuple[str | None, Any]]:
        """The answer `body` as the provider streams it: (event name, data) pairs, its
        text in word-sized pieces (`streamed_pieces`)."""
        raise NotImplementedError

    def tool_results(self, index: int = -1) -> list[str]:
        """The tool results sent back in request `index` (as text)."""
        raise NotImplementedError

    def base_url(self) -> str:
        raise NotImplementedError

    def text_body(self, text: str, tokens: tuple[int, int]) -> dict[str, Any]:
        raise NotImplementedError

    def tools_body(self, calls: list[Call], tokens: tuple[int, int]) -> dict[str, Any]:
        raise NotImplementedError

    def error_body(self, status: int, message: str = "failing on purpose") -> dict[str, Any]:
        raise NotImplementedError


class FakeOpenAI(FakeModelServer):
    path = "/v1/chat/completions"

    def base_url(self) -> str:
        return self.server.url_for("/v1")

    def _completion(self, message: dict[str, Any], finish: str,
                    tokens: tuple[int, int]) -> dict[str, Any]:
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:8]}", "object": "chat.completion",
                "created": 1_760_000_000, "model": "gpt-4o-mini-2024-07-18",
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": finish}],
                "usage": {"prompt_tokens": tokens[0], "completion_tokens": tokens[1],
                          "total_tokens": sum(tokens)}}

    def text_body(self, text: str, tokens: tuple[int, int]) -> dict[str, Any]:
        return self._completion({"role": "assistant", "content": text, "refusal": None},
                                "stop", tokens)

    def tools_body(self, calls: list[Call], tokens: tuple[int, int]) -> dict[str, Any]:
        message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
            {"id": f"call_{uuid.uuid4().hex[:8]}", "type": "function",
             "function": {"name": name, "arguments": args if isinstance(args, str)
                          else json.dumps(args)}} for name, args in calls]}
        return self._completion(message, "tool_calls", tokens)

    def error_body(self, status: int, message: str = "failing on purpose") -> dict[str, Any]:
        return {"error": {"message": message, "type": "rate_limit" if status == 429
                          else "server_error"}}

    def tool_results(self, index: int = -1) -> list[str]:
        return [m["content"] for m in self.requests[index]["messages"] if m["role"] == "tool"]

    stream_end = "data: [DONE]\n\n"

    def stream_events(self, body: dict[str, Any]) -> list[tuple[str | None, Any]]:
        head = {"id": body["id"], "object": "chat.completion.chunk",
                "created": body["created"], "model": body["model"]}
        message, finish = body["choices"][0]["message"], body["choices"][0]["finish_reason"]

        def chunk(delta: dict[str, Any], finish: str | None = None) -> tuple[None, Any]:
            return None, {**head, "choices": [{"index": 0, "delta": delta,
                                               "finish_reason": finish}]}

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in streamed_pieces(message["content"])]
        for index, call in enumerate(message.get("tool_calls") or []):
            args = call["function"]["arguments"]
            events.append(chunk({"tool_calls": [{"index": index, "id": call["id"],
                                                 "type": "function", "function": {
                                                     "name": call["function"]["name"],
                                                     "arguments": args[:5]}}]}))
            events.append(chunk({"tool_calls": [{"index": index,
                                                 "function": {"arguments": args[5:]}}]}))
        events.append(chunk({}, finish))
        events.append((None, {**head, "choices": [], "usage": body["usage"]}))
        return events


class FakeAnthropic(FakeModelServer):
    path = "/v1/messages"

    def base_url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def _message(self, blocks: list[dict[str, Any]], stop: str,
                 tokens: tuple[int, int]) -> dict[str, Any]:
        return {"id": f"msg_{uuid.uuid4().hex[:8]}", "type": "message", "role": "assistant",
                "model": "claude-haiku-4-5-20251001", "content": blocks, "stop_reason": stop,
                "stop_sequence": None,
                "usage": {"input_tokens": tokens[0], "output_tokens": tokens[1]}}

    def text_body(self, text: str, tokens: tuple[int, int]) -> dict[str, Any]:
        return self._message([{"type": "text", "text": text}], "end_turn", tokens)

    def tools_body(self, calls: list[Call], tokens: tuple[int, int]) -> dict[str, Any]:
        blocks = [{"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:8]}", "name": name,
                   "input": args} for name, args in calls]
        return self._message(blocks, "tool_use", tokens)

    def error_body(self, status: int, message: str = "failing on purpose") -> dict[str, Any]:
        kind = "rate_limit_error" if status == 429 else "api_error"
        return {"type": "error", "error": {"type": kind, "message": message}}

    def stream_events(self, body: dict[str, Any]) -> list[tuple[str | None, Any]]:
        usage = body["usage"]
        start = {**body, "content": [], "stop_reason": None,
                 "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1}}
        events: list[tuple[str | None, Any]] = [
            ("message_start", {"type": "message_start", "message": start})]
        for index, block in enumerate(body["content"]):
            if block["type"] == "text":
                events.append(("content_block_start", {
                    "type": "content_block_start", "index": index,
                    "content_block": {"type": "text", "text": ""}}))
                events += [("content_block_delta", {
                    "type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": piece}})
                    for piece in streamed_pieces(block["text"])]
            else:
                events.append(("content_block_start", {
                    "type": "content_block_start", "index": index,
                    "content_block": {**block, "input": {}}}))
                events.append(("content_block_delta", {
                    "type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta",
                              "partial_json": json.dumps(block["input"])}}))
            events.append(("content_block_stop", {"type": "content_block_stop",
                                                  "index": index}))
        events.append(("message_delta", {
            "type": "message_delta", "delta": {"stop_reason": body["stop_reason"],
                                               "stop_sequence": None},
            "usage": {"output_tokens": usage["output_tokens"]}}))
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    def tool_results(self, index: int = -1) -> list[str]:
        return [block["content"] for m in self.requests[index]["messages"]
                if m["role"] == "user" and isinstance(m["content"], list)
                for block in m["content"] if block.get("type") == "tool_result"]


def streamed_pieces(text: str | None) -> list[str]:
    """How the fakes cut a streamed text: word by word, each with the spaces before it."""
    return re.findall(r"\s*\S+|\s+$", text or "")


# --------------------------------------------------------------------------- agents


def answer(output: Any, status: str = "ok", confidence: float | None = 0.9) -> dict[str, Any]:
    """A final answer in the agents' contract."""
    return {"status": status, "confidence": confidence, "output": output}


def create_agent(world: World, config: dict[str, Any], tenant: str = "a") -> Any:
    """An agent made through the service (its version 1), committed."""
    with scoped_to(world.tenants[tenant].id, user_id=world.users["a_admin"].id):
        agent = service.create_agent(config["name"], config)
        db.session.commit()
        return agent.id


def update_agent(world: World, agent_id: Any, config: dict[str, Any],
                 tenant: str = "a") -> None:
    with scoped_to(world.tenants[tenant].id, user_id=world.users["a_admin"].id):
        service.update_agent(service.get_agent(agent_id), config=config)
        db.session.commit()


def scripted(name: str, *turns: dict[str, Any], **more: Any) -> dict[str, Any]:
    """An agent config for the scripted provider."""
    return {"name": name, "model": {"provider": "scripted", "model": "script"},
            "script": list(turns), **more}


def make_connection(world: World, connector_key: str, name: str,
                    fields: dict[str, Any] | None = None, base_url: str | None = None,
                    tenant: str = "a") -> Any:
    """A connection of the tenant, made through the service by its admin."""
    t = world.tenants[tenant]
    admin = world.users["a_admin" if tenant == "a" else f"{tenant}_admin"]
    with scoped_to(t.id, user_id=admin.id):
        connection = connections.create(access_to(Principal(admin), t),
                                        connector_key=connector_key, name=name,
                                        credential_fields=fields or {}, base_url=base_url)
        db.session.commit()
        return connection.id
