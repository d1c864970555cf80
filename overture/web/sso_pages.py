"""Sign in with an organisation's OpenID Connect provider.

    GET /sso                     which organisation? (its slug)
    GET /sso/<slug>/start        discovery, then off to the provider (PKCE, state, nonce)
    GET /sso/callback            state checked, code exchanged, ID token checked, signed in

State, nonce and the PKCE verifier wait in this browser's session (a signed cookie
before sign-in) and are taken out on the first callback: a callback replayed, or one
from a sign-in this browser did not start, finds nothing and is refused. Every way
this can fail ends on a page that says what went wrong (4xx, or 502 when the provider
could not be used), with `auth.sso_failed` in the organisation's audit log.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from flask import Blueprint, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from overture.platform.db import db
from overture.platform.errors import OvertureError
from overture.platform.logging import get_logger
from overture.tenants import oidc, sso
from overture.tenants.access import find_tenant
from overture.web.extensions import client_address, limiter
from overture.web.signin_flow import complete_sign_in

bp = Blueprint("sso", __name__)
log = get_logger(__name__)
PENDING = "sso_pending"
PENDING_TTL = 600  # seconds a sign-in may spend at the provider
# One budget per address for starting and finishing: each start costs a discovery
# request to the provider, each callback a token request.
SSO_PER_ADDRESS = "30 per minute"
sso_limit = limiter.shared_limit(SSO_PER_ADDRESS, scope="sso", key_func=client_address)


class _Failed(OvertureError):
    status = 400
    code = "sso-failed"
    title = "Single sign-on failed"

    def __init__(self, reason: str, detail: str, status: int = 400) -> None:
        super().__init__(detail, reason=reason)
        self.reason, self.status = reason, status


@bp.get("/sso")
def choose() -> str | Response:
    slug = request.args.get("organisation", "").strip()
    if slug:
        return redirect(url_for("sso.start", tenant_slug=slug, next=request.args.get("next")))
    return render_template("sso_choose.html", next=request.args.get("next", ""))


@bp.get("/sso/<tenant_slug>/start")
@sso_limit
def start(tenant_slug: str) -> Response | tuple[str, int]:
    tenant = find_tenant(tenant_slug) if len(tenant_slug) <= 80 else None
    tenant_id = tenant.id if tenant is not None else None
    try:
        if tenant is None:
            raise _Failed("unknown_organisation", "there is no organisation with this name", 404)
        login = sso.login_provider(tenant)
        url, pending = oidc.authorization_request(login, _callback_url())
    except OvertureError as exc:
        return _failure_page(tenant_id, exc)
    session[PENDING] = {"state": pending.state, "nonce": pending.nonce,
                        "verifier": pending.code_verifier, "tenant": str(tenant.id),
                        "next": request.args.get("next") or "", "at": time.time()}
    return redirect(url)


@bp.get("/sso/callback")
@sso_limit
def callback() -> Response | tuple[str, int]:
    pending: dict[str, Any] | None = session.pop(PENDING, None)
    tenant_id = None
    try:
        tenant = _check_state(pending)
        tenant_id = tenant.id
        if request.args.get("error"):
            raise _Failed("provider_error", "the identity provider did not sign you in: "
                          + request.args.get("error", "")[:100]
                          + _description(), 403)
        login = sso.login_provider(tenant)
        claims = oidc.exchange(login, request.args.get("code", ""), _callback_url(),
                               oidc.Pending(pending["state"], pending["nonce"],
                                            pending["verifier"]))
        user = sso.sign_in(login, claims)
    except OvertureError as exc:
        return _failure_page(tenant_id, exc)
    return complete_sign_in(user, "sso", pending.get("next") or None)


def _check_state(pending: dict[str, Any] | None) -> Any:
    state = request.args.get("state", "")
    if (not isinstance(pending, dict) or not state
            or not hmac.compare_digest(str(pending.get("state", "")), state)):
        raise _Failed("state_mismatch", "this sign-in was not started from this browser, "
                                        "or was already used; start again")
    if float(pending.get("at", 0)) < time.time() - PENDING_TTL:
        raise _Failed("expired", "this sign-in took too long; start again")
    tenant = find_tenant(str(pending.get("tenant", "")))
    if tenant is None:
        raise _Failed("unknown_organisation", "the organisation is gone", 404)
    return tenant


def _description() -> str:
    text = request.args.get("error_description", "")[:200]
    return f" ({text})" if text.isprintable() and text else ""


def _callback_url() -> str:
    return url_for("sso.callback", _external=True)


def _failure_page(tenant_id: Any, exc: OvertureError) -> tuple[str, int]:
    """Undo what the attempt wrote, record why it failed, and say so."""
    db.session.rollback()
    reason = getattr(exc, "reason", None) or exc.code
    sso.record_failure(tenant_id, reason, exc.detail)
    db.session.commit()
    log.info("auth.sso_failed", reason=reason, ip=client_address())
    status = exc.status if exc.status != 500 else 503  # ours, and said as such: never a 500
    return render_template("sso_error.html", reason=reason, detail=exc.detail,
                           status=status), status
