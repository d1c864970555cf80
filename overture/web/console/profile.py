"""The signed-in person's own page: their name, their password, their sessions.
The same services as /api/v1/me/*, with the same limits."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from overture.platform.db import db
from overture.platform.errors import ReauthenticationRequired
from overture.tenants import accounts, mfa
from overture.tenants import sessions as store
from overture.web import sessions
from overture.web.api.sessions import password_checks
from overture.web.console import bp
from overture.web.console.context import page, render
from overture.web.console.forms import FormErrors, form_errors, status_of


def _me() -> Any:
    return current_user._get_current_object()


def _page(errors: FormErrors | None = None, name: str | None = None) -> Any:
    user = _me()
    current = sessions.current_record_id()
    records = store.live_sessions(user.id)
    records.sort(key=lambda r: (r.id != current, -r.last_seen_at.timestamp()))
    return render("console/profile.html", status_of(errors or FormErrors()), title="Profile",
                  me=user, mfa=mfa.status(user), name=user.name if name is None else name,
                  records=records, current=current, errors=errors or FormErrors())


@bp.get("/profile")
@page()
def profile() -> Any:
    return _page()


@bp.post("/profile/name")
@page()
def rename_me() -> Any:
    name = request.form.get("name", "")
    with form_errors({"name"}) as errors:
        accounts.rename(_me(), name)
        db.session.commit()
        flash("Your name is saved.", "ok")
        return redirect(url_for("console.profile"))
    return _page(errors, name)


@bp.post("/profile/password")
@password_checks
@page()
def change_password() -> Any:
    errors = FormErrors()
    new, again = request.form.get("new_password", ""), request.form.get("new_password_again", "")
    if new != again:
        errors["new_password_again"] = "The two new passwords differ."  # noqa: S105
        return _page(errors)
    with form_errors({"current_password", "new_password"}) as errors:
        try:
            ended = accounts.change_password(_me(), request.form.get("current_password", ""),
                                             new, sessions.current_record_id())
        except accounts.WrongPassword:
            db.session.commit()  # the failed attempt is audited
            raise
        db.session.commit()
        sessions.mark_authenticated_now()
        flash("Your password is changed." + (
            f" {ended} other session{'s' if ended != 1 else ''} ended." if ended else ""), "ok")
        return redirect(url_for("console.profile"))
    return _page(errors)


@bp.post("/profile/sessions/<session_id>/revoke")
@page()
def revoke_session(session_id: str) -> Response | Any:
    try:
        sessions.require_recent_authentication()
    except ReauthenticationRequired:
        errors = FormErrors(_form="To end a session, sign in again first: this needs a sign-in "
                                  "from the last few minutes.")
        return _page(errors)
    record = accounts.revoke_own_session(_me(), session_id)
    db.session.commit()
    sessions.forget_if_current(record.id)
    if not current_user.is_authenticated:
        return redirect(url_for("console.login"))
    flash("The session is ended.", "ok")
    return redirect(url_for("console.profile"))


BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"),
            ("Chrome/", "Chrome"), ("Safari/", "Safari"), ("curl/", "curl"))
SYSTEMS = (("Windows", "Windows"), ("Android", "Android"), ("iPhone", "iOS"),
           ("iPad", "iPadOS"), ("Mac OS X", "macOS"), ("Linux", "Linux"))


@bp.app_template_filter("user_agent")
def user_agent(raw: str | None) -> str:
    """A person's word for a User-Agent: "Firefox on macOS"."""
    if not raw:
        return "Unknown device"
    browser = next((name for mark, name in BROWSERS if mark in raw), "A browser")
    system = next((name for mark, name in SYSTEMS if mark in raw), None)
    return f"{browser} on {system}" if system else browser
