"""Mail about runs, queued in the transaction of the fact it reports (the outbox sends it
once that commits, and never for a fact rolled back):

- approval requested, to its assignees: the person it is assigned to, else everyone
  holding its role (or, when nobody does, the nearest stronger role anyone holds; no
  role means the operators), each with the approval's signed link;
- approval escalated, the same way to the role it passed to;
- run failed (or timed out), when its workflow asks for it (`failure_alerts`): to the
  workflow's `failure_recipients`, each still an active staff member of the workspace, else
  to the person who made the workflow while they are one, else to the workspace's
  owners and admins. Recipients are members only: a failure's error can hold the run's
  data, which nobody outside the workspace may read, and no builder can make the
  platform mail a stranger.

Every mail carries the workspace's brand and links to its own address.
"""

from __future__ import annotations

import uuid
from typing import Any

from overture.orchestration.models import Approval, Run, RunStatus, Workflow
from overture.platform import mail, page_links
from overture.platform.db import db
from overture.tenants import domains, members
from overture.tenants.models import Tenant, User
from overture.tenants.roles import Role, parse_role

FAILED = (RunStatus.FAILED, RunStatus.TIMED_OUT)
MAX_RECIPIENTS = 20  # of a workflow's failure alerts


def _when(moment: Any) -> str | None:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else None


def _names(tenant_id: uuid.UUID, workflow_id: uuid.UUID) -> tuple[str, str]:
    tenant = db.session.get(Tenant, tenant_id)
    workflow = db.session.get(Workflow, workflow_id)
    return (tenant.name if tenant else "", workflow.name if workflow else "a workflow")


# --------------------------------------------------------------------------- approvals


def assignees(approval: Approval) -> list[User]:
    if approval.assignee_user_id is not None:
        user = db.session.get(User, approval.assignee_user_id)
        return [user] if user is not None and user.is_active else []
    role = parse_role(approval.assignee_role or "") or Role.OPERATOR
    return members.nearest_holders(approval.tenant_id, role)


def approval_requested(approval: Approval, run: Run, token: str) -> None:
    _approval_mail("approval_requested", approval, run.workflow_id, token)


def approval_escalated(approval: Approval, token: str) -> None:
    run = db.session.get(Run, approval.run_id)
    if run is not None:
        _approval_mail("approval_escalated", approval, run.workflow_id, token)


def _approval_mail(template: str, approval: Approval, workflow_id: uuid.UUID,
                   token: str) -> None:
    workspace, workflow_name = _names(approval.tenant_id, workflow_id)
    link = domains.public_base_url(approval.tenant_id) + page_links.path("approval",
                                                                          token=token)
    role = None if approval.assignee_user_id is not None else \
        str(parse_role(approval.assignee_role or "") or Role.OPERATOR)
    for user in assignees(approval):
        mail.queue_mail(user.email, template, {
            "name": user.name, "workspace": workspace, "workflow_name": workflow_name,
            "prompt": approval.prompt, "deadline": _when(approval.deadline_at),
            "role": role, "link": link,
        }, tenant_id=approval.tenant_id)


# --------------------------------------------------------------------------- failed runs


def run_failed(run: Run) -> None:
    """Mail the failure of `run`, if its workflow asks for it."""
    if run.status not in FAILED:
        return
    workflow = db.session.get(Workflow, run.workflow_id)
    if workflow is None or not workflow.failure_alerts:
        return
    recipients = failure_recipients(workflow)
    if not recipients:
        return
    tenant = db.session.get(Tenant, run.tenant_id)
    error = run.error or {}
    link = domains.public_base_url(run.tenant_id) + page_links.path("run", run_id=run.id)
    for user in recipients:
        mail.queue_mail(user.email, "run_failed", {
            "name": user.name, "workspace": tenant.name if tenant else "",
            "workflow_name": workflow.name, "status": str(run.status),
            "message": str(error.get("message") or error.get("code") or "the run failed"),
            "step": error.get("step"), "link": link,
        }, tenant_id=run.tenant_id)


def failure_recipients(workflow: Workflow) -> list[User]:
    """Who hears of the workflow's failed runs (see the module's note)."""
    chosen = list(workflow.failure_recipients or [])[:MAX_RECIPIENTS]
    if chosen:
        return members.active_staff(workflow.tenant_id, emails=chosen)
    if workflow.created_by_id is not None:
        creator = members.active_staff(workflow.tenant_id, user_id=workflow.created_by_id)
        if creator:
            return creator
    return members.people_holding(workflow.tenant_id, [Role.OWNER, Role.ADMIN])
