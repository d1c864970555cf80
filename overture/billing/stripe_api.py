"""The Stripe SDK's client, built one way: `StripeClient` (never the global
`stripe.api_key`), its base address from the settings, and its HTTP through the
platform's one outbound client (`platform.http`), locked to that base's origin.

The SDK's HTTP clients open their own connections (requests, urllib, httpx), which
the outbound guard cannot see; `GuardedHTTP` is the SDK's documented extension point
(`http_client=`, a `stripe.HTTPClient`) speaking through `platform.http.client`
instead. The SDK keeps its own retries (`max_network_retries`, backing off on 5xx,
409, timeouts and connection errors) and its idempotency keys.

    client = stripe_api.client(Account(api_key=..., stripe_account="acct_..."))
    client.v1.billing.meter_events.create(params, options)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import stripe
from flask import current_app

from overture.platform import http
from overture.platform.config import Settings


@dataclass(frozen=True)
class Account:
    """How to reach one Stripe account: its key, and for a Connect account its id
    (sent as `Stripe-Account`). `owner_id` is the tenant the account belongs to."""

    owner_id: Any
    api_key: str
    stripe_account: str | None = None

    def __repr__(self) -> str:  # never the key, in a log or a traceback
        return f"Account(owner_id={self.owner_id!s}, stripe_account={self.stripe_account!r})"

    def options(self, idempotency_key: str | None = None) -> dict[str, str]:
        """Request options: the idempotency key, and `Stripe-Account` for Connect."""
        found: dict[str, str] = {}
        if idempotency_key:
            found["idempotency_key"] = idempotency_key
        if self.stripe_account:
            found["stripe_account"] = self.stripe_account
        return found


class GuardedHTTP(stripe.HTTPClient):
    """The SDK's HTTP client on `platform.http.client` (see the module's docstring)."""

    name = "overture-guarded"

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__()
        self._client = http.client(base_url, timeout=timeout, follow_redirects=False)

    def request(self, method: str, url: str, headers: Mapping[str, str] | None,
                post_data: Any = None, *, _usage: Any = None
                ) -> tuple[bytes, int, Mapping[str, str]]:
        try:
            response = self._client.request(method, url, headers=dict(headers or {}),
                                            content=post_data)
        except http.BlockedDestination:
            raise  # our refusal: a 422 naming the address, never retried
        except (http.HTTPError, OSError) as exc:  # timeouts, refused connections
            raise stripe.APIConnectionError(
                f"could not reach Stripe ({type(exc).__name__})", should_retry=True) from exc
        return response.content, response.status_code, response.headers

    def request_stream(self, method: str, url: str, headers: Mapping[str, str] | None,
                       post_data: Any = None, *, _usage: Any = None) -> Any:
        raise NotImplementedError("no streamed Stripe calls are made")

    def close(self) -> None:
        self._client.close()


def settings() -> Settings:
    found: Settings = current_app.extensions["overture.settings"]
    return found


def client(account: Account) -> stripe.StripeClient:
    """A client for the account, on the settings' base address, timeout and retries."""
    config = settings()
    return stripe.StripeClient(
        account.api_key,
        stripe_account=account.stripe_account,
        base_addresses={"api": config.stripe_api_base},
        http_client=GuardedHTTP(config.stripe_api_base, config.stripe_timeout_seconds),
        max_network_retries=config.stripe_max_retries)


def unavailable(error: Exception) -> bool:
    """Stripe did not answer, or answered with a server error (after the retries)."""
    return isinstance(error, stripe.APIConnectionError) or (
        isinstance(error, stripe.StripeError) and (error.http_status or 0) >= 500)


def describe(error: Exception) -> str:
    """What went wrong, in words fit for a log, a page and an audit event: Stripe's
    message and code, never a key (Stripe echoes no secret key in its errors)."""
    if isinstance(error, stripe.StripeError):
        status = f"HTTP {error.http_status}: " if error.http_status else ""
        code = f" ({error.code})" if error.code else ""
        return f"{status}{error.user_message or type(error).__name__}{code}"[:500]
    return f"{type(error).__name__}: {error}"[:500]
