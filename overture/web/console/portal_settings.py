"""The Portal page: what the workspace shows its end customers in its portal, per
workflow and per agent (published or not, label, description, and for a workflow the
step outputs a customer sees and whether the final output is shown). The services
and permissions are the API's (`/api/v1/portal/...`): reading needs `workflow.read`,
changing `workflow.edit`."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from overture.orchestration import workflows
from overture.orchestration.agents import service as agents
from overture.orchestration.portal import publishing
from overture.platform.db import db
from overture.web.api.portal import portal_address
from overture.web.console import bp
from overture.web.console.context import console_access, page, register_nav, render
from overture.web.console.forms import FormErrors, form_errors, status_of

FIELDS = {"published", "label", "description", "visible_steps", "show_output"}


def _page(errors: FormErrors | None = None, failed: str | None = None) -> Any:
    access = console_access()
    items = workflows.list_workflows(None, 200).items
    items.sort(key=lambda w: w.name.lower())
    bots = agents.list_agents(None, 200).items
    bots.sort(key=lambda a: a.name.lower())
    shown = {p.target_id: p for p in publishing.list_publications()}
    return render("console/portal_settings.html", status_of(errors or FormErrors()),
                  title="Portal", workflows=items, agents=bots, shown=shown,
                  steps={w.id: publishing.step_choices(w) for w in items},
                  live={w.id: w.current_version_id is not None for w in items},
                  can_edit=access.can("workflow.edit"), errors=errors or FormErrors(),
                  failed=failed, form=request.form,
                  portal_home=portal_address(access.require_tenant()))


@bp.get("/portal-settings", endpoint="portal_settings")
@page("workflow.read")
def portal_settings() -> Any:
    return _page()


def _settings(workflow: bool) -> publishing.Settings:
    form = request.form
    return publishing.Settings(
        published=form.get("published") == "on", label=form.get("label", ""),
        description=form.get("description", ""),
        visible_steps=form.getlist("visible_steps") if workflow else None,
        show_output=form.get("show_output") == "on" if workflow else None)


def _saved(label: str, published: bool) -> Response:
    flash(f"Saved. {label} is {'shown in' if published else 'not shown in'} the portal.", "ok")
    return redirect(url_for("console.portal_settings"))


@bp.post("/portal-settings/workflows/<workflow_id>")
@page("workflow.edit")
def publish_workflow(workflow_id: str) -> Any:
    with form_errors(FIELDS) as errors:
        workflow = workflows.get_workflow(workflow_id)
        publication = publishing.set_workflow(workflow, _settings(True),
                                              console_access().principal.user.id)
        db.session.commit()
        return _saved(publication.label, publication.published)
    return _page(errors, f"workflow-{workflow_id}")


@bp.post("/portal-settings/agents/<agent_id>")
@page("workflow.edit")
def publish_agent(agent_id: str) -> Any:
    with form_errors(FIELDS) as errors:
        agent = agents.get_agent(agent_id)
        publication = publishing.set_agent(agent, _settings(False),
                                           console_access().principal.user.id)
        db.session.commit()
        return _saved(publication.label, publication.published)
    return _page(errors, f"agent-{agent_id}")


register_nav("Portal", "console.portal_settings", "workflow.read")
