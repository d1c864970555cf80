"""The OAuth2 callback: the app sends the user back here with a code and our state."""

from __future__ import annotations

from flask import Blueprint, redirect, request, session, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from overture.connectors import registry
from overture.connectors.models import Connection
from overture.connectors.oauth import complete, pop_state
from overture.platform.db import db, get_or_404, scoped_to
from overture.platform.errors import BadRequest
from overture.tenants import mfa
from overture.tenants.access import Principal, access_to, find_tenant

bp = Blueprint("oauth", __name__)


@bp.get("/oauth/callback")
@login_required
def callback() -> Response:
    """The state must be one this very session asked for; then the code is exchanged."""
    pending = pop_state(session, request.args.get("state"))
    if pending is None:
        raise BadRequest("this authorisation was not started from this session, or expired")
    if request.args.get("error"):
        raise BadRequest(f"the app declined: {request.args.get('error')}")
    tenant = find_tenant(pending["tenant"])
    if tenant is None:
        raise BadRequest("the workspace is gone")
    access = access_to(Principal(current_user._get_current_object()), tenant)
    mfa.require_enrolment_if_owed(access)
    access.require("credential.manage")
    with scoped_to(tenant.id, user_id=current_user.id):
        connection = get_or_404(Connection, pending["connection"], "connection")
        connector = registry.get(connection.connector_key)
        complete(connection, connector, request.args.get("code", ""),
                 url_for("oauth.callback", _external=True))
        db.session.commit()
    return redirect(pending.get("return_to") or url_for("console.home"))
