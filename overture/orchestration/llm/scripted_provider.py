"""The `scripted` provider: answers with turns written on the agent (`AgentSpec.script`),
so a builder can run a workflow end to end without a model or a token spent.

A turn is a JSON object:

    {"text": "...",                       # what the model says (or:)
     "answer": {"status": "ok", "confidence": 0.9, "output": {...}},  # JSON-encoded text
     "tool_calls": [{"name": "crm_find", "arguments": {"email": "a@b.c"}},
                    {"name": "crm_find", "raw_arguments": "{broken"}],  # malformed on purpose
     "input_tokens": 120, "output_tokens": 30,  # reported as if a model had used them
     "error": "rate_limited",             # fail instead: rate_limited|unavailable|auth|rejected
     "when": "refund"}                    # see below

Turns without `when` are used once each, in order. A turn with `when` is a keyed
answer: it is used (again and again) whenever the latest user or tool message contains
that text (case-insensitive), before any unkeyed turn. When no turn is left the call
fails with `ScriptExhausted`: a script that ran out is a builder's mistake to see.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import jsonschema

from overture.orchestration.llm import errors
from overture.orchestration.llm.base import in_pieces
from overture.orchestration.llm.types import ChatRequest, ChatResult, TextSink, ToolCall

ERRORS: dict[str, type[errors.ProviderError]] = {
    "rate_limited": errors.ProviderRateLimited, "unavailable": errors.ProviderUnavailable,
    "auth": errors.ProviderAuthFailed, "rejected": errors.ProviderRequestRejected,
}
TOKENS = {"type": "integer", "minimum": 0, "maximum": 10_000_000}
TURN_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "when": {"type": "string", "minLength": 1},
        "text": {"type": "string"},
        "answer": {"type": "object"},
        "tool_calls": {"type": "array", "items": {
            "type": "object", "required": ["name"], "additionalProperties": False,
            "properties": {"name": {"type": "string", "minLength": 1},
                           "arguments": {"type": "object"},
                           "raw_arguments": {"type": "string"}}}},
        "input_tokens": TOKENS, "output_tokens": TOKENS,
        "error": {"enum": sorted(ERRORS)},
    },
}
_TURN_VALIDATOR = jsonschema.Draft202012Validator(TURN_SCHEMA)


class ScriptInvalid(errors.ProviderError):
    status = 422
    code = "llm-script-invalid"
    title = "The agent's script is not valid"


class ScriptExhausted(errors.ProviderError):
    status = 422
    code = "llm-script-exhausted"
    title = "The agent's script has no turn left"


def script_problems(script: Sequence[Any]) -> list[tuple[str, str]]:
    """(where, what) for each fault: `where` is the path inside the script ("2.error"),
    for the agent API to name the field."""
    problems = []
    for index, turn in enumerate(script):
        for error in sorted(_TURN_VALIDATOR.iter_errors(turn), key=lambda e: list(e.path)):
            where = ".".join(str(p) for p in (index, *error.absolute_path))
            problems.append((where, error.message))
    return problems


def check_script(script: Sequence[dict[str, Any]]) -> None:
    """ScriptInvalid naming the first turn at fault."""
    problems = script_problems(script)
    if problems:
        where, message = problems[0]
        raise ScriptInvalid(f"script turn {where}: {message}", provider="scripted")


class ScriptedProvider:
    """Stateful: one instance plays its script through once (the runtime keeps one per
    agent for a whole step, so a review loop's second draft takes the next turn)."""

    name = "scripted"

    def __init__(self, script: Sequence[dict[str, Any]]) -> None:
        check_script(script)
        self.keyed = [t for t in script if "when" in t]
        self.queue = [t for t in script if "when" not in t]
        self.calls = 0
        self._lock = threading.Lock()  # a supervisor may ask the same agent in parallel

    def chat(self, request: ChatRequest) -> ChatResult:
        with self._lock:
            turn = self._next_turn(_latest_text(request))
            self.calls += 1
            number = self.calls
        if "error" in turn:
            raise ERRORS[turn["error"]](f"scripted: turn {number} fails with {turn['error']}",
                                        provider=self.name)
        calls = tuple(_tool_call(number, i, c) for i, c in enumerate(turn.get("tool_calls", ())))
        text = json.dumps(turn["answer"]) if "answer" in turn else str(turn.get("text", ""))
        return ChatResult(text=text, tool_calls=calls, stop_reason="tool_calls" if calls
                          else "end", input_tokens=int(turn.get("input_tokens", 0)),
                          output_tokens=int(turn.get("output_tokens", 0)),
                          model=request.model, provider=self.name)

    def stream(self, request: ChatRequest, on_text: TextSink) -> ChatResult:
        result = self.chat(request)
        in_pieces(result.text, on_text)
        return result

    def _next_turn(self, latest: str) -> dict[str, Any]:
        lowered = latest.lower()
        for turn in self.keyed:
            if turn["when"].lower() in lowered:
                return turn
        if not self.queue:
            raise ScriptExhausted(f"scripted: no turn left after {self.calls} call(s); "
                                  "add turns to the agent's script", provider=self.name)
        return self.queue.pop(0)


def _latest_text(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.role in ("user", "tool"):
            return message.content
    return ""


def _tool_call(number: int, index: int, spec: dict[str, Any]) -> ToolCall:
    call_id = f"call_{number}_{index}"
    if "raw_arguments" in spec:
        return ToolCall.from_raw(call_id, spec["name"], spec["raw_arguments"])
    arguments = spec.get("arguments", {})
    return ToolCall(id=call_id, name=spec["name"], arguments=arguments,
                    raw_arguments=json.dumps(arguments))
