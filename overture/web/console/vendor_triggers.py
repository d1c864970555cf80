"""The Triggers page's app events: a workflow started by Slack, HubSpot, Zendesk, Jira
or Typeform events (orchestration/vendor_triggers.py, as the API's vendor-triggers)."""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.wrappers import Response

from overture.orchestration import vendor_events, vendor_triggers, workflows
from overture.platform.errors import ValidationFailed
from overture.web.console import bp
from overture.web.console.context import console_access, page
from overture.web.console.forms import form_errors
from overture.web.console.triggers import _page, _saved

FIELDS = {"workflow_id", "source", "secret", "channels"}


def _channels(raw: str) -> list[str]:
    return [c.strip() for c in raw.replace("\n", ",").split(",") if c.strip()]


@bp.post("/triggers/apps")
@page("workflow.edit")
def create_vendor_trigger() -> Any:
    # the secret is never sent back into the form: a refused post asks for it again
    form = {k: request.form.get(k, "") for k in ("workflow_id", "source", "channels")}
    with form_errors(FIELDS | {"settings.channels"}) as errors:
        if not form["workflow_id"]:
            raise ValidationFailed.field("workflow_id", "choose a workflow")
        workflow = workflows.get_workflow(form["workflow_id"])
        spec = vendor_events.source(form["source"])
        settings = {"channels": _channels(form["channels"])} if spec.channels else {}
        access = console_access()
        vendor_triggers.create(access, workflow, form["source"], request.form.get("secret", ""),
                               settings, None, access.principal.user.id)
        return _saved(f"{workflow.name} now runs on each {spec.label} event: paste its URL "
                      f"into {spec.label}.", "apps")
    if "settings.channels" in errors:
        errors["channels"] = errors.pop("settings.channels")
    return _page(vendor_errors=errors, vendor_form=form)


@bp.post("/triggers/apps/<trigger_id>/toggle")
@page("workflow.edit")
def toggle_vendor_trigger(trigger_id: str) -> Response:
    found = vendor_triggers.get(trigger_id)
    vendor_triggers.update(console_access(), found, enabled=not found.enabled)
    return _saved(f"The trigger is {'on' if found.enabled else 'off: its calls are refused'}.",
                  "apps")


@bp.post("/triggers/apps/<trigger_id>/delete")
@page("workflow.edit")
def delete_vendor_trigger(trigger_id: str) -> Response:
    vendor_triggers.delete(console_access(), vendor_triggers.get(trigger_id))
    return _saved("The trigger and its signing secret are deleted; the runs it started stay.",
                  "apps")
