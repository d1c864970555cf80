"""What can go wrong talking to a model provider, in the platform's error hierarchy."""

from __future__ import annotations

from overture.platform.errors import OvertureError


class ProviderError(OvertureError):
    status = 502
    code = "llm-provider-error"
    title = "The model provider failed"


class ProviderAuthFailed(ProviderError):
    """The provider refused the credential (401/403): fix the key, retrying won't help."""

    code = "llm-auth-failed"
    title = "The model provider rejected the credential"


class ProviderRateLimited(ProviderError):
    code = "llm-rate-limited"
    title = "The model provider is rate limiting (retries exhausted)"


class ProviderUnavailable(ProviderError):
    code = "llm-unavailable"
    title = "The model provider is unavailable or timed out (retries exhausted)"


class ProviderRequestRejected(ProviderError):
    """A 4xx other than auth/rate limit: the request itself (model, schema) is wrong."""

    code = "llm-request-rejected"
    title = "The model provider rejected the request"


class UnknownProvider(ProviderError):
    status = 422
    code = "llm-unknown-provider"
    title = "Unknown model provider"


class ProviderBlocked(ProviderError):
    """The outbound guard refused the provider's address (a credential's `base_url` on a
    private or loopback address, or a redirect away from its origin): fix the
    credential, retrying won't help."""

    status = 422
    code = "blocked-destination"
    title = "Destination not allowed"
