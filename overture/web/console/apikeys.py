"""API keys of the workspace in use: create one (its secret is shown this once) and
revoke. The secret is never stored or kept in the session: it is in one response."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from overture.platform.db import db, utcnow
from overture.platform.errors import ValidationFailed
from overture.tenants import apikeys
from overture.web.console import bp
from overture.web.console.context import console_access, page, render
from overture.web.console.forms import FormErrors, form_errors, status_of

EXPIRIES = {"": None, "30": 30, "90": 90, "365": 365}


def _page(errors: FormErrors | None = None, created: Any = None, token: str | None = None,
          form: dict[str, str] | None = None) -> Any:
    access = console_access()
    keys = apikeys.list_keys(access, None, 200).items
    keys.sort(key=lambda k: (k.revoked_at is not None, -k.created_at.timestamp()))
    body, status = render("console/api_keys.html", status_of(errors or FormErrors()),
                          title="API keys", keys=keys, created=created, token=token,
                          errors=errors or FormErrors(), form=form or {"name": "", "expires": "90"},
                          can_manage=access.can("apikey.manage"), now=utcnow())
    # The page that shows a secret must not be kept by the browser or a proxy.
    return body, status, {"Cache-Control": "no-store"}


@bp.get("/api-keys")
@page("apikey.read")
def api_keys() -> Any:
    return _page()


@bp.post("/api-keys")
@page("apikey.manage")
def create_api_key() -> Any:
    form = {"name": request.form.get("name", ""), "expires": request.form.get("expires", "")}
    with form_errors({"name", "scopes", "expires_at"}) as errors:
        if form["expires"] not in EXPIRIES:
            raise ValidationFailed.field("expires_at", "choose one of the offered lifetimes")
        days = EXPIRIES[form["expires"]]
        key, token = apikeys.create_key(console_access(), form["name"], None,
                                        utcnow() + timedelta(days=days) if days else None)
        db.session.commit()
        return _page(created=key, token=token)
    return _page(errors, form=form)


@bp.post("/api-keys/<key_id>/revoke")
@page("apikey.manage")
def revoke_api_key(key_id: str) -> Response:
    access = console_access()
    key = apikeys.revoke(access, apikeys.get_key(access, key_id))
    db.session.commit()
    flash(f"The key {key.name} ({key.prefix}…) is revoked; calls with it are refused.", "ok")
    return redirect(url_for("console.api_keys"))
