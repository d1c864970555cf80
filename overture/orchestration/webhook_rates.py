"""How many calls a minute a workflow's webhook URL takes.

Each workflow may set its own number (`webhook_rate_per_minute`); without one it takes
the installation's default (OVERTURE_WEBHOOK_RATE_PER_MINUTE). No workflow may go above
the installation's ceiling (OVERTURE_WEBHOOK_RATE_CEILING) nor the one of the plan its
tenant is billed at (`plans.webhook_rate_ceiling`), and one set before a ceiling was
lowered is held to it. The web layer counts the calls (web/webhook_limits.py).
"""

from __future__ import annotations

from flask import current_app, has_request_context, request
from sqlalchemy import select

from overture.billing import accounts
from overture.orchestration.models import Workflow
from overture.orchestration.trigger_models import VendorTrigger
from overture.platform import audit
from overture.platform.config import Settings
from overture.platform.db import current_tenant_id, db
from overture.platform.errors import ValidationFailed

FIELD = "webhook_rate_per_minute"


def _settings() -> Settings:
    return current_app.extensions["overture.settings"]  # type: ignore[no-any-return]


def ceiling() -> int:
    """The most calls a minute a webhook of the scope tenant may take: the
    installation's ceiling, or its plan's when lower."""
    return _ceilings()[0]


def _ceilings() -> tuple[int, str]:
    """(the ceiling, whose: "installation" or "plan") for the scope tenant."""
    tenant_id = current_tenant_id()
    top = _settings().webhook_rate_ceiling
    if tenant_id is None:
        return top, "installation"
    # Kept for the request (a page lists many workflows), never longer: a plan's edit
    # applies at the next request.
    known: dict[object, tuple[int, str]] = (
        request.environ.setdefault("overture.webhook_rate_ceilings", {})
        if has_request_context() else {})
    if tenant_id not in known:
        plan = accounts.webhook_rate_ceiling(tenant_id)
        known[tenant_id] = (plan, "plan") if plan is not None and plan < top \
            else (top, "installation")
    return known[tenant_id]


def effective(per_minute: int | None) -> int:
    """The calls a minute a webhook set to `per_minute` (None: the default) takes."""
    return min(per_minute or _settings().webhook_rate_per_minute, ceiling())


def of(workflow: Workflow) -> int:
    return effective(workflow.webhook_rate_per_minute)


def set_rate(workflow: Workflow, per_minute: int | None) -> None:
    """Set the webhook's calls a minute (None: back to the installation's default);
    a number that is not a whole number from 1 to the ceiling is refused, naming it."""
    if per_minute is not None:
        top, whose = _ceilings()
        if isinstance(per_minute, bool) or not isinstance(per_minute, int) or per_minute < 1:
            raise ValidationFailed.field(FIELD, "a whole number of calls a minute, at least 1")
        if per_minute > top:
            where = "this workspace's plan" if whose == "plan" else "this installation"
            raise ValidationFailed.field(FIELD, f"at most {top:,} calls a minute on {where}")
    if workflow.webhook_rate_per_minute == per_minute:
        return  # nothing changed: nothing to audit
    before = workflow.webhook_rate_per_minute
    workflow.webhook_rate_per_minute = per_minute
    audit.record("workflow.webhook_rate", target_type="workflow", target_id=workflow.id,
                 details={"before": before, "after": per_minute})


def by_token(token: str) -> int:
    """The calls a minute of the scope tenant's webhook with this token (the default
    for a token that names none: that call is refused as not found anyway)."""
    found = db.session.scalar(select(Workflow.webhook_rate_per_minute).where(
        Workflow.webhook_token == token, Workflow.archived_at.is_(None)).limit(1))
    return effective(found)


def by_vendor_token(token: str) -> int:
    """The same for a vendor's event feed (Slack, HubSpot, ...): its workflow's number."""
    found = db.session.scalar(
        select(Workflow.webhook_rate_per_minute)
        .join(VendorTrigger, VendorTrigger.workflow_id == Workflow.id)
        .where(VendorTrigger.token == token, Workflow.archived_at.is_(None)).limit(1))
    return effective(found)
