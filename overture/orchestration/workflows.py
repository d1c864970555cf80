"""Workflows: a draft definition and immutable published versions (v1, v2, ...)."""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from sqlalchemy import func, select

from overture.orchestration import definition, notifications, outbound_events
from overture.orchestration.models import Workflow, WorkflowVersion
from overture.platform import audit
from overture.platform.db import db, get_or_404, save_named, utcnow
from overture.platform.errors import NotFound, ValidationFailed
from overture.platform.pagination import Page, paginate
from overture.platform.validation import clean_name
from overture.tenants import credentials, members
from overture.tenants.credentials import get_credential
from overture.tenants.models import Tenant
from overture.tenants.users import normalize_email

MAX_DEFINITION_STEPS = 2000

# Run at publish on the valid definition: each returns pins to freeze with the version
# (merged by key; e.g. {"agents": {name: version id}}), or raises ValidationFailed
# naming the step and field at fault. Step types that depend on other versioned
# things register one, so a published version never changes under a running workflow.
PublishHook = Callable[[dict[str, Any]], dict[str, Any]]
_PUBLISH_HOOKS: list[PublishHook] = []


def register_publish_hook(hook: PublishHook) -> None:
    if hook not in _PUBLISH_HOOKS:
        _PUBLISH_HOOKS.append(hook)


def pins_for(draft: dict[str, Any]) -> dict[str, Any]:
    pins: dict[str, Any] = {}
    errors: list[dict[str, str]] = []
    for hook in _PUBLISH_HOOKS:
        try:
            found = hook(draft)
        except ValidationFailed as invalid:
            errors += invalid.errors
            continue
        for key, value in found.items():
            if isinstance(value, dict) and isinstance(pins.get(key), dict):
                pins[key] = {**pins[key], **value}
            else:
                pins[key] = value
    if errors:
        raise ValidationFailed(errors)
    return pins


def _check_draft(draft: Any) -> dict[str, Any]:
    if not isinstance(draft, dict):
        raise ValidationFailed.field("definition", "must be a JSON object")
    return draft


def create_workflow(name: str, description: str = "", draft: Any = None,
                    created_by: uuid.UUID | None = None) -> Workflow:
    workflow = Workflow(name=clean_name(name), description=description or "",
                        draft=_check_draft(draft if draft is not None else {"steps": []}),
                        webhook_token=secrets.token_urlsafe(24), created_by_id=created_by)
    save_named(workflow, workflow.name, "a workflow", add=True)
    audit.record("workflow.created", target_type="workflow", target_id=workflow.id,
                 details={"name": workflow.name})
    return workflow


def list_workflows(cursor: str | None, limit: int | None) -> Page[Workflow]:
    return paginate(select(Workflow).where(Workflow.archived_at.is_(None)), Workflow.id, cursor,
                    limit)


def get_workflow(workflow_id: Any) -> Workflow:
    workflow = get_or_404(Workflow, workflow_id, "workflow")
    if workflow.archived_at is not None:
        raise NotFound("workflow not found")
    return workflow


def update_workflow(workflow: Workflow, *, name: str | None = None,
                    description: str | None = None, draft: Any = None) -> Workflow:
    changed = []
    if name is not None:
        save_named(workflow, clean_name(name), "a workflow")
        changed.append("name")
    if description is not None:
        workflow.description = description
        changed.append("description")
    if draft is not None:
        workflow.draft = _check_draft(draft)
        changed.append("draft")
    audit.record("workflow.updated", target_type="workflow", target_id=workflow.id,
                 details={"changed": changed})
    return workflow


def archive_workflow(workflow: Workflow) -> None:
    workflow.archived_at = utcnow()
    workflow.name = f"{workflow.name[:80]}~archived~{workflow.id.hex[:12]}"
    audit.record("workflow.archived", target_type="workflow", target_id=workflow.id)


def publish(workflow: Workflow, published_by: uuid.UUID | None,
            draft: dict[str, Any] | None = None) -> WorkflowVersion:
    """Validate the draft and freeze it as the next version, which becomes current.
    Given a `draft`, that is published instead and the workflow's own draft is left as
    it is (a template roll-out must not take a client's unpublished edits away)."""
    draft = _check_draft(draft) if draft is not None else (workflow.draft or {})
    definition.validate(draft)
    if len(draft.get("steps") or []) > MAX_DEFINITION_STEPS:
        raise ValidationFailed.field("definition", f"more than {MAX_DEFINITION_STEPS} steps")
    pins = pins_for(draft)
    # Two publishes at once would both pick max+1 and one would die on the unique key
    # (a 500): the workflow row lock makes the second wait and take the next number.
    db.session.execute(select(Workflow.id).where(Workflow.id == workflow.id).with_for_update())
    number = (db.session.scalar(select(func.max(WorkflowVersion.number))
                                .where(WorkflowVersion.workflow_id == workflow.id)) or 0) + 1
    version = WorkflowVersion(workflow_id=workflow.id, number=number, definition=draft,
                              pins=pins, published_by_id=published_by)
    db.session.add(version)
    db.session.flush()
    workflow.current_version_id = version.id
    audit.record("workflow.published", target_type="workflow", target_id=workflow.id,
                 details={"version": number})
    outbound_events.workflow_published(workflow, version)
    return version


def rollback(workflow: Workflow, number: int) -> WorkflowVersion:
    """Make an older version current again; new runs use it, running ones keep theirs."""
    version = db.session.scalars(select(WorkflowVersion).where(
        WorkflowVersion.workflow_id == workflow.id, WorkflowVersion.number == number)
    ).one_or_none()
    if version is None:
        raise NotFound(f"workflow has no version {number}")
    workflow.current_version_id = version.id
    audit.record("workflow.rolled_back", target_type="workflow", target_id=workflow.id,
                 details={"version": number})
    return version


