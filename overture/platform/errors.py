"""The one error hierarchy. Every error a user can cause is an `OvertureError`.

The web layer renders them as RFC 9457 problem documents; the CLI prints the
detail and exits non-zero. `code` is stable: clients may switch on it.
"""

from __future__ import annotations

from typing import Any

PROBLEM_TYPE_PREFIX = "urn:overture:problem:"


class OvertureError(Exception):
    status: int = 500
    code: str = "internal-error"
    title: str = "Internal error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return PROBLEM_TYPE_PREFIX + self.code

    def to_problem(self) -> dict[str, Any]:
        body = {"type": self.type_uri, "title": self.title, "status": self.status,
                "detail": self.detail}
        body.update(self.extra)
        return body


class ConfigError(OvertureError):
    """The process cannot start as configured. Never shown over HTTP."""

    code = "config-error"
    title = "Configuration error"


class BadRequest(OvertureError):
    status = 400
    code = "bad-request"
    title = "Bad request"


class ValidationFailed(OvertureError):
    """Input that does not fit. `errors` names each field: [{"field", "message"}]."""

    status = 422
    code = "validation-error"
    title = "Validation failed"

    def __init__(self, errors: list[dict[str, str]], detail: str | None = None) -> None:
        detail = detail or "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        super().__init__(detail, errors=errors)
        self.errors = errors

    @classmethod
    def field(cls, field: str, message: str) -> ValidationFailed:
        return cls([{"field": field, "message": message}])


class TenantRequired(BadRequest):
    code = "tenant-required"
    title = "Tenant required"


class Unauthenticated(OvertureError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(OvertureError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class ReauthenticationRequired(Forbidden):
    """A sensitive act needs the person to have proven who they are recently."""

    code = "reauthentication-required"
    title = "Reauthentication required"


class TenantSuspended(Forbidden):
    code = "tenant-suspended"
    title = "Tenant suspended"


class NotFound(OvertureError):
    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(OvertureError):
    status = 409
    code = "conflict"
    title = "Conflict"


class WebhookDisabled(Conflict):
    """A call to a webhook its workspace turned off. 409, not 404: whoever holds the
    secret URL knows it exists, and "not found" would send them hunting for a typo;
    not 410, which Standard Webhooks senders take as "remove this endpoint for good"."""

    code = "webhook-disabled"
    title = "Webhook turned off"


class LinkNotUsable(OvertureError):
    """An emailed link (invitation, reset, sign-in) that cannot be used: `reason` says
    which of unknown, expired, used or revoked, so the page can say so plainly."""

    status = 410
    code = "link-not-usable"
    title = "This link cannot be used"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, reason=reason)
        self.reason = reason


class PaymentRequired(OvertureError):
    """Work refused because a limit the tenant pays by is reached: its budget, a quota
    on a meter, or its standing (an unpaid invoice past the grace period)."""

    status = 402
    code = "payment-required"
    title = "Payment required"


class BudgetExceeded(PaymentRequired):
    """The month's budget in money is spent. `limit` and `used` are amounts as strings
    (exact decimals), `meter` the meter the budget is kept on."""

    code = "budget-exceeded"
    title = "Budget exceeded"

    def __init__(self, detail: str, *, limit: str, used: str, meter: str, **extra: Any) -> None:
        super().__init__(detail, limit=limit, used=used, meter=meter, **extra)


class QuotaExceeded(BudgetExceeded):
    """A cap on a meter (runs, steps, agent or action calls) is reached this month."""

    code = "quota-exceeded"
    title = "Quota exceeded"


class PastDue(PaymentRequired):
    """The tenant's payment failed and the grace period is over."""

    code = "past-due"
    title = "Payment past due"


class RateLimited(OvertureError):
    status = 429
    code = "rate-limited"
    title = "Too many requests"


class ServiceUnavailable(OvertureError):
    status = 503
    code = "unavailable"
    title = "Service unavailable"
