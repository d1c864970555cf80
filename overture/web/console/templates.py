"""Templates (agency owners and admins): snapshot a client workspace as a template or
as its next version, provision a new client workspace from one (and see which
connections the client still has to fill in), roll a version out to the workspaces
made from it, canaries first, follow its progress and roll it back. The same
services as /api/v1/templates; roll-outs run in the request that starts them."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from overture.orchestration.templates import rollouts, service
from overture.orchestration.templates.catalogue import use_cases
from overture.orchestration.templates.models import RolloutStatus, StepStatus, Template
from overture.platform.db import db
from overture.platform.errors import Conflict, NotFound, ValidationFailed
from overture.tenants import lifecycle
from overture.tenants.access import Access
from overture.tenants.models import Tenant
from overture.web.console import bp
from overture.web.console.context import console_access, page, register_nav, render
from overture.web.console.forms import FormErrors, form_errors, status_of

register_nav("Templates", "console.templates", "workspace.manage", "admin")


def _clients(access: Access) -> dict[str, Tenant]:
    """The agency's client workspaces by id (names for the pages' tables)."""
    return {str(t.id): t for t in lifecycle.managed_tenants(access, None, 200).items}


def _list_page(errors: FormErrors | None = None, form: dict[str, str] | None = None) -> Any:
    access = console_access()
    errors = errors or FormErrors()
    if not access.tenant.is_agency:
        return render("console/templates.html", title="Templates", agency=None, rows=[],
                      clients={}, errors=errors, form={})
    listed = service.list_templates(access, None, 200).items
    versions, made = service.versions_of(listed), service.workspace_counts(listed)
    rows = [{"template": t, "versions": versions[t.id], "workspaces": made[t.id]}
            for t in listed]
    rows.sort(key=lambda r: r["template"].name.lower())
    return render("console/templates.html", status_of(errors), title="Templates",
                  agency=access.tenant, rows=rows, clients=_clients(access), errors=errors,
                  use_cases=list(use_cases().values()),
                  form=form or {"name": "", "workspace_id": ""})


@bp.get("/templates", endpoint="templates")
@page("workspace.manage")
def templates_page() -> Any:
    return _list_page()


@bp.post("/templates")
@page("workspace.manage")
def create_template() -> Any:
    form = {"name": request.form.get("name", "").strip(),
            "workspace_id": request.form.get("workspace_id", "")}
    with form_errors({"name", "workspace_id"}) as errors:
        template = service.create_template(console_access(), form["workspace_id"], form["name"])
        db.session.commit()
        flash(f"Template {template.name} created from a snapshot (version 1).", "ok")
        return redirect(url_for("console.template", template_id=template.id))
    return _list_page(errors, form)


@bp.post("/templates/use-cases")
@page("workspace.manage")
def create_use_case_template() -> Any:
    with form_errors({"use_case"}) as errors:
        template = service.create_from_use_case(console_access(),
                                                request.form.get("use_case", ""))
        db.session.commit()
        flash(f"Template {template.name} added from the ready-made use cases.", "ok")
        return redirect(url_for("console.template", template_id=template.id))
    return _list_page(errors)


def _detail(template: Template, errors: FormErrors | None = None,
            form: dict[str, Any] | None = None) -> Any:
    access = console_access()
    errors = errors or FormErrors()
    made = service.workspaces(template)
    return render("console/template.html", status_of(errors), title=template.name,
                  tpl=template, versions=service.versions(template), made=made,
                  clients=_clients(access), rollouts=rollouts.recent(template),
                  can_create=access.can("workspace.create"), errors=errors,
                  form=form or {"version": str(template.latest_version), "workspace_ids": [],
                                "canary_ids": [], "stop": False, "name": "", "slug": ""})


@bp.get("/templates/<template_id>", endpoint="template")
@page("workspace.manage")
def template_page(template_id: str) -> Any:
    return _detail(service.get_template(console_access(), template_id))


@bp.post("/templates/<template_id>/versions")
@page("workspace.manage")
def create_template_version(template_id: str) -> Any:
    access = console_access()
    template = service.get_template(access, template_id)
    with form_errors({"workspace_id"}) as errors:
        version = service.add_version(access, template, request.form.get("workspace_id", ""))
        db.session.commit()
        flash(f"Version {version.number} of {template.name} snapshotted.", "ok")
        return redirect(url_for("console.template", template_id=template.id))
    return _detail(template, errors)


def provision(access: Access, template_id: str, name: str, slug: str | None) -> Any:
    """A client workspace from the template; the page listing what is left to fill.
    Also what the new-workspace form calls when 'from a template' is chosen."""
    try:
        template = service.get_template(access, template_id)
    except NotFound:
        raise ValidationFailed.field("template_id", "choose one of the templates") from None
    workspace, placeholders = service.provision(access, template, name, slug or None)
    db.session.commit()
    return render("console/template_provisioned.html", 201, title=f"{workspace.name} created",
                  workspace=workspace, tpl=template, placeholders=placeholders)


def offered(access: Access) -> list[Template]:
    """The templates the new-workspace form offers (an agency's own; none elsewhere)."""
    if not access.tenant.is_agency or not access.can("workspace.manage"):
        return []
    return sorted(service.list_templates(access, None, 200).items, key=lambda t: t.name.lower())


@bp.post("/templates/<template_id>/provision")
@page("workspace.create")
def provision_workspace(template_id: str) -> Any:
    access = console_access()
    template = service.get_template(access, template_id)
    form = {"name": request.form.get("name", "").strip(),
            "slug": request.form.get("slug", "").strip()}
    with form_errors({"name", "slug"}) as errors:
        return provision(access, template_id, form["name"], form["slug"])
    return _detail(template, errors, {**_blank(template), **form})


def _blank(template: Template) -> dict[str, Any]:
    return {"version": str(template.latest_version), "workspace_ids": [], "canary_ids": [],
            "stop": False, "name": "", "slug": ""}


@bp.post("/templates/<template_id>/rollouts")
@page("workspace.manage")
def start_rollout(template_id: str) -> Any:
    access = console_access()
    template = service.get_template(access, template_id)
    form = {**_blank(template), "version": request.form.get("version", ""),
            "workspace_ids": request.form.getlist("workspace_ids"),
            "canary_ids": request.form.getlist("canary_ids"),
            "stop": request.form.get("stop_on_failure") == "on"}
    with form_errors({"version", "workspace_ids", "canary_ids"}) as errors:
        if not form["version"].isdigit():
            raise ValidationFailed.field("version", "choose a version")
        if not form["workspace_ids"]:
            raise ValidationFailed.field("workspace_ids", "choose at least one workspace")
        # A canary is rolled out to as well, ticked or not in the first column.
        chosen = list(dict.fromkeys(form["canary_ids"] + form["workspace_ids"]))
        rollout = rollouts.start(access, template, int(form["version"]), chosen,
                                 form["canary_ids"], form["stop"])
        flash(f"Roll-out of version {rollout.version}: {rollout.status.replace('_', ' ')}.",
              "ok" if rollout.status == RolloutStatus.COMPLETED else "error")
        return redirect(url_for("console.rollout", rollout_id=rollout.id))
    return _detail(template, errors, form)


@bp.get("/rollouts/<rollout_id>", endpoint="rollout")
@page("workspace.manage")
def rollout_page(rollout_id: str) -> Any:
    access = console_access()
    rollout = rollouts.get_rollout(rollout_id)
    template = service.get_template(access, rollout.template_id)
    rows = rollouts.progress(rollout)
    context = {"rollout": rollout, "tpl": template, "rows": rows,
               "clients": _clients(access),
               "can_roll_back": rollout.status != RolloutStatus.ROLLED_BACK and any(
                   r.status == StepStatus.APPLIED for r in rows)}
    if request.headers.get("HX-Request"):
        return render("console/rollout_progress.html", **context)
    return render("console/rollout.html", title=f"Roll-out of {template.name}", **context)


@bp.post("/rollouts/<rollout_id>/rollback")
@page("workspace.manage")
def rollback_rollout(rollout_id: str) -> Response:
    access = console_access()
    rollout = rollouts.get_rollout(rollout_id)
    try:
        rollout = rollouts.rollback(access, rollout)
    except Conflict as refused:
        flash(f"Not rolled back: {refused.detail}.", "error")
        return redirect(url_for("console.rollout", rollout_id=rollout.id))
    done = rollout.status == RolloutStatus.ROLLED_BACK
    flash("Rolled back: every workspace it changed is on its previous version again."
          if done else "Some workspaces could not be rolled back; see each one's error.",
          "ok" if done else "error")
    return redirect(url_for("console.rollout", rollout_id=rollout.id))
