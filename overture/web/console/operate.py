"""Everyday pages of a workspace: its workflows, and the approvals waiting for people.
Deciding is the API's one exactly-once call (`approvals.decide`)."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from overture.orchestration import approvals, runs, workflows
from overture.orchestration.models import Approval
from overture.platform.db import db
from overture.web.console import bp
from overture.web.console.context import console_access, page, render
from overture.web.console.forms import FormErrors, form_errors, status_of

BUILDER = "builder.builder"  # the visual builder's page, where it is installed


@bp.get("/workflows")
@page("workflow.read")
def workflows_page() -> Any:
    items = workflows.list_workflows(None, 200).items
    items.sort(key=lambda w: w.updated_at, reverse=True)
    numbers = workflows.version_numbers(w.current_version_id for w in items)
    versions = {w.id: numbers.get(w.current_version_id) for w in items}
    return render("console/workflows.html", title="Workflows", items=items, versions=versions,
                  builder=BUILDER if BUILDER in current_app.view_functions else None,
                  can_edit=console_access().can("workflow.edit"))


@bp.route("/workflows/new", methods=["GET", "POST"], endpoint="new_workflow")
@page("workflow.edit")
def new_workflow() -> Any:
    """An empty workflow, then straight into the builder to give it its steps."""
    errors, form = FormErrors(), request.form
    if request.method == "POST":
        with form_errors({"name", "description"}) as errors:
            workflow = workflows.create_workflow(
                form.get("name", ""), form.get("description", "").strip(),
                created_by=console_access().principal.user.id)
            db.session.commit()
            if BUILDER in current_app.view_functions:  # its empty canvas says what to do
                return redirect(url_for(BUILDER, workflow_id=workflow.id))
            flash(f"Workflow {workflow.name} created.", "ok")
            return redirect(url_for("console.workflows_page"))
    return render("console/workflow_new.html", status_of(errors), title="New workflow",
                  form=form, errors=errors)


def _approvals_page(errors: FormErrors | None = None) -> Any:
    access = console_access()
    pending = approvals.list_approvals(None, 100).items
    pending.sort(key=lambda a: (a.deadline_at is None, a.deadline_at or a.created_at))
    role = str(access.role) if access.role else None
    mine = {a.id for a in pending if access.can("approval.decide")
            and approvals.may_decide(a, access.principal.user.id, role)}
    names = {w.id: w.name for w in workflows.list_workflows(None, 200).items}
    return render("console/approvals.html", status_of(errors or FormErrors()),
                  title="Approvals", pending=pending, mine=mine, names=names,
                  runs=_workflow_of(pending), errors=errors or FormErrors())


def _workflow_of(pending: list[Approval]) -> dict[Any, Any]:
    """The workflow of each approval, through its run."""
    flows = runs.workflow_ids(a.run_id for a in pending)
    return {a.id: flows.get(a.run_id) for a in pending}


@bp.get("/approvals", endpoint="approvals")
@page("run.read")
def approvals_page() -> Any:
    return _approvals_page()


def _edits(approval: Approval) -> dict[str, Any]:
    """The editable fields the person changed, read back as JSON where they are."""
    data = approval.data if isinstance(approval.data, dict) else {}
    edits: dict[str, Any] = {}
    for name in approval.editable_fields:
        raw = request.form.get(f"edit.{name}")
        if raw is None or raw == _shown(data.get(name)):
            continue
        try:
            edits[name] = json.loads(raw)
        except ValueError:
            edits[name] = raw
    return edits


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@bp.post("/approvals/<approval_id>/decision")
@page("approval.decide")
def decide_approval(approval_id: str) -> Response | Any:
    access = console_access()
    with form_errors({"decision", "edits"}) as errors:
        approval = approvals.get_approval(approval_id)
        decision = request.form.get("decision", "")
        approvals.decide(approval, decision, user_id=access.principal.user.id,
                         role=str(access.role) if access.role else None,
                         edits=_edits(approval), note=request.form.get("note") or None,
                         via="console")
        db.session.commit()
        flash(("Approved" if decision == "approve" else "Rejected")
              + f": {approval.prompt or 'the request'}", "ok")
        return redirect(url_for("console.approvals"))
    return _approvals_page(errors)


@bp.app_template_filter("shown")
def shown(value: Any) -> str:
    return _shown(value)
