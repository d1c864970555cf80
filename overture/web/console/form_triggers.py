"""The Triggers page's hosted forms: a public form per trigger, made from the
workflow's input schema (orchestration/form_triggers.py, as the API's form-triggers);
its address is copied in a click or opened in a new tab."""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.wrappers import Response

from overture.orchestration import form_triggers, workflows
from overture.platform.errors import ValidationFailed
from overture.web.console import bp
from overture.web.console.context import console_access, page
from overture.web.console.forms import form_errors
from overture.web.console.triggers import _page, _saved

FIELDS = {"workflow_id", "title", "description", "success_message"}
TEXTS = ("workflow_id", "title", "description", "success_message")


@bp.post("/triggers/forms")
@page("workflow.edit")
def create_form_trigger() -> Any:
    form = {k: request.form.get(k, "") for k in TEXTS}
    form["honeypot"] = "on" if request.form.get("honeypot") else ""
    with form_errors(FIELDS) as errors:
        if not form["workflow_id"]:
            raise ValidationFailed.field("workflow_id", "choose a workflow")
        workflow = workflows.get_workflow(form["workflow_id"])
        form_triggers.create(workflow, form["title"], form["description"],
                             form["success_message"], honeypot=bool(form["honeypot"]),
                             created_by=console_access().principal.user.id)
        return _saved(f"The form “{form['title'].strip()}” is open: share its address.",
                      "forms")
    return _page(hosted_errors=errors, hosted_form=form)


@bp.post("/triggers/forms/<trigger_id>")
@page("workflow.edit")
def update_form_trigger(trigger_id: str) -> Any:
    """A refused edit reopens that form's editor with its messages and what was typed."""
    found = form_triggers.get(trigger_id)
    form = {k: request.form.get(k, "") for k in TEXTS[1:]}
    form["honeypot"] = "on" if request.form.get("honeypot") else ""
    with form_errors(FIELDS) as errors:
        form_triggers.update(found, title=form["title"], description=form["description"],
                             success_message=form["success_message"],
                             honeypot=bool(form["honeypot"]))
        return _saved("The form is changed.", "forms")
    return _page(hosted_errors=errors, hosted_form={**form, "editing": trigger_id})


@bp.post("/triggers/forms/<trigger_id>/toggle")
@page("workflow.edit")
def toggle_form_trigger(trigger_id: str) -> Response:
    found = form_triggers.get(trigger_id)
    form_triggers.update(found, enabled=not found.enabled)
    return _saved(f"The form is {'open' if found.enabled else 'closed: it takes no submissions'}.",
                  "forms")


@bp.post("/triggers/forms/<trigger_id>/delete")
@page("workflow.edit")
def delete_form_trigger(trigger_id: str) -> Response:
    form_triggers.delete(form_triggers.get(trigger_id))
    return _saved("The form is deleted: its address no longer works. The runs it started "
                  "stay.", "forms")
