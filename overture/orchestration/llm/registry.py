"""Which provider class serves which provider name."""

from __future__ import annotations

from collections.abc import Callable

from overture.orchestration.llm.anthropic_provider import AnthropicProvider
from overture.orchestration.llm.base import Connection, Provider
from overture.orchestration.llm.errors import UnknownProvider
from overture.orchestration.llm.openai_provider import OpenAIProvider

PROVIDERS: dict[str, Callable[[Connection], Provider]] = {
    "openai": OpenAIProvider,
    "azure_openai": OpenAIProvider,  # needs api_version and base_url (the resource endpoint)
    "openai_compatible": OpenAIProvider,  # vLLM, Ollama, LM Studio...: needs base_url
    "anthropic": AnthropicProvider,
}


def make_provider(connection: Connection) -> Provider:
    factory = PROVIDERS.get(connection.provider)
    if factory is None:
        raise UnknownProvider(f"unknown provider {connection.provider!r}; one of "
                              + ", ".join(sorted(PROVIDERS)))
    if connection.provider == "azure_openai" and not (connection.base_url
                                                      and connection.api_version):
        raise UnknownProvider("azure_openai needs base_url and api_version on the credential")
    if connection.provider == "openai_compatible" and not connection.base_url:
        raise UnknownProvider("openai_compatible needs base_url on the credential")
    return factory(connection)
