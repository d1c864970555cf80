"""What a portal user does: sees what the workspace offers, starts a run from a form,
follows their runs (kept live by htmx polling while they go on), answers the
approvals assigned to them, and downloads their data. Every page goes through
`orchestration.portal.customer`, which shows them their own things only."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, flash, redirect, request, url_for

from overture.orchestration.models import FINISHED_RUN
from overture.orchestration.portal import customer as service
from overture.platform.db import db, utcnow
from overture.platform.errors import Conflict, ValidationFailed
from overture.web.portal import bp, run_form
from overture.web.portal.context import customer, person, render

RECENT = 5
STATUS_WORDS = {"queued": "Queued", "running": "In progress", "succeeded": "Done",
                "failed": "Could not be completed", "cancelled": "Cancelled",
                "timed_out": "Took too long", "waiting": "Waiting", "skipped": "Done"}


@bp.app_template_filter("portal_status")
def portal_status(status: str) -> str:
    return STATUS_WORDS.get(status, status.replace("_", " ").capitalize())


@bp.get("/")
@customer
def home() -> Any:
    user = person()
    offers = service.offers()
    return render("portal/home.html", title="Home",
                  workflows=[o for o in offers if o.kind == "workflow"],
                  agents=[o for o in offers if o.kind == "agent"],
                  recent=service.summaries(service.my_runs(user.id, RECENT)),
                  approvals=service.my_approvals(user.id))


# --------------------------------------------------------------------------- starting a run


@bp.route("/start/<workflow_id>", methods=["GET", "POST"])
@customer
def start_form(workflow_id: str) -> Any:
    workflow, publication = service.workflow_offer(workflow_id)
    schema = service.input_schema(workflow)
    fields = run_form.fields_of(schema)
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    if request.method == "POST":
        values = run_form.shown(schema, request.form)
        data, errors = run_form.read(schema, request.form)
        names = {f.name for f in fields}
        if errors:  # and what else is wrong, to say it all at once
            errors = {**run_form.field_messages(service.input_problems(workflow, data),
                                                names), **errors}
        else:
            try:
                run = service.start(workflow, data, person().id)
                db.session.commit()
                flash("Started. We will show the result here as soon as it is ready.", "ok")
                return redirect(url_for("portal.run_page", run_id=run.id))
            except ValidationFailed as invalid:
                db.session.rollback()
                errors = run_form.field_messages(invalid.errors, names)
            except Conflict as conflict:  # the workflow stopped being runnable meanwhile
                db.session.rollback()
                errors = {"_form": conflict.detail}
    return render("portal/start.html", 422 if errors else 200, title=publication.label,
                  offer=publication, workflow_id=workflow.id, fields=fields, values=values,
                  errors=errors)


# --------------------------------------------------------------------------- their runs


@bp.get("/runs")
@customer
def runs_page() -> Any:
    user = person()
    return render("portal/runs.html", title="My runs",
                  runs=service.summaries(service.my_runs(user.id)))


def _run_context(run_id: str) -> dict[str, Any]:
    user = person()
    view = service.run_view(service.my_run(run_id, user.id), user.id)
    return {"run": view, "finished": view["status"] in FINISHED_RUN}


@bp.get("/runs/<run_id>")
@customer
def run_page(run_id: str) -> Any:
    context = _run_context(run_id)
    return render("portal/run.html", title=context["run"]["label"], **context)


@bp.get("/runs/<run_id>/live")
@customer
def run_live(run_id: str) -> Any:
    """The part of the run page that changes, read again every few seconds until the
    run ends (the last answer carries no trigger, so htmx stops asking)."""
    return render("portal/_run_live.html", **_run_context(run_id))


# --------------------------------------------------------------------------- approvals


@bp.get("/approvals")
@customer
def approvals_page() -> Any:
    return _approvals()


def _approvals(errors: dict[str, str] | None = None, status: int = 200) -> Any:
    return render("portal/approvals.html", status, title="Approvals",
                  pending=service.my_approvals(person().id), errors=errors or {},
                  note=request.form.get("note", ""))


@bp.post("/approvals/<approval_id>")
@customer
def decide(approval_id: str) -> Any:
    user = person()
    approval = service.my_approval(approval_id, user.id)
    decision = request.form.get("decision", "")
    try:
        service.decide(approval, decision, request.form.get("note", ""), user.id)
        db.session.commit()
    except ValidationFailed as invalid:
        db.session.rollback()
        return _approvals({str(approval.id): invalid.errors[0]["message"]}, 422)
    except Conflict:
        db.session.rollback()
        return _approvals({"_form": "This request was already answered."}, 409)
    flash("Approved. Thank you." if decision == "approve" else "Rejected. Thank you.", "ok")
    return redirect(url_for("portal.approvals_page"))


# --------------------------------------------------------------------------- their data


@bp.get("/my-data")
@customer
def export() -> Response:
    user = person()
    body = json.dumps(service.export(user), ensure_ascii=False, indent=2, default=str)
    response = Response(body, mimetype="application/json")
    day = utcnow().date().isoformat()
    response.headers["Content-Disposition"] = f'attachment; filename="my-data-{day}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response
