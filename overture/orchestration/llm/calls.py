"""One metered model call for the current tenant: credential out of the vault,
the provider call, usage events in the session.

    result = chat(ModelSettings("anthropic", "claude-haiku-4-5"), credential_id,
                  messages, tools=..., usage=UsageContext(run_id=...))

The credential (an `api_key` credential; its public fields may add `base_url`,
`api_version`, `organization`) is opened with `use_credential`, which commits its
audit record at once: call this outside other pending writes. The usage events are
added to the session for the caller to commit with its own work.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from overture.orchestration.llm.base import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, Connection
from overture.orchestration.llm.metering import UsageContext, meter
from overture.orchestration.llm.registry import make_provider
from overture.orchestration.llm.types import ChatRequest, ChatResult, Message, ResponseFormat, Tool
from overture.tenants.vault import use_credential


@dataclass(frozen=True)
class ModelSettings:
    provider: str
    model: str
    temperature: float | None = None
    max_output_tokens: int = 1024
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES


@dataclass(frozen=True)
class MeteredResult:
    result: ChatResult
    cost: Decimal | None  # None: the model has no price in the table


def connection_from(settings: ModelSettings, credential_id: uuid.UUID | str,
                    purpose: str) -> Connection:
    values = use_credential(credential_id, purpose)
    return Connection(provider=settings.provider, api_key=str(values.get("api_key") or ""),
                      base_url=values.get("base_url") or None,
                      api_version=values.get("api_version") or None,
                      organization=values.get("organization") or None,
                      timeout=settings.timeout, max_retries=settings.max_retries)


def chat(settings: ModelSettings, credential_id: uuid.UUID | str,
         messages: Sequence[Message], *, tools: Sequence[Tool] = (),
         response_format: ResponseFormat | None = None,
         usage: UsageContext | None = None, purpose: str | None = None) -> MeteredResult:
    connection = connection_from(settings, credential_id,
                                 purpose or f"llm call ({settings.provider} {settings.model})")
    provider = make_provider(connection)
    result = provider.chat(ChatRequest(
        model=settings.model, messages=tuple(messages), tools=tuple(tools),
        temperature=settings.temperature, max_output_tokens=settings.max_output_tokens,
        response_format=response_format))
    cost = meter(result, settings.model, usage or UsageContext())
    return MeteredResult(result=result, cost=cost)
