"""Pages for getting back in by email: forgotten password and sign-in links.

Asking for a link answers the same page, status and words whoever the address
belongs to (`recovery` does comparable work either way). Opening a link only shows a
form or a button; the link is used up by the POST that follows, so a mail scanner
that fetches every link in a message spends nothing. Each page that sends mail or
checks a link is rate-limited, per address and (for requests) per typed email.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from flask import Blueprint, current_app, g, render_template, request, url_for
from flask_limiter.errors import RateLimitExceeded
from werkzeug.wrappers import Response

from overture.platform.db import db
from overture.platform.errors import LinkNotUsable, ValidationFailed
from overture.tenants import domains, recovery
from overture.tenants.users import normalize_email
from overture.web.extensions import client_address, limiter
from overture.web.signin_flow import complete_sign_in

bp = Blueprint("recovery", __name__)

SENT = "If an account exists for that address, we have sent a link."
# Requests send mail: a few per mailbox (an attacker cannot flood one inbox), more
# per address (an office behind one NAT address still gets its links).
REQUESTS_PER_EMAIL = "5 per 15 minutes"
REQUESTS_PER_ADDRESS = "30 per hour"
# Opening or using a link checks a secret. 256 random bits cannot be guessed; this
# bounds the load of someone trying.
LINK_CHECKS_PER_ADDRESS = "30 per minute"


def typed_email() -> str:
    """The rate-limit key of a request for a link: the address as typed (in the form
    or the API's JSON body), folded."""
    typed = request.form.get("email")
    if typed is None:
        body = request.get_json(silent=True)
        typed = body.get("email") if isinstance(body, dict) else None
    return str(typed or "").strip().lower()


# Shared by the page and the API, so that both together get one allowance.
resets_per_email = limiter.shared_limit(REQUESTS_PER_EMAIL, scope="password-reset-email",
                                        key_func=typed_email, methods=["POST"])
resets_per_address = limiter.shared_limit(REQUESTS_PER_ADDRESS,
                                          scope="password-reset-address",
                                          key_func=client_address, methods=["POST"])
link_checks = limiter.shared_limit(LINK_CHECKS_PER_ADDRESS, scope="emailed-link-check",
                                   key_func=client_address)


def host_tenant_id() -> uuid.UUID | None:
    """The tenant whose verified domain this request came to: a mail it asks for is
    about that tenant (its brand, its address)."""
    return g.get("host_tenant_id")  # type: ignore[no-any-return]


def absolute_link(endpoint: str, token: str) -> str:
    """A link for a mail: on the public address of the tenant whose domain the request
    came to, else the installation's, whatever Host was sent."""
    return domains.public_base_url(host_tenant_id()) + url_for(endpoint, token=token)


def link_not_usable(error: LinkNotUsable, ask_again: str) -> tuple[str, int]:
    """The page for an unusable link: 404 for one we never issued, 410 for the rest."""
    status = 404 if error.reason == "unknown" else 410
    return render_template("link_unusable.html", error=error, ask_again=ask_again), status


def _no_store(page: str | tuple[str, int]) -> Response:
    """Pages behind a link are never cached (the address holds the secret)."""
    response = current_app.make_response(page)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(RateLimitExceeded)
def _too_many(error: RateLimitExceeded) -> tuple[str, int]:
    return render_template("link_rate_limited.html"), 429


def _request_page(template: str,
                  send: Callable[[str, recovery.LinkBuilder, uuid.UUID | None], None],
                  link_for: recovery.LinkBuilder) -> str | tuple[str, int]:
    """GET shows the form; POST has `send` mail a link and answers SENT, whoever asked."""
    if request.method == "GET":
        return render_template(template, sent=None, error=None, email="")
    raw = request.form.get("email", "")
    try:
        email = normalize_email(raw)
    except ValidationFailed as error:
        return render_template(template, sent=None, error=error.errors[0]["message"],
                               email=raw), 422
    send(email, link_for, host_tenant_id())
    db.session.commit()
    return render_template(template, sent=SENT, error=None, email="")


# --------------------------------------------------------------------------- password reset


@bp.route("/password/forgot", methods=["GET", "POST"])
@resets_per_email
@resets_per_address
def forgot_password() -> str | tuple[str, int]:
    return _request_page("password_forgot.html", recovery.request_password_reset,
                         lambda secret: absolute_link("recovery.reset_password", secret))


def _reset_form(token: str, error: str | None = None, status: int = 200) -> Response:
    user = recovery.reset_link_user(token)
    return _no_store((render_template("password_reset.html", email=user.email, error=error),
                      status))


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@link_checks
def reset_password(token: str) -> Response:
    try:
        if request.method == "GET":
            return _reset_form(token)
        password = request.form.get("password", "")
        if password != request.form.get("confirm", password):
            return _reset_form(token, "The two passwords differ.", 422)
        try:
            user = recovery.reset_password(token, password)
        except ValidationFailed as error:  # the link was not used: try again
            db.session.rollback()
            return _reset_form(token, f"The password {error.errors[0]['message']}.", 422)
    except LinkNotUsable as error:
        db.session.rollback()
        return _no_store(link_not_usable(error, url_for("recovery.forgot_password")))
    recovery.signed_in(user, "password_reset")
    return complete_sign_in(user, "password_reset")


# --------------------------------------------------------------------------- sign-in links


@bp.route("/login/link", methods=["GET", "POST"])
@limiter.limit(REQUESTS_PER_EMAIL, key_func=typed_email, methods=["POST"])
@limiter.limit(REQUESTS_PER_ADDRESS, key_func=client_address, methods=["POST"])
def request_link() -> str | tuple[str, int]:
    return _request_page("link_request.html", recovery.request_sign_in_link,
                         lambda secret: absolute_link("recovery.use_link", secret))


@bp.route("/login/link/<token>", methods=["GET", "POST"])
@link_checks
def use_link(token: str) -> Response:
    try:
        if request.method == "GET":
            user = recovery.sign_in_link_user(token)
            return _no_store(render_template("link_confirm.html", email=user.email))
        user = recovery.redeem_sign_in_link(token)
    except LinkNotUsable as error:
        db.session.rollback()
        return _no_store(link_not_usable(error, url_for("recovery.request_link")))
    return complete_sign_in(user, "link")
