"""A model provider's errors, as step error codes the retry policy understands."""

from __future__ import annotations

from overture.orchestration.agents.task import LoadedAgent
from overture.orchestration.llm import errors as llm_errors
from overture.orchestration.llm.scripted_provider import ScriptExhausted, ScriptInvalid
from overture.orchestration.outcomes import StepFailed

# Provider errors, as step error codes the retry policy understands (first match wins).
PROVIDER_FAILURES: tuple[tuple[type[llm_errors.ProviderError], str], ...] = (
    (llm_errors.ProviderRateLimited, "rate_limited"),
    (llm_errors.ProviderUnavailable, "transient"),
    (llm_errors.ProviderAuthFailed, "llm_auth_failed"),
    (llm_errors.ProviderBlocked, "blocked_destination"),
    (ScriptExhausted, "agent_script_exhausted"),
    (ScriptInvalid, "agent_misconfigured"),
    (llm_errors.UnknownProvider, "agent_misconfigured"),
    (llm_errors.ProviderRequestRejected, "llm_request_rejected"),
    (llm_errors.ProviderError, "llm_error"),
)


def provider_failure(agent: LoadedAgent, error: llm_errors.ProviderError) -> StepFailed:
    code = next(c for kind, c in PROVIDER_FAILURES if isinstance(error, kind))
    return StepFailed(code, f"agent {agent.name!r}: {error.detail}",
                      {"agent": agent.name, "provider": agent.spec.model.provider})
