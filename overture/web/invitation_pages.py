"""The pages behind an invitation link: see the offer, then accept it.

Whoever holds the link sees the tenant, the role and who invited them. A person
without an account sets a name and password here and is signed in; a person with one
signs in (or is signed in already) and joins with one click. A link that cannot be
used says why, never with a 500. Forms are CSRF-protected like every console form.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from overture.platform.db import db
from overture.platform.errors import Conflict, Forbidden, LinkNotUsable, ValidationFailed
from overture.tenants import invitations
from overture.tenants.access import find_tenant
from overture.tenants.invitations import Offer
from overture.tenants.roles import Role
from overture.web.extensions import client_address, limiter
from overture.web.signin_flow import complete_sign_in

bp = Blueprint("invitation", __name__)
# The token in the path is a secret checked on every request: guessing is bounded per
# address (256 random bits make it hopeless anyway; the limit keeps the log quiet).
LINK_CHECKS = "60 per minute"
Page = str | tuple[str, int] | Response


def _unusable(error: LinkNotUsable) -> tuple[str, int]:
    status = 404 if error.reason == "unknown" else 410
    return render_template("invitation_unusable.html", reason=error.reason,
                           message=error.detail), status


def _signed_in_email() -> str | None:
    return current_user.email.lower() if current_user.is_authenticated else None


def _page(token: str, offer: Offer, error: str | None = None, status: int = 200,
          name: str = "") -> tuple[str, int]:
    """The page for this visitor: set up an account, sign in, join, or switch account."""
    signed_in = _signed_in_email()
    if signed_in is not None and signed_in != offer.email:
        state = "other"
    elif offer.needs_account:
        state = "new"
    elif signed_in is None:
        state = "signin"
    elif current_user.is_platform_admin:
        state, error = "refused", error or invitations.PLATFORM_ADMIN_REFUSED
    else:
        state = "join"
    login_url = url_for("console.login", next=url_for("invitation.show", token=token))
    return render_template("invitation.html", offer=offer, state=state, error=error,
                           token=token, login_url=login_url, name=name), status


@bp.get("/invite/<token>")
@limiter.limit(LINK_CHECKS, key_func=client_address)
def show(token: str) -> Page:
    try:
        return _page(token, invitations.offer(token))
    except LinkNotUsable as error:
        return _unusable(error)


@bp.post("/invite/<token>")
@limiter.limit(LINK_CHECKS, key_func=client_address)
def accept(token: str) -> Page:
    """Set up the invited account (no account yet) or join with the signed-in one."""
    try:
        offer = invitations.offer(token)
        if _signed_in_email() is not None:
            return _join(token, offer)
        return _create_account(token, offer)
    except LinkNotUsable as error:
        db.session.rollback()
        return _unusable(error)


def _create_account(token: str, offer: Offer) -> Page:
    if not offer.needs_account:
        return _page(token, offer, "An account with this email exists: sign in to accept.",
                     409)
    name = request.form.get("name", "").strip()[:120]
    password = request.form.get("password", "")
    if password != request.form.get("confirm", ""):
        return _page(token, offer, "The two passwords do not match.", 422, name)
    try:
        user = invitations.accept_as_new(token, name, password)
    except (ValidationFailed, Conflict) as error:
        db.session.rollback()
        message = error.detail
        if isinstance(error, ValidationFailed) and error.errors[0]["field"] == "password":
            message = f"Password {error.errors[0]['message']}."
        return _page(token, offer, message, error.status, name)
    return complete_sign_in(user, "invitation", _landing(offer))


def _landing(offer: Offer) -> str:
    """Where the new member starts: a portal user (the member role) in the workspace's
    portal, everyone else in the console."""
    tenant = find_tenant(str(offer.tenant_id)) if offer.role == Role.MEMBER else None
    return url_for("portal.home", slug=tenant.slug) if tenant else url_for("console.home")


def _join(token: str, offer: Offer) -> Page:
    try:
        invitations.accept_as(token, current_user._get_current_object())
    except Forbidden as error:
        db.session.rollback()
        return _page(token, offer, error.detail, 403)
    db.session.commit()
    return render_template("invitation_joined.html", offer=offer, landing=_landing(offer))
