"""The provider interface and the connection settings every provider takes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from overture.orchestration.llm import errors
from overture.orchestration.llm.types import ChatRequest, ChatResult, TextSink
from overture.platform.http import BlockedDestination

DEFAULT_TIMEOUT = 60.0  # seconds per attempt
DEFAULT_MAX_RETRIES = 3  # on 408/409/429/5xx and connection errors, honouring Retry-After


@dataclass(frozen=True)
class Connection:
    """How to reach a provider. `api_key` comes from the vault and lives only here,
    for the duration of a call; `repr` never shows it."""

    provider: str
    api_key: str
    base_url: str | None = None
    api_version: str | None = None  # Azure OpenAI
    organization: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES

    def __repr__(self) -> str:
        return (f"Connection(provider={self.provider!r}, base_url={self.base_url!r}, "
                f"api_key=<hidden>)")


class Provider(Protocol):
    """A model. Providers that can stream also have `stream(request, on_text)`: the
    same result as `chat`, with the text handed to `on_text` piece by piece as the
    model produces it."""

    name: str

    def chat(self, request: ChatRequest) -> ChatResult: ...


def chat_streaming(provider: Provider, request: ChatRequest, on_text: TextSink) -> ChatResult:
    """The provider's `stream` where it has one, else `chat` with its text in one piece."""
    stream = getattr(provider, "stream", None)
    if stream is not None:
        return stream(request, on_text)  # type: ignore[no-any-return]
    result = provider.chat(request)
    if result.text:
        on_text(result.text)
    return result


_WORDS = re.compile(r"\s*\S+|\s+$")


def in_pieces(text: str, on_text: TextSink) -> None:
    """Hand an answer that exists at once (offline providers make theirs whole) to
    `on_text` word by word, as a model would produce it."""
    for piece in _WORDS.findall(text):
        on_text(piece)


def guard_refusal(exc: BaseException) -> BlockedDestination | None:
    """The outbound guard's refusal behind an SDK error (the SDKs wrap what their
    HTTP client raised as the cause of their own errors), if that is what it is."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, BlockedDestination):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def translate_sdk_error(sdk: Any, exc: Exception, provider: str) -> errors.ProviderError:
    """Map an `openai`/`anthropic` SDK exception (same class names), or the guard's
    refusal, to ours. The detail names the provider and status, never the key."""
    refused = guard_refusal(exc)
    if refused is not None:
        return errors.ProviderBlocked(f"{provider}: {refused.detail}", provider=provider)
    status = getattr(exc, "status_code", None)
    where = f"{provider}" + (f" answered {status}" if status else "")
    if isinstance(exc, sdk.AuthenticationError | sdk.PermissionDeniedError):
        return errors.ProviderAuthFailed(
            f"{where}: the API key was rejected; check the credential", provider=provider)
    if isinstance(exc, sdk.RateLimitError):
        return errors.ProviderRateLimited(f"{where}: rate limited after retries",
                                          provider=provider)
    if isinstance(exc, sdk.APITimeoutError):
        return errors.ProviderUnavailable(f"{provider}: timed out after retries",
                                          provider=provider)
    if isinstance(exc, sdk.APIConnectionError):
        return errors.ProviderUnavailable(f"{provider}: could not connect", provider=provider)
    if isinstance(exc, sdk.InternalServerError):
        return errors.ProviderUnavailable(f"{where}: server error after retries",
                                          provider=provider)
    if isinstance(exc, sdk.APIStatusError):
        return errors.ProviderRequestRejected(f"{where}: {_short_message(exc)}",
                                              provider=provider)
    return errors.ProviderError(f"{provider}: {type(exc).__name__}", provider=provider)


def _short_message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"][:300]
    return type(exc).__name__
