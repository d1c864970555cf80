"""Roll a template version out to the client workspaces provisioned from it, and roll
it back.

A roll-out runs synchronously, in the request that starts it, one workspace at a time,
canaries first. Each workspace is applied inside a savepoint (a failing workspace keeps
none of its half-made changes) and committed on its own, so the progress rows say what
happened in each even if the process dies half way. A failing canary stops the roll-out;
with `stop_on_failure` any failure does. The workspaces not reached stay `pending`.

Rolling back undoes each workspace the roll-out changed (newest first): its workflows'
previous versions become current again (runs in flight keep the version they started
on either way). Every step is audited in the workspace and the whole in the agency.
What a workspace's own edits made the roll-out leave alone (an unpublished draft, a
version published since) is said in that workspace's notes (see install.py).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from overture.orchestration.templates import install, service
from overture.orchestration.templates.models import (
    Rollout,
    RolloutStatus,
    RolloutWorkspace,
    StepStatus,
    Template,
)
from overture.platform import audit
from overture.platform.db import db, get_or_404, utcnow
from overture.platform.errors import Conflict, OvertureError, ValidationFailed
from overture.platform.ids import parse_id
from overture.platform.logging import get_logger
from overture.tenants.access import Access, access_to

log = get_logger(__name__)

MAX_WORKSPACES = 200  # per roll-out: it runs in one request


def _ids(values: Any, field: str) -> list[uuid.UUID]:
    if not isinstance(values, list):
        raise ValidationFailed.field(field, "must be a list of workspace ids")
    parsed = [parse_id(v) for v in values]
    if any(p is None for p in parsed):
        raise ValidationFailed.field(field, "must be a list of workspace ids")
    return list(dict.fromkeys(p for p in parsed if p is not None))


def _chosen(template: Template, workspace_ids: Any,
            canary_ids: Any) -> tuple[list[uuid.UUID], set[uuid.UUID]]:
    chosen = _ids(workspace_ids, "workspace_ids")
    canaries = set(_ids(canary_ids or [], "canary_ids"))
    if not chosen:
        raise ValidationFailed.field("workspace_ids", "choose at least one workspace")
    if len(chosen) > MAX_WORKSPACES:
        raise ValidationFailed.field("workspace_ids", f"at most {MAX_WORKSPACES}")
    provisioned = {link.workspace_id for link in service.workspaces(template)}
    strangers = [str(w) for w in chosen if w not in provisioned]
    if strangers:
        raise ValidationFailed.field("workspace_ids", "not provisioned from this template: "
                                     + ", ".join(strangers))
    if not canaries <= set(chosen):
        raise ValidationFailed.field("canary_ids", "every canary must be among workspace_ids")
    # Canaries first, each group in the order given.
    return [w for w in chosen if w in canaries] + [w for w in chosen if w not in canaries], \
        canaries


def start(access: Access, template: Template, version: Any, workspace_ids: Any,
          canary_ids: Any = None, stop_on_failure: bool = False) -> Rollout:
    """Create the roll-out and run it to its end; commits as it goes."""
    access.require("workspace.manage")
    target = service.get_version(template, version)
    order, canaries = _chosen(template, workspace_ids, canary_ids)
    # One roll-out of a template at a time: the template's row lock orders two starts,
    # and the second finds the first running. (One left running by a process that died
    # is ended by rolling it back.)
    db.session.execute(select(Template.id).where(Template.id == template.id).with_for_update())
    if db.session.scalars(select(Rollout.id).where(
            Rollout.template_id == template.id,
            Rollout.status == RolloutStatus.RUNNING)).first():
        raise Conflict("another roll-out of this template is running")
    rollout = Rollout(tenant_id=template.tenant_id, template_id=template.id,
                      version=target.number, status=RolloutStatus.RUNNING,
                      stop_on_failure=bool(stop_on_failure),
                      created_by_id=access.principal.user.id)
    db.session.add(rollout)
    db.session.flush()
    for position, workspace_id in enumerate(order):
        db.session.add(RolloutWorkspace(tenant_id=template.tenant_id, rollout_id=rollout.id,
                                        workspace_id=workspace_id, position=position,
                                        canary=workspace_id in canaries))
    audit.record("template.rollout_started", target_type="rollout", target_id=rollout.id,
                 details={"template_id": str(template.id), "version": target.number,
                          "workspaces": [str(w) for w in order],
                          "canaries": [str(w) for w in order if w in canaries],
                          "stop_on_failure": rollout.stop_on_failure})
    db.session.commit()
    _run(access, template, rollout, target.snapshot)
    return rollout


def _run(access: Access, template: Template, rollout: Rollout,
         snapshot: dict[str, Any]) -> None:
    for row in progress(rollout):
        if not _apply(access, template, rollout, row, snapshot) and (
                row.canary or rollout.stop_on_failure):
            rollout.status = RolloutStatus.STOPPED
            break
        db.session.commit()
    else:
        failed = any(r.status == StepStatus.FAILED for r in progress(rollout))
        rollout.status = RolloutStatus.FAILED if failed else RolloutStatus.COMPLETED
    rollout.finished_at = utcnow()
    audit.record("template.rollout_finished", target_type="rollout", target_id=rollout.id,
                 details={"status": rollout.status, **_counts(rollout)})
    db.session.commit()


def _apply(access: Access, template: Template, rollout: Rollout, row: RolloutWorkspace,
           snapshot: dict[str, Any]) -> bool:
    """Move one workspace to the roll-out's version; False (and why) if it failed."""
    link = service.link_of(template, row.workspace_id)
    details = {"rollout_id": str(rollout.id), "template_id": str(template.id),
               "version": rollout.version}
    try:
        if link is None:
            raise Conflict("the workspace is no longer linked to the template")
        workspace = service.workspace_of(access, row.workspace_id)
        there = access_to(access.principal, workspace)  # suspended: refused here
        old = service.get_version(template, link.version).snapshot
        with service.inside(workspace), db.session.begin_nested():
            changes = install.upgrade(there, old, snapshot)
            audit.record("template.rollout_applied", target_type="rollout",
                         target_id=rollout.id, details={
                             **details, "from": link.version,
                             "drafts_kept": changes["drafts_kept"]})
    except Exception as error:  # any failure is this workspace's outcome
        if not isinstance(error, OvertureError):
            log.exception("template.rollout_error", workspace_id=str(row.workspace_id))
        row.status, row.error = StepStatus.FAILED, _reason(error)
        audit.record("template.rollout_failed", target_type="rollout", target_id=rollout.id,
                     details={**details, "error": row.error}, tenant_id=row.workspace_id)
        return False
    row.changes = changes
    row.status, row.from_version, row.applied_at = StepStatus.APPLIED, link.version, utcnow()
    link.version = rollout.version
    return True


