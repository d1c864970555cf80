"""A workflow's failure alerts, on its page: mail each failed (or timed-out) run, and to
whom. The same service and checks as the API (`PATCH /workflows/<id>` with
`failure_alerts` and `failure_recipients`); changing them needs `workflow.edit`."""

from __future__ import annotations

import re
from typing import Any

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from overture.orchestration import notifications, workflows
from overture.orchestration.models import Workflow
from overture.platform.db import db
from overture.web.console import bp, failures
from overture.web.console.context import console_access, page
from overture.web.console.forms import FormErrors, form_errors

SEPARATORS = re.compile(r"[\s,;]+")


def panel(workflow: Workflow, errors: FormErrors | None = None,
          typed: str | None = None) -> dict[str, Any]:
    """What the page's Failure alerts panel shows."""
    chosen = list(workflow.failure_recipients or [])
    return {"enabled": workflow.failure_alerts, "chosen": chosen,
            "recipients": [u.email for u in notifications.failure_recipients(workflow)],
            "typed": typed if typed is not None else "\n".join(chosen),
            "errors": errors or FormErrors(),
            "can_edit": console_access().can("workflow.edit")}


@bp.post("/workflows/<workflow_id>/alerts")
@page("workflow.edit")
def save_alerts(workflow_id: str) -> Response | Any:
    workflow = workflows.get_workflow(workflow_id)
    typed = request.form.get("failure_recipients", "")[:20_000]
    enabled = request.form.get("failure_alerts") == "on"
    with form_errors({"failure_recipients"}) as errors:
        addresses = [a for a in SEPARATORS.split(typed) if a]
        workflows.set_failure_alerts(workflow, enabled, addresses)
        db.session.commit()
        flash("Failure alerts are on." if enabled else "Failure alerts are off.", "ok")
        return redirect(url_for("console.workflow", workflow_id=workflow.id) + "#alerts")
    workflow = workflows.get_workflow(workflow_id)  # as stored: the change was rolled back
    return failures.render_workflow(workflow, panel(workflow, errors, typed), 422)
