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
