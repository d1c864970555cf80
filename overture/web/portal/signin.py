"""Signing in to a portal: with a password, or with a link sent by email, and out again.

The same services as the console's sign-in (`users.sign_in`, `recovery`'s sign-in
links, `signin_flow.complete_sign_in`, so a second factor is asked for here too), with
the same limits, but every page and every link stays in this workspace's portal: the
emailed link opens the portal's own confirmation page, and each way in ends on the
portal's home (or the portal page that asked for a sign-in).
"""

from __future__ import annotations

from flask import current_app, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from overture.platform.db import db
from overture.platform.errors import LinkNotUsable, ValidationFailed
from overture.platform.logging import get_logger
from overture.tenants import domains, recovery
from overture.tenants.users import normalize_email, sign_in, sign_out
from overture.web import sessions
from overture.web.console.signin import FAILED_LOGIN, password_per_address, password_per_email
from overture.web.extensions import client_address, limiter
from overture.web.portal import bp
from overture.web.portal.context import render, workspace
from overture.web.recovery_pages import (
    REQUESTS_PER_ADDRESS,
    REQUESTS_PER_EMAIL,
    SENT,
    link_checks,
    typed_email,
)
from overture.web.signin_flow import complete_sign_in

log = get_logger(__name__)


def _home() -> str:
    return url_for("portal.home")


def _next() -> str:
    """Where to go once in: a page of this portal, else its home (never elsewhere)."""
    target = request.values.get("next", "")
    prefix = _home()
    if target.startswith(prefix) and "\\" not in target and target.isprintable() \
            and "//" not in target:
        return target
    return prefix


def _no_store(page: tuple[str, int]) -> Response:
    response = current_app.make_response(page)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/login", methods=["GET", "POST"])
@password_per_email
@password_per_address
def login() -> Response | tuple[str, int]:
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(_next())
        return render("portal/login.html", error=None, email="", next=_next())
    email = request.form.get("email", "")
    user = sign_in(email, request.form.get("password", ""))
    if user is None:
        log.info("auth.login_failed", ip=client_address(), portal=workspace().slug)
        db.session.commit()
        return render("portal/login.html", 401, error=FAILED_LOGIN, email=email, next=_next())
    return complete_sign_in(user, "password", _next())


@bp.route("/login/link", methods=["GET", "POST"])
@limiter.limit(REQUESTS_PER_EMAIL, key_func=typed_email, methods=["POST"])
@limiter.limit(REQUESTS_PER_ADDRESS, key_func=client_address, methods=["POST"])
def request_link() -> tuple[str, int]:
    """Ask for a link; the answer is the same whoever the address belongs to."""
    if request.method == "GET":
        return render("portal/link_request.html", sent=None, error=None, email="")
    raw = request.form.get("email", "")
    try:
        email = normalize_email(raw)
    except ValidationFailed as error:
        return render("portal/link_request.html", 422, sent=None, email=raw,
                      error=error.errors[0]["message"])
    # On the portal's own address (its domain, if verified), where the session is made.
    tenant_id = workspace().id
    base = domains.public_base_url(tenant_id)
    recovery.request_sign_in_link(
        email, lambda secret: base + url_for("portal.use_link", token=secret),
        tenant_id=tenant_id)
    db.session.commit()
    return render("portal/link_request.html", sent=SENT, error=None, email="")


@bp.route("/login/link/<token>", methods=["GET", "POST"])
@link_checks
def use_link(token: str) -> Response:
    """Opening the link shows a button; the POST that follows uses the link up (so a
    mail scanner that opens every link spends nothing)."""
    try:
        if request.method == "GET":
            user = recovery.sign_in_link_user(token)
            return _no_store(render("portal/link_confirm.html", email=user.email))
        user = recovery.redeem_sign_in_link(token)
    except LinkNotUsable as error:
        db.session.rollback()
        status = 404 if error.reason == "unknown" else 410
        return _no_store(render("portal/link_unusable.html", status, error=error))
    return complete_sign_in(user, "link", _home())


@bp.post("/logout")
def logout() -> Response:
    if current_user.is_authenticated:
        sign_out(current_user._get_current_object())
        sessions.end()
        db.session.commit()
    return redirect(url_for("portal.login"))
