"""How many calls a minute a workflow's webhook URL takes.

Each workflow may set its own number (`webhook_rate_per_minute`); without one it takes
the installation's default (OVERTURE_WEBHOOK_RATE_PER_MINUTE). No workflow may go above
the installation's ceiling (OVERTURE_WEBHOOK_RATE_CEILING), and one set before the
ceiling was lowered is held to it. The web layer counts the calls (web/webhook_limits.py).
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from overture.orchestration.models import Workflow
from overture.orchestration.trigger_models import VendorTrigger
from overture.platform import audit
from overture.platform.config import Settings
from overture.platform.db import db
from overture.platform.errors import ValidationFailed

FIELD = "webhook_rate_per_minute"


def _settings() -> Settings:
    return current_app.extensions["overture.settings"]  # type: ignore[no-any-return]


def ceiling() -> int:
    return _settings().webhook_rate_ceiling


def effective(per_minute: int | None) -> int:
    """The calls a minute a webhook set to `per_minute` (None: the default) takes."""
    settings = _settings()
    return min(per_minute or settings.webhook_rate_per_minute, settings.webhook_rate_ceiling)


def of(workflow: Workflow) -> int:
    return effective(workflow.webhook_rate_per_minute)


def set_rate(workflow: Workflow, per_minute: int | None) -> None:
    """Set the webhook's calls a minute (None: back to the installation's default);
    a number that is not a whole number from 1 to the ceiling is refused, naming it."""
    if per_minute is not None:
        top = ceiling()
        if isinstance(per_minute, bool) or not isinstance(per_minute, int) or per_minute < 1:
            raise ValidationFailed.field(FIELD, "a whole number of calls a minute, at least 1")
        if per_minute > top:
            raise ValidationFailed.field(FIELD, f"at most {top:,} calls a minute on this "
                                                "installation")
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
