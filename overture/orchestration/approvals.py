"""Human approval: a run waits, with no message in flight, until someone decides.

A decision is taken with a conditional UPDATE on the pending row, so two approvers
clicking at once resume the run exactly once. Decisions come through the API or a
single-use signed link; each is audited with the approver and any edited values.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select, update

from overture.orchestration import flow, graphs, notifications, outbound_events
from overture.orchestration.models import Approval, ApprovalStatus, Run, StepRun, StepStatus
from overture.orchestration.outcomes import AwaitApproval, Completed, StepFailed
from overture.platform import audit
from overture.platform.db import db, get_or_404, utcnow
from overture.platform.errors import Conflict, Forbidden, NotFound, ValidationFailed
from overture.platform.pagination import Page, paginate
from overture.tenants.roles import RANK, parse_role

DECISIONS = ("approve", "reject")
LINK_SALT = "overture.approval-link"


def open_approval(run: Run, row: StepRun, spec: AwaitApproval) -> Approval:
    deadline = (utcnow() + timedelta(seconds=spec.timeout_seconds)
                if spec.timeout_seconds else None)
    assignee = uuid.UUID(spec.assignee_user_id) if spec.assignee_user_id else None
    if spec.assignee_starter and run.started_by_id is not None:
        assignee = run.started_by_id
    approval = Approval(run_id=run.id, step_run_id=row.id, prompt=spec.prompt, data=spec.data,
                        editable_fields=spec.editable_fields, assignee_role=spec.assignee_role,
                        assignee_user_id=assignee,
                        deadline_at=deadline, timeout_action=spec.timeout_action,
                        escalate_to_role=spec.escalate_to_role,
                        link_nonce=secrets.token_urlsafe(16))
    db.session.add(approval)
    db.session.flush()
    audit.record("approval.requested", target_type="approval", target_id=approval.id,
                 details={"run_id": str(run.id), "step": row.step_id,
                          "assignee_role": spec.assignee_role,
                          "assignee_user_id": str(assignee) if assignee else None})
    if not run.is_test:  # a test run's approval is answered in the console: no mail
        notifications.approval_requested(approval, run, _mail_token(approval))
        outbound_events.approval_requested(approval)
    return approval


def list_approvals(cursor: str | None, limit: int | None,
                   status: str | None = "pending") -> Page[Approval]:
    stmt = select(Approval)
    if status:
        stmt = stmt.where(Approval.status == status)
    return paginate(stmt, Approval.id, cursor, limit)


def get_approval(approval_id: str) -> Approval:
    return get_or_404(Approval, approval_id, "approval")


def may_decide(approval: Approval, user_id: uuid.UUID, role: str | None) -> bool:
    """The assigned user, or anyone holding the assigned role or a stronger one."""
    if approval.assignee_user_id is not None:
        return approval.assignee_user_id == user_id
    if approval.assignee_role is None:
        return True
    held, wanted = parse_role(role or ""), parse_role(approval.assignee_role)
    if held is None or wanted is None:
        return False
    return RANK.index(held) <= RANK.index(wanted)


def decide(approval: Approval, decision: str, *, user_id: uuid.UUID | None,
           role: str | None, edits: dict[str, Any] | None = None, note: str | None = None,
           via: str = "api") -> Approval:
    """Approve or reject. Exactly one decision wins; later ones get 409."""
    if decision not in DECISIONS:
        raise ValidationFailed.field("decision", "approve or reject")
    if via != "link" and (user_id is None or not may_decide(approval, user_id, role)):
        raise Forbidden("this approval is assigned to someone else")
    edits = edits or {}
    not_editable = sorted(set(edits) - set(approval.editable_fields))
    if not_editable:
        raise ValidationFailed.field("edits", f"not editable: {', '.join(not_editable)}")
    status = ApprovalStatus.APPROVED if decision == "approve" else ApprovalStatus.REJECTED
    _settle(approval, status, user_id=user_id, edits=edits, note=note, via=via)
    return approval


def _settle(approval: Approval, status: ApprovalStatus, *, user_id: uuid.UUID | None,
            edits: dict[str, Any], note: str | None, via: str) -> None:
    won = db.session.execute(
        update(Approval).where(Approval.id == approval.id,
                               Approval.status == ApprovalStatus.PENDING)
        .values(status=status, decided_by_id=user_id, decided_at=utcnow(), edited_values=edits,
                decision_note=note)
        .execution_options(synchronize_session=False)).rowcount
    if won != 1:
        db.session.rollback()
        raise Conflict("this approval was already decided")
    db.session.refresh(approval)
    data = {**approval.data, **edits} if isinstance(approval.data, dict) else approval.data
    # Lock the run before the audit chain's head: a worker recording a step of this run
    # holds the run and then audits; the other order could deadlock with it.
    # populate_existing: the locked rows as committed, not copies this session loaded
    # before (a run a worker finished meanwhile must not be resumed).
    run = db.session.scalars(select(Run).where(Run.id == approval.run_id).with_for_update()
                             .execution_options(populate_existing=True)).one()
    row = db.session.scalars(select(StepRun).where(StepRun.id == approval.step_run_id)
                             .with_for_update().execution_options(populate_existing=True)).one()
    audit.record(f"approval.{status}", target_type="approval", target_id=approval.id,
                 details={"run_id": str(approval.run_id), "via": via, "edited": edits,
                          "note": note})
    if not run.is_test:
        outbound_events.approval_decided(approval)
    if run.finished or row.status != StepStatus.WAITING:  # nothing waits for it any more
        return
    output = {"decision": "approved" if status == ApprovalStatus.APPROVED else "rejected",
              "status": status, "data": data, "edited": edits, "note": note,
              "decided_by": str(user_id) if user_id else None}
    step = graphs.graph_of(run).step(row.step_id)
    if status == ApprovalStatus.APPROVED:
        flow.resume_waiting(run, row, Completed(output))
    elif step.get("on_reject"):
        flow.resume_waiting(run, row, Completed(output, next=step["on_reject"]))
    else:
        flow.resume_waiting(run, row, StepFailed("rejected", "the approval was rejected",
                                                 {"approval": output}))


def expire(approval: Approval) -> None:
    """Apply the timeout action of an approval past its deadline."""
    if approval.timeout_action == "escalate" and approval.escalate_to_role:
        _escalate(approval)
        return
    status = (ApprovalStatus.APPROVED if approval.timeout_action == "approve"
              else ApprovalStatus.REJECTED)
    _settle(approval, status, user_id=None, edits={}, note="timed out", via="timeout")


def _escalate(approval: Approval) -> None:
    """Hand a pending approval to a stronger role, with a fresh deadline. Conditional,
    like a decision: two sweepers (two schedulers) escalate it once, and never after
    someone decided it."""
    now = utcnow()
    won = db.session.execute(
        update(Approval).where(Approval.id == approval.id,
                               Approval.status == ApprovalStatus.PENDING,
                               Approval.timeout_action == "escalate",
                               Approval.deadline_at <= now)
        .values(assignee_role=approval.escalate_to_role, assignee_user_id=None,
                escalate_to_role=None, timeout_action="reject",
                deadline_at=now + (approval.deadline_at - approval.created_at))
        .execution_options(synchronize_session=False)).rowcount
    if won != 1:
        db.session.rollback()
        raise Conflict("this approval was already decided or escalated")
    db.session.refresh(approval)
    audit.record("approval.escalated", target_type="approval", target_id=approval.id,
                 details={"to_role": approval.assignee_role})
    run = db.session.get(Run, approval.run_id)
    if run is None or not run.is_test:
        notifications.approval_escalated(approval, _mail_token(approval))


def due_approvals() -> list[Approval]:
    return list(db.session.scalars(select(Approval).where(
        Approval.status == ApprovalStatus.PENDING, Approval.deadline_at <= utcnow())))


# --------------------------------------------------------------------------- signed links


def link_token(approval: Approval, secret_key: str) -> str:
    return URLSafeSerializer(secret_key, salt=LINK_SALT).dumps(
        {"a": str(approval.id), "t": str(approval.tenant_id), "n": approval.link_nonce})


def _mail_token(approval: Approval) -> str:
    """The token of the link mailed to the assignees: the same signed link the API hands
    out (`POST /approvals/<id>/link`)."""
    return link_token(approval, current_app.config["SECRET_KEY"])


def read_link(token: str, secret_key: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    """(approval id, tenant id, nonce) from a link token, or NotFound."""
    try:
        data = URLSafeSerializer(secret_key, salt=LINK_SALT).loads(token)
        return uuid.UUID(data["a"]), uuid.UUID(data["t"]), str(data["n"])
    except (BadSignature, KeyError, ValueError, TypeError) as exc:
        raise NotFound("this approval link is not valid") from exc


def approval_by_link(approval_id: uuid.UUID, nonce: str) -> Approval:
    approval = db.session.get(Approval, approval_id)
    if approval is None or not secrets.compare_digest(approval.link_nonce, nonce):
        raise NotFound("this approval link is not valid")
    return approval


def of_run(run: Run) -> list[Approval]:
    """Every approval a run asked for, oldest first: its approval history."""
    return list(db.session.scalars(select(Approval).where(Approval.run_id == run.id)
                                   .order_by(Approval.created_at, Approval.id)))
