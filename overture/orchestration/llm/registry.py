"""Which provider class serves which provider name.

Two kinds: providers reached with a vault credential (`make_provider(connection)`), and
offline ones that need no credential and take what they answer with at construction
(`make_offline_provider(name, **setup)`): `scripted` (the agent's script) and `local`
(an `embed` function and the task's routes, review or template).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from overture.orchestration.llm.base import Connection, Provider
from overture.orchestration.llm.errors import UnknownProvider
from overture.orchestration.llm.local_provider import LocalProvider
from overture.orchestration.llm.scripted_provider import ScriptedProvider


# The vendors' SDKs are imported by the first call that needs one: together with their
# dependencies they weigh about 100 MiB, which a web process that calls no model (most
# of them) and a worker that calls one vendor need not hold.
def _openai(connection: Connection) -> Provider:
    from overture.orchestration.llm.openai_provider import OpenAIProvider

    return OpenAIProvider(connection)


def _anthropic(connection: Connection) -> Provider:
    from overture.orchestration.llm.anthropic_provider import AnthropicProvider

    return AnthropicProvider(connection)


PROVIDERS: dict[str, Callable[[Connection], Provider]] = {
    "openai": _openai,
    "azure_openai": _openai,  # needs api_version and base_url (the resource endpoint)
    "openai_compatible": _openai,  # vLLM, Ollama, LM Studio...: needs base_url
    "anthropic": _anthropic,
}
OFFLINE_PROVIDERS: dict[str, Callable[..., Provider]] = {
    "scripted": ScriptedProvider,  # ScriptedProvider(script)
    "local": LocalProvider,  # LocalProvider(embed, classify=..., review=..., template=...)
}


def needs_credential(provider: str) -> bool:
    return provider not in OFFLINE_PROVIDERS


def make_provider(connection: Connection) -> Provider:
    factory = PROVIDERS.get(connection.provider)
    if factory is None:
        hint = " (it needs no credential: use make_offline_provider)" \
            if connection.provider in OFFLINE_PROVIDERS else ""
        raise UnknownProvider(f"unknown provider {connection.provider!r}{hint}; one of "
                              + ", ".join(sorted(PROVIDERS)))
    if connection.provider == "azure_openai" and not (connection.base_url
                                                      and connection.api_version):
        raise UnknownProvider("azure_openai needs base_url and api_version on the credential")
    if connection.provider == "openai_compatible" and not connection.base_url:
        raise UnknownProvider("openai_compatible needs base_url on the credential")
    return factory(connection)


def make_offline_provider(name: str, *args: Any, **setup: Any) -> Provider:
    factory = OFFLINE_PROVIDERS.get(name)
    if factory is None:
        raise UnknownProvider(f"{name!r} is not an offline provider; one of "
                              + ", ".join(sorted(OFFLINE_PROVIDERS)))
    return factory(*args, **setup)
