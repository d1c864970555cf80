"""The provider-neutral shapes: messages in, a result out.

Every provider translates these to and from its own wire format, so the agent
runtime never sees an SDK type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from overture.platform import jsonbody

Role = Literal["system", "user", "assistant", "tool"]
StopReason = Literal["end", "tool_calls", "max_tokens", "content_filter", "other"]
TextSink = Callable[[str], None]  # takes each piece of a streamed answer's text


@dataclass(frozen=True)
class ToolCall:
    """A tool the model asked for. `arguments` is the parsed JSON object, or None when
    the model sent something that is not a JSON object; `raw_arguments` always holds
    what it sent, so the runtime can hand the error back to the model."""

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str

    @property
    def malformed(self) -> bool:
        return self.arguments is None

    @classmethod
    def from_raw(cls, id: str, name: str, raw: str | None) -> ToolCall:
        raw = raw or ""
        try:
            parsed = jsonbody.loads(raw) if raw.strip() else {}
        except ValueError:
            parsed = None
        return cls(id=id, name=name, arguments=parsed if isinstance(parsed, dict) else None,
                   raw_arguments=raw)


@dataclass(frozen=True)
class Message:
    """One turn. `tool` messages carry the result of the call named by `tool_call_id`;
    `assistant` messages may carry the tool calls the model made."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    is_error: bool = False  # a tool result that reports a failure


@dataclass(frozen=True)
class Tool:
    """A function tool: a name, what it does, and a JSON Schema for its arguments."""

    name: str
    description: str
    parameters: dict[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True)
class ResponseFormat:
    """Ask for JSON that fits `schema` (structured output)."""

    schema: dict[str, Any]
    name: str = "output"
    strict: bool = True


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    temperature: float | None = None
    max_output_tokens: int = 1024
    response_format: ResponseFormat | None = None


@dataclass(frozen=True)
class ChatResult:
    text: str
    tool_calls: tuple[ToolCall, ...]
    stop_reason: StopReason
    input_tokens: int
    output_tokens: int
    model: str
    provider: str
    raw_stop_reason: str | None = None

    def as_message(self) -> Message:
        """The assistant turn to append to the conversation."""
        return Message(role="assistant", content=self.text, tool_calls=self.tool_calls)
