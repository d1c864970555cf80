"""Workflows: a draft definition and immutable published versions (v1, v2, ...)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import func, select

from overture.orchestration import definition
from overture.orchestration.models import Workflow, WorkflowVersion
from overture.platform import audit
from overture.platform.db import db, get_or_404, save_named, utcnow
from overture.platform.errors import NotFound, ValidationFailed
from overture.platform.pagination import Page, paginate
from overture.platform.validation import clean_name
from overture.tenants.credentials import get_credential

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


def publish(workflow: Workflow, published_by: uuid.UUID | None) -> WorkflowVersion:
    """Validate the draft and freeze it as the next version, which becomes current."""
    draft = workflow.draft or {}
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
    found = db.session.scalars(select(Workflow).where(
        Workflow.webhook_token == token, Workflow.archived_at.is_(None))).one_or_none()
    if found is None or not secrets.compare_digest(found.webhook_token, token):
        return None
    return found


def set_webhook_credential(access: Any, workflow: Workflow,
                           credential_id: uuid.UUID | None) -> None:
    """Require signed webhook calls with a vault credential's `secret` (or stop)."""
    if credential_id is not None:
        get_credential(access, credential_id)  # exists in this tenant, caller may read it
    workflow.webhook_credential_id = credential_id
    audit.record("workflow.webhook_signing", target_type="workflow", target_id=workflow.id,
                 details={"credential_id": str(credential_id) if credential_id else None})
