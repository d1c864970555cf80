"""OpenAI-compatible chat completions with tool calling, through the `openai` SDK.

One class serves OpenAI, Azure OpenAI (`api_version` set: the SDK's AzureOpenAI
client, `base_url` is the resource endpoint and `model` the deployment) and
self-hosted servers speaking the same API (vLLM, Ollama, LM Studio) via `base_url`.
"""

from __future__ import annotations

import json
from typing import Any

import openai

from overture.orchestration.llm.base import Connection, translate_sdk_error
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
    "stop": "end", "tool_calls": "tool_calls", "function_call": "tool_calls",
    "length": "max_tokens", "content_filter": "content_filter",
}


class OpenAIProvider:
    def __init__(self, connection: Connection) -> None:
        self.name = connection.provider
        common: dict[str, Any] = {"api_key": connection.api_key, "timeout": connection.timeout,
                                  "max_retries": connection.max_retries}
        # Every request, retry and redirect goes through the outbound guard, and the
        # key only to the credential's base_url origin.
        if connection.api_version:
            self.client: openai.OpenAI = openai.AzureOpenAI(
                azure_endpoint=connection.base_url or "", api_version=connection.api_version,
                http_client=http.client(connection.base_url, timeout=connection.timeout),
                **common)
        else:
            self.client = openai.OpenAI(
                base_url=connection.base_url, organization=connection.organization,
                http_client=http.client(connection.base_url, timeout=connection.timeout),
                **common)

    def chat(self, request: ChatRequest) -> ChatResult:
        try:
            completion = self.client.chat.completions.create(**_params(request))
        except (openai.OpenAIError, BlockedDestination) as exc:
            raise translate_sdk_error(openai, exc, self.name) from None
        return _result(completion, self.name, request.model)

    def stream(self, request: ChatRequest, on_text: TextSink) -> ChatResult:
        """As `chat`, handing each piece of text to `on_text` as it arrives."""
        collected = _Collected()
        try:
            chunks = self.client.chat.completions.create(
                **_params(request), stream=True, stream_options={"include_usage": True})
            for chunk in chunks:
                piece = collected.add(chunk)
                if piece:
                    on_text(piece)
        except (openai.OpenAIError, BlockedDestination) as exc:
            raise translate_sdk_error(openai, exc, self.name) from None
        return collected.result(self.name, request.model)


def _params(request: ChatRequest) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(m) for m in request.messages],
        "max_completion_tokens": request.max_output_tokens,
    }
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.tools:
        params["tools"] = [{"type": "function", "function": {
            "name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in request.tools]
    if request.response_format:
        rf = request.response_format
        params["response_format"] = {"type": "json_schema", "json_schema": {
            "name": rf.name, "schema": rf.schema, "strict": rf.strict}}
    return params


class _Collected:
    """A streamed completion put back together: its text, the tool calls (whose names
    and arguments arrive in pieces, by index), why it stopped, and the usage the last
    chunk reports."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish: str | None = None
        self.usage: Any = None
        self.model: str | None = None

    def add(self, chunk: Any) -> str:
        self.model = getattr(chunk, "model", None) or self.model
        self.usage = getattr(chunk, "usage", None) or self.usage
        pieces = []
        for choice in chunk.choices or []:
            delta = choice.delta
            if delta is not None and delta.content:
                pieces.append(delta.content)
            for call in (getattr(delta, "tool_calls", None) or []) if delta else []:
                slot = self.calls.setdefault(call.index, {"id": "", "name": "", "args": []})
                slot["id"] = call.id or slot["id"]
                if call.function is not None:
                    slot["name"] += call.function.name or ""
                    slot["args"].append(call.function.arguments or "")
            self.finish = choice.finish_reason or self.finish
        self.text += pieces
        return "".join(pieces)

    def result(self, provider: str, model: str) -> ChatResult:
        calls = tuple(ToolCall.from_raw(c["id"], c["name"], "".join(c["args"]))
                      for _, c in sorted(self.calls.items()) if c["name"])
        return ChatResult(
            text="".join(self.text), tool_calls=calls,
            stop_reason=STOP_REASONS.get(self.finish or "", "other"),
            input_tokens=int(getattr(self.usage, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(self.usage, "completion_tokens", 0) or 0),
            model=self.model or model, provider=provider, raw_stop_reason=self.finish)


def _message(m: Message) -> dict[str, Any]:
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content}
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.role == "assistant" and m.tool_calls:
        out["content"] = m.content or None
        out["tool_calls"] = [{"id": c.id, "type": "function", "function": {
            "name": c.name,
            "arguments": c.raw_arguments if c.malformed else json.dumps(c.arguments)}}
            for c in m.tool_calls]
    return out


def _result(completion: Any, provider: str, model: str) -> ChatResult:
    choice = completion.choices[0] if completion.choices else None
    message = choice.message if choice else None
    calls = tuple(
        ToolCall.from_raw(c.id, c.function.name, c.function.arguments)
        for c in (getattr(message, "tool_calls", None) or [])
        if getattr(c, "function", None) is not None)
    raw_stop = choice.finish_reason if choice else None
    usage = completion.usage
    return ChatResult(
        text=(message.content or "") if message else "",
        tool_calls=calls,
        stop_reason=STOP_REASONS.get(raw_stop or "", "other"),
        input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        model=completion.model or model, provider=provider, raw_stop_reason=raw_stop)
