"""The workspace's own settings: its name, and the facts a person needs to give the
API or support (id, slug)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for

from overture.platform.db import db
from overture.tenants import lifecycle
from overture.web.console import bp
from overture.web.console.context import console_access, page, render
from overture.web.console.forms import FormErrors, form_errors, status_of


def _page(errors: FormErrors | None = None, name: str | None = None) -> Any:
    access = console_access()
    return render("console/settings.html", status_of(errors or FormErrors()), title="Settings",
                  t=access.tenant, name=access.tenant.name if name is None else name,
                  can_manage=access.can("tenant.manage"), errors=errors or FormErrors())


@bp.get("/settings")
@page("tenant.read")
def settings() -> Any:
    return _page()


@bp.post("/settings")
@page("tenant.manage")
def save_settings() -> Any:
    name = request.form.get("name", "")
    with form_errors({"name"}) as errors:
        lifecycle.rename_own(console_access(), name)
        db.session.commit()
        flash("Settings saved.", "ok")
        return redirect(url_for("console.settings"))
    return _page(errors, name)
