"""Anthropic Messages with tool use, through the `anthropic` SDK."""

from __future__ import annotations

import json
from typing import Any

import anthropic

from overture.orchestration.llm.base import Connection, guard_refusal, translate_sdk_error
from overture.orchestration.llm.types import (
    ChatRequest,
    ChatResult,
    Message,
    StopReason,
    TextSink,
    ToolCall,
)
from overture.platform import http
from overture.platform.http import BlockedDestination

STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end", "stop_sequence": "end", "tool_use": "tool_calls",
    "max_tokens": "max_tokens", "refusal": "content_filter",
}


def _refusals_are_final(request: Any, call_next: Any) -> Any:
    """The SDK wraps whatever its HTTP client raised as a connection error and retries
    it; the guard's refusal is raised as it is (middleware errors are not retried),
    so a refused address fails at once."""
    try:
        return call_next(request)
    except anthropic.APIConnectionError as exc:
        refused = guard_refusal(exc)
        if refused is None:
            raise
        raise refused from None


class AnthropicProvider:
    def __init__(self, connection: Connection) -> None:
        self.name = connection.provider
        # Every request, retry and redirect goes through the outbound guard, and the
        # key only to the credential's base_url origin.
        self.client = anthropic.Anthropic(api_key=connection.api_key,
                                          base_url=connection.base_url,
                                          timeout=connection.timeout,
                                          max_retries=connection.max_retries,
                                          http_client=http.client(connection.base_url,
                                                                  timeout=connection.timeout),
                                          middleware=[_refusals_are_final])

    def chat(self, request: ChatRequest) -> ChatResult:
        try:
            response = self.client.messages.create(**_params(request))
        except (anthropic.AnthropicError, BlockedDestination) as exc:
            raise translate_sdk_error(anthropic, exc, self.name) from None
        return _result(response, self.name, request.model)

    def stream(self, request: ChatRequest, on_text: TextSink) -> ChatResult:
        """As `chat`, handing each piece of text to `on_text` as it arrives."""
        try:
            with self.client.messages.stream(**_params(request)) as stream:
                for piece in stream.text_stream:
                    if piece:
                        on_text(piece)
                response = stream.get_final_message()
        except (anthropic.AnthropicError, BlockedDestination) as exc:
            raise translate_sdk_error(anthropic, exc, self.name) from None
        return _result(response, self.name, request.model)


def _params(request: ChatRequest) -> dict[str, Any]:
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    params: dict[str, Any] = {
        "model": request.model,
        "messages": _messages(request.messages),
        "max_tokens": request.max_output_tokens,
    }
    if system:
        params["system"] = system
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.tools:
        params["tools"] = [{"name": t.name, "description": t.description,
                            "input_schema": t.parameters} for t in request.tools]
    if request.response_format:
        params["output_config"] = {"format": {
            "type": "json_schema", "schema": request.response_format.schema}}
    return params


def _messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Anthropic wants alternating user/assistant turns; tool results are user turns of
    `tool_result` blocks, so consecutive ones merge into one turn."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id,
                                     "content": m.content}
            if m.is_error:
                block["is_error"] = True
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
            continue
        if m.role == "assistant" and m.tool_calls:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content \
                else []
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name,
                        "input": c.arguments if c.arguments is not None else {}}
                       for c in m.tool_calls]
            out.append({"role": "assistant", "content": blocks})
            continue
        out.append({"role": m.role, "content": m.content})
    return out


def _result(response: Any, provider: str, model: str) -> ChatResult:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in response.content or []:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            raw_input = block.input
            if isinstance(raw_input, dict):
                calls.append(ToolCall(id=block.id, name=block.name, arguments=raw_input,
                                      raw_arguments=json.dumps(raw_input)))
            else:  # not an object: surface it raw for the runtime to reject
                raw = raw_input if isinstance(raw_input, str) else json.dumps(raw_input)
                calls.append(ToolCall(id=block.id, name=block.name, arguments=None,
                                      raw_arguments=raw))
    usage = response.usage
    return ChatResult(
        text="".join(texts), tool_calls=tuple(calls),
        stop_reason=STOP_REASONS.get(response.stop_reason or "", "other"),
        input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
        output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
        model=response.model or model, provider=provider,
        raw_stop_reason=response.stop_reason)