def _reason(error: Exception) -> str:
    if not isinstance(error, OvertureError):
        return f"unexpected error ({type(error).__name__})"
    errors = getattr(error, "errors", None) or []
    named = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return (named or error.detail or error.title)[:2000]


def rollback(access: Access, rollout: Rollout) -> Rollout:
    """Undo every workspace the roll-out changed, newest first."""
    access.require("workspace.manage")
    if rollout.status == RolloutStatus.ROLLED_BACK:
        raise Conflict("the roll-out was rolled back already")
    template = get_or_404(Template, rollout.template_id, "template")
    left = 0
    for row in reversed(progress(rollout)):
        if row.status == StepStatus.APPLIED:
            left += not _undo(access, template, rollout, row)
            db.session.commit()
    if not left:
        rollout.status, rollout.rolled_back_at = RolloutStatus.ROLLED_BACK, utcnow()
    audit.record("template.rollout_rolled_back", target_type="rollout", target_id=rollout.id,
                 details={"complete": not left, **_counts(rollout)})
    db.session.commit()
    return rollout


def _undo(access: Access, template: Template, rollout: Rollout, row: RolloutWorkspace) -> bool:
    details = {"rollout_id": str(rollout.id), "template_id": str(template.id),
               "version": row.from_version}
    try:
        workspace = service.workspace_of(access, row.workspace_id)
        there = access_to(access.principal, workspace)
        with service.inside(workspace), db.session.begin_nested():
            notes = install.undo(there, row.changes or {})
            audit.record("template.rollout_rolled_back", target_type="rollout",
                         target_id=rollout.id, details=details)
    except Exception as error:  # reported on the row; the rest go on
        if not isinstance(error, OvertureError):
            log.exception("template.rollback_error", workspace_id=str(row.workspace_id))
        row.error = "rollback failed: " + _reason(error)
        return False
    row.status, row.error = StepStatus.ROLLED_BACK, None
    if notes:  # a new dict: the JSON column sees only assignments
        row.changes = {**(row.changes or {}), "notes": [*row.notes, *notes]}
    link = service.link_of(template, row.workspace_id)
    if link is not None and row.from_version is not None:
        link.version = row.from_version
    return True


def get_rollout(rollout_id: Any) -> Rollout:
    return get_or_404(Rollout, rollout_id, "roll-out")


def progress(rollout: Rollout) -> list[RolloutWorkspace]:
    return list(db.session.scalars(select(RolloutWorkspace).where(
        RolloutWorkspace.rollout_id == rollout.id).order_by(RolloutWorkspace.position)))


def _counts(rollout: Rollout) -> dict[str, int]:
    counts = {status.value: 0 for status in StepStatus}
    for row in progress(rollout):
        counts[row.status] += 1
    return counts


def recent(template: Template, limit: int = 20) -> list[Rollout]:
    """The template's latest roll-outs, newest first (the console lists them)."""
    return list(db.session.scalars(select(Rollout).where(
        Rollout.template_id == template.id).order_by(Rollout.created_at.desc()).limit(limit)))
