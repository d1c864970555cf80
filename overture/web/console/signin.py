"""Sign in and sign out (server-rendered, CSRF-protected forms)."""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from overture.platform.db import db
from overture.platform.logging import get_logger
from overture.tenants.users import sign_in, sign_out
from overture.web import sessions
from overture.web.console import bp
from overture.web.extensions import client_address, limiter
from overture.web.signin_flow import complete_sign_in

log = get_logger(__name__)
FAILED_LOGIN = "Invalid email or password."
# Guessing one account is limited per address and email (OVERTURE_LOGIN_RATE_LIMIT);
# spraying many accounts from one address meets this ceiling. An office behind one
# NAT address still signs in.
LOGINS_PER_ADDRESS = "60 per minute"


def _login_limit() -> str:
    return current_app.extensions["overture.settings"].login_rate_limit


def _address_and_email() -> str:
    return f"{client_address()}|{request.form.get('email', '').strip().lower()}"


# Shared with the portals' sign-in pages: one allowance per address and email, wherever
# the password is tried.
password_per_email = limiter.shared_limit(_login_limit, scope="password-login",
                                          key_func=_address_and_email, methods=["POST"])
password_per_address = limiter.shared_limit(LOGINS_PER_ADDRESS, scope="password-login-address",
                                            key_func=client_address, methods=["POST"])


@bp.route("/login", methods=["GET", "POST"])
@password_per_email
@password_per_address
def login() -> str | Response | tuple[str, int]:
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(url_for("console.home"))
        return render_template("login.html", error=None, email="")
    email = request.form.get("email", "")
    user = sign_in(email, request.form.get("password", ""))
    if user is None:
        log.info("auth.login_failed", ip=client_address())
        db.session.commit()
        return render_template("login.html", error=FAILED_LOGIN, email=email), 401
    return complete_sign_in(user, "password", request.args.get("next"))


@bp.post("/logout")
@login_required
def logout() -> Response:
    sign_out(current_user._get_current_object())
    sessions.end()
    db.session.commit()
    return redirect(url_for("console.login"))

