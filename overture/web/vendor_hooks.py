"""Vendors' signed event feeds: `POST /hooks/<tenant>/<source>/<token>` for Slack,
HubSpot, Zendesk, Jira and Typeform (orchestration/vendor_triggers.py checks and
reads them)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from overture.orchestration import vendor_events, vendor_triggers
from overture.platform.db import db, scoped_to
from overture.platform.errors import NotFound
from overture.platform.ids import parse_id
from overture.tenants import domains
from overture.tenants.access import find_tenant
from overture.web import webhook_limits
from overture.web.extensions import csrf, limiter

bp = Blueprint("vendor_hooks", __name__)
csrf.exempt(bp)


@bp.post("/hooks/<tenant_id>/<source>/<token>")
@limiter.limit(webhook_limits.limit, key_func=webhook_limits.key)
def vendor_event(tenant_id: str, source: str, token: str) -> tuple[dict[str, Any], int]:
    """200 with the runs started (or found: a retried event starts nothing), Slack's
    challenge, 401 for a bad or stale signature, 409 while the trigger is off."""
    ident = parse_id(tenant_id)
    tenant = find_tenant(str(ident)) if ident else None
    if tenant is None or not tenant.usable or source not in vendor_events.SOURCES:
        raise NotFound("no such trigger")
    with scoped_to(tenant.id):
        trigger = vendor_triggers.by_token(source, token)
        if trigger is None:
            raise NotFound("no such trigger")
        body = request.get_data(cache=True)
        public = domains.public_base_url(tenant.id).rstrip("/") + _path_and_query()
        call = vendor_events.Call(request.method, (public, request.url), request.headers, body)
        result = vendor_triggers.receive(trigger, call)
        db.session.commit()
    return result, 200


def _path_and_query() -> str:
    query = request.query_string.decode("latin-1")
    return request.path + ("?" + query if query else "")
