"""Client workspaces of an agency: create one, suspend and resume it."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from overture.platform.db import db
from overture.tenants import lifecycle
from overture.web.console import bp, templates
from overture.web.console.context import choose, console_access, page, render
from overture.web.console.forms import form_errors, status_of


@bp.route("/workspaces/new", methods=["GET", "POST"])
@page("workspace.create")
def new_workspace() -> Any:
    access = console_access()
    form = {"name": request.form.get("name", ""), "slug": request.form.get("slug", ""),
            "switch": request.form.get("switch") == "on" or request.method == "GET",
            "template_id": request.form.get("template_id", "")}
    errors = None
    if request.method == "POST":
        with form_errors({"name", "slug", "kind", "template_id"}) as errors:
            if request.form.get("source") == "template":
                return templates.provision(access, form["template_id"], form["name"],
                                           form["slug"].strip() or None)
            tenant = lifecycle.create_workspace(access, form["name"],
                                                form["slug"].strip() or None)
            db.session.commit()
            flash(f"Workspace {tenant.name} created.", "ok")
            if form["switch"]:
                choose(tenant)
            return redirect(url_for("console.home"))
    return render("console/workspace_new.html", status_of(errors or {}), title="New workspace",
                  form=form, errors=errors or {}, agency=access.tenant,
                  templates=templates.offered(access))


def _change(tenant_id: str, act: Any, verb: str) -> Response:
    access = console_access()
    tenant = act(access, lifecycle.managed_tenant(access, tenant_id))
    db.session.commit()
    flash(f"{tenant.name} is {verb}.", "ok")
    return redirect(request.referrer if _same_site(request.referrer) else url_for("console.home"))


def _same_site(url: str | None) -> bool:
    return bool(url) and url.startswith(request.host_url)  # type: ignore[union-attr]


@bp.post("/workspaces/<tenant_id>/suspend")
@page("workspace.manage")
def suspend_workspace(tenant_id: str) -> Response:
    return _change(tenant_id, lifecycle.suspend, "suspended: its users and keys are refused")


@bp.post("/workspaces/<tenant_id>/resume")
@page("workspace.manage")
def resume_workspace(tenant_id: str) -> Response:
    return _change(tenant_id, lifecycle.resume, "active again")
