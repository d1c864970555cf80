"""Approvals waiting on people: list, decide, and hand out single-use links."""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for

from overture.orchestration import approvals
from overture.orchestration.models import Approval
from overture.platform.db import db
from overture.platform.errors import Forbidden
from overture.tenants import domains
from overture.web.api import api
from overture.web.api.workflow_schemas import (
    ApprovalLinkOut,
    ApprovalOut,
    ApprovalPage,
    ApprovalQuery,
    DecisionIn,
)
from overture.web.auth import current_access, require

TAGS = ["Approvals"]


@api.get("/approvals")
@require("run.read")
@api.input(ApprovalQuery, location="query", arg_name="query")
@api.output(ApprovalPage)
@api.doc(tags=TAGS, summary="Approvals, pending ones by default")
def list_approvals(query: dict[str, Any]) -> dict[str, Any]:
    page = approvals.list_approvals(query["cursor"], query["limit"], query["status"])
    return page.body()


@api.get("/approvals/<approval_id>")
@require("run.read")
@api.output(ApprovalOut)
@api.doc(tags=TAGS, summary="One approval")
def get_approval(approval_id: str) -> Approval:
    return approvals.get_approval(approval_id)


@api.post("/approvals/<approval_id>/decision")
@require("approval.decide")
@api.input(DecisionIn, arg_name="body")
@api.output(ApprovalOut)
@api.doc(tags=TAGS, summary="Approve or reject (with edits to the editable fields); once")
def decide(approval_id: str, body: dict[str, Any]) -> Approval:
    access = current_access()
    approval = approvals.decide(approvals.get_approval(approval_id), body["decision"],
                                user_id=access.principal.user.id,
                                role=str(access.role) if access.role else None,
                                edits=body["edits"], note=body["note"])
    db.session.commit()
    return approval


@api.post("/approvals/<approval_id>/link")
@require("approval.decide")
@api.output(ApprovalLinkOut)
@api.doc(tags=TAGS, summary="A single-use signed link to decide this approval without signing in")
def approval_link(approval_id: str) -> dict[str, str]:
    access = current_access()
    approval = approvals.get_approval(approval_id)
    # The link decides without a role check, so only someone who may decide may hand it
    # out; otherwise an operator could mint a link for an approval assigned to admins.
    if not approvals.may_decide(approval, access.principal.user.id,
                                str(access.role) if access.role else None):
        raise Forbidden("this approval is assigned to someone else")
    token = approvals.link_token(approval, current_app.config["SECRET_KEY"])
    base = domains.public_base_url(approval.tenant_id)
    return {"url": base + url_for("hooks.approval_page", token=token)}
