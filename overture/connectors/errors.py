"""Errors a connector call ends with. `reason` is stable (engines retry on it)."""

from __future__ import annotations

from typing import Any

from overture.platform.errors import OvertureError

RETRYABLE = frozenset({"rate_limited", "http_5xx", "timeout", "connection", "temporary"})


class ActionFailed(OvertureError):
    status = 502
    code = "connector-error"
    title = "The connected app refused or failed"

    def __init__(self, reason: str, detail: str, **extra: Any) -> None:
        super().__init__(detail, reason=reason, **extra)
        self.reason = reason

    @property
    def retryable(self) -> bool:
        return self.reason in RETRYABLE


class ConnectionBroken(ActionFailed):
    """The connection's credentials no longer work (a refresh failed): re-authorise."""

    status = 409
    code = "connection-broken"
    title = "Connection needs re-authorisation"


class DestinationBlocked(ActionFailed):
    """The outbound guard refused where the call would go (a private or loopback
    address, an odd scheme): the connection's configuration is wrong, not the app."""

    status = 422
    code = "blocked-destination"
    title = "Destination not allowed"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__("blocked", detail, **extra)


class OriginRefused(ActionFailed):
    """A connection holding credentials was asked to send a request (or follow a
    redirect) to an origin other than its base URL's and its `allowed_origins`."""

    status = 422
    code = "origin-refused"
    title = "Origin not allowed for this connection's credentials"

    def __init__(self, origin: str, detail: str) -> None:
        super().__init__("origin_refused", detail, origin=origin)
        self.origin = origin
