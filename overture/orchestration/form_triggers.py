"""Form triggers: a hosted form per trigger, made from the input schema of the
workflow's published version, served by the portal at a secret URL
(`/portal/<slug>/forms/<token>`, on the tenant's verified domain too: web/portal/forms.py).

Each submission starts one run (trigger `form`). The page carries a submission token
of its own; a submission is recorded as an event under `form:<trigger id>` and that
token (triggers.start_once), so the same page sent twice (a double click, a resend
after a lost answer) finds the first run and starts nothing more. A submission whose
honeypot field is filled looks accepted to its sender, starts nothing, and is counted
and audited. Every submission, accepted, caught or refused, is audited.
"""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any

from overture.orchestration import token_triggers, triggers, workflows
from overture.orchestration.models import Run, Workflow
from overture.orchestration.trigger_models import FormTrigger
from overture.platform import audit
from overture.platform.db import db, get_or_404, utcnow
from overture.platform.errors import PaymentRequired, ValidationFailed
from overture.tenants import domains
from overture.tenants.models import Tenant

TRIGGER = "form"  # the runs' `trigger`
TITLE_MAX = 120
TEXT_MAX = 2_000
# The page's submission token: token_urlsafe(24) is 32 characters.
SUBMISSION = re.compile(r"[A-Za-z0-9_-]{16,64}")
VISITOR = audit.Actor("anonymous", None, "form visitor")


def _text(field: str, value: Any, most: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationFailed.field(field, "must be text")
    value = value.strip()
    if required and not value:
        raise ValidationFailed.field(field, "is required")
    if len(value) > most:
        raise ValidationFailed.field(field, f"at most {most} characters")
    return value


def create(workflow: Workflow, title: Any, description: Any = "", success_message: Any = "",
           honeypot: bool = True, enabled: bool = True,
           created_by: uuid.UUID | None = None) -> FormTrigger:
    """A form for the workflow; it shows the fields of whichever version is live."""
    if workflow.archived_at is not None:
        raise ValidationFailed.field("workflow_id", "the workflow is archived")
    trigger = FormTrigger(workflow_id=workflow.id, token=secrets.token_urlsafe(24),
                          title=_text("title", title, TITLE_MAX, required=True),
                          description=_text("description", description, TEXT_MAX),
                          success_message=_text("success_message", success_message, TEXT_MAX),
                          honeypot=bool(honeypot), enabled=bool(enabled), submissions=0,
                          honeypot_hits=0, created_by_id=created_by)
    db.session.add(trigger)
    db.session.flush()
    audit.record("trigger.form_created", target_type="form_trigger", target_id=trigger.id,
                 details={"workflow_id": str(workflow.id), "title": trigger.title,
                          "honeypot": trigger.honeypot, "enabled": trigger.enabled})
    return trigger


def list_for(workflow_id: uuid.UUID) -> list[FormTrigger]:
    return token_triggers.for_workflow(FormTrigger, workflow_id)


def list_all(limit: int) -> list[FormTrigger]:
    return token_triggers.all_of(FormTrigger, limit)


def get(trigger_id: Any) -> FormTrigger:
    return get_or_404(FormTrigger, trigger_id, "form trigger")


def public_url(trigger: FormTrigger) -> str:
    """Where people fill the form in: the tenant's portal, on its domain if it has one."""
    base = domains.public_base_url(trigger.tenant_id).rstrip("/")
    tenant = db.session.get(Tenant, trigger.tenant_id)
    slug = tenant.slug if tenant is not None else str(trigger.tenant_id)
    return f"{base}/portal/{slug}/forms/{trigger.token}"


def update(trigger: FormTrigger, *, title: Any = None, description: Any = None,
           success_message: Any = None, honeypot: bool | None = None,
           enabled: bool | None = None) -> FormTrigger:
    changed: dict[str, Any] = {}
    if title is not None:
        trigger.title = changed["title"] = _text("title", title, TITLE_MAX, required=True)
    if description is not None:
        trigger.description = _text("description", description, TEXT_MAX)
        changed["description"] = "changed"
    if success_message is not None:
        trigger.success_message = _text("success_message", success_message, TEXT_MAX)
        changed["success_message"] = "changed"
    if honeypot is not None and honeypot != trigger.honeypot:
        trigger.honeypot = changed["honeypot"] = bool(honeypot)
    if enabled is not None and enabled != trigger.enabled:
        trigger.enabled = changed["enabled"] = bool(enabled)
    if changed:
        audit.record("trigger.form_updated", target_type="form_trigger", target_id=trigger.id,
                     details=changed)
    return trigger


def delete(trigger: FormTrigger) -> None:
    audit.record("trigger.form_deleted", target_type="form_trigger", target_id=trigger.id,
                 details={"workflow_id": str(trigger.workflow_id), "title": trigger.title})
    db.session.delete(trigger)


# --------------------------------------------------------------------------- the public form


def by_token(token: str) -> FormTrigger | None:
    """The scope tenant's form behind this URL token."""
    return token_triggers.by_token(FormTrigger, token)


def live_workflow(trigger: FormTrigger) -> Workflow | None:
    """The form's workflow while it can run: not archived, a version published."""
    workflow = db.session.get(Workflow, trigger.workflow_id)
    if workflow is None or workflow.archived_at is not None:
        return None
    return workflow if workflows.current_version(workflow) is not None else None


def new_submission() -> str:
    """The token a rendering of the form carries: its submissions start one run."""
    return secrets.token_urlsafe(24)


def submit(trigger: FormTrigger, workflow: Workflow, input: dict[str, Any],
           submission: str) -> tuple[Run, bool]:
    """Start the run of a submission, or find the one this page's token started.
    ValidationFailed (`input.<field>`) when the input does not fit the schema;
    PaymentRequired when a limit or the standing refuses the run. The caller commits."""
    if not SUBMISSION.fullmatch(submission or ""):
        raise ValidationFailed.field("submission", "this form page is not valid: reload it")
    run, created = triggers.start_once(workflow, source_of(trigger), [f"page:{submission}"],
                                       input, TRIGGER, check_schema=True)
    if created:
        trigger.submissions = FormTrigger.submissions + 1
        trigger.last_submission_at = utcnow()
    audit.record("trigger.form_submitted", target_type="form_trigger", target_id=trigger.id,
                 actor=VISITOR, details={"workflow_id": str(workflow.id),
                                         "run_id": str(run.id), "started": created,
                                         "fields": sorted(input)})
    return run, created


def caught(trigger: FormTrigger, fields: list[str]) -> None:
    """A submission with its honeypot filled: nothing starts; counted and audited.
    The caller commits."""
    trigger.honeypot_hits = FormTrigger.honeypot_hits + 1
    audit.record("trigger.form_honeypot", target_type="form_trigger", target_id=trigger.id,
                 actor=VISITOR, details={"workflow_id": str(trigger.workflow_id),
                                         "fields": sorted(fields)})


def refused(trigger: FormTrigger, refusal: PaymentRequired) -> None:
    """A submission a limit or the standing refused (the run's transaction is rolled
    back first): audited. The caller commits."""
    audit.record("trigger.form_refused", target_type="form_trigger", target_id=trigger.id,
                 actor=VISITOR, details={"workflow_id": str(trigger.workflow_id),
                                         "problem": refusal.code})


def source_of(trigger: FormTrigger) -> str:
    return f"form:{trigger.id}"