def versions(workflow: Workflow) -> list[WorkflowVersion]:
    return list(db.session.scalars(select(WorkflowVersion).where(
        WorkflowVersion.workflow_id == workflow.id).order_by(WorkflowVersion.number)))


def current_version(workflow: Workflow) -> WorkflowVersion | None:
    if workflow.current_version_id is None:
        return None
    return db.session.get(WorkflowVersion, workflow.current_version_id)


def version_numbers(version_ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, int]:
    """The number of each version, by its id, in one statement: what a list of runs or
    workflows shows (without loading every definition)."""
    wanted = {i for i in version_ids if i is not None}
    if not wanted:
        return {}
    return dict(db.session.execute(select(WorkflowVersion.id, WorkflowVersion.number)
                                   .where(WorkflowVersion.id.in_(wanted))).all())


def by_webhook_token(token: str) -> Workflow | None:
    """The scope tenant's workflow with this webhook token (the webhook URL names the
    tenant, so the lookup goes through the scope like any other)."""
    found = webhook_target(token)
    return found.workflow if found is not None else None


class WebhookTarget(NamedTuple):
    tenant: Tenant
    workflow: Workflow
    version: WorkflowVersion | None  # the current one (None: never published)


def webhook_target(token: str) -> WebhookTarget | None:
    """The scope's tenant (with its agency: `Tenant.usable`), its workflow with this
    webhook token and that workflow's current version, in one statement. Holding the
    version keeps it in the session: `runs.start_run` then reads it without another."""
    found = db.session.execute(
        select(Tenant, Workflow, WorkflowVersion)
        .join(Tenant, Tenant.id == Workflow.tenant_id)
        .outerjoin(WorkflowVersion, WorkflowVersion.id == Workflow.current_version_id)
        .where(Workflow.webhook_token == token, Workflow.archived_at.is_(None))).one_or_none()
    if found is None or not secrets.compare_digest(found[1].webhook_token, token):
        return None
    return WebhookTarget(*found)


def has_unpublished_edits(workflow: Workflow) -> bool:
    """Whether the draft differs from the live version (a new workflow's empty draft
    holds nothing to lose)."""
    current = current_version(workflow)
    if current is None:
        return bool((workflow.draft or {}).get("steps"))
    return bool(workflow.draft != current.definition)


def set_webhook_enabled(workflow: Workflow, enabled: bool) -> None:
    """Turn the webhook on or off; its URL and signing secret stay as they are."""
    if workflow.webhook_enabled == enabled:
        return  # nothing happened: nothing to audit
    workflow.webhook_enabled = enabled
    audit.record("workflow.webhook_enabled" if enabled else "workflow.webhook_disabled",
                 target_type="workflow", target_id=workflow.id)


def new_webhook_secret(access: Any, workflow: Workflow) -> str:
    """A new signing secret (Standard Webhooks' `whsec_` form), sealed in the vault and
    returned once; from now on every call must be signed with it."""
    access.require("credential.manage")
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    if workflow.webhook_credential_id is not None:
        credentials.update(access, workflow.webhook_credential_id, fields={"secret": secret})
    else:
        made = credentials.create(access, name=f"Webhook signing: {workflow.name}"[:120],
                                  kind="custom", fields={"secret": secret},
                                  secret_fields=["secret"])
        set_webhook_credential(access, workflow, made.id)
    return secret


def set_webhook_credential(access: Any, workflow: Workflow,
                           credential_id: uuid.UUID | None) -> None:
    """Require signed webhook calls with a vault credential's `secret` (or stop)."""
    if credential_id is not None:
        get_credential(access, credential_id)  # exists in this tenant, caller may read it
    workflow.webhook_credential_id = credential_id
    audit.record("workflow.webhook_signing", target_type="workflow", target_id=workflow.id,
                 details={"credential_id": str(credential_id) if credential_id else None})


def set_failure_alerts(workflow: Workflow, enabled: bool | None = None,
                       recipients: list[str] | None = None) -> None:
    """Turn failure mail on or off, and name who gets it (staff of this workspace, by
    address; an empty list: the workflow's maker, else its owners and admins)."""
    changes: dict[str, Any] = {}
    if recipients is not None:
        cleaned = _failure_recipients(workflow, recipients)
        if cleaned != list(workflow.failure_recipients or []):
            workflow.failure_recipients = changes["recipients"] = cleaned
    if enabled is not None and enabled != workflow.failure_alerts:
        workflow.failure_alerts = changes["enabled"] = enabled
    if changes:
        audit.record("workflow.failure_alerts", target_type="workflow",
                     target_id=workflow.id, details=changes)


def _failure_recipients(workflow: Workflow, raw: list[str]) -> list[str]:
    if len(raw) > notifications.MAX_RECIPIENTS:
        raise ValidationFailed.field("failure_recipients",
                                     f"at most {notifications.MAX_RECIPIENTS} addresses")
    cleaned: list[str] = []
    for address in raw:
        email = normalize_email(str(address), "failure_recipients")
        if email not in cleaned:
            cleaned.append(email)
    staff = {u.email.lower() for u in members.active_staff(workflow.tenant_id, emails=cleaned)}
    strangers = [e for e in cleaned if e not in staff]
    if strangers:
        raise ValidationFailed.field("failure_recipients", (
            "failure alerts go to this workspace's staff only, and "
            f"{'this is not a member' if len(strangers) == 1 else 'these are not members'}"
            f": {', '.join(strangers)}"))
    return cleaned
