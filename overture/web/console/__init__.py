"""The console: server-rendered pages over the same services and the same permission
checks as the API, made lively with htmx (vendored in static/vendor/).

One blueprint, `console`; one module per area. `context.page` is the one decorator a
page uses: signed in, in the chosen workspace, holding the permission.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("console", __name__)

# The areas register their routes on `bp` when imported (after `bp` exists).
from overture.web.console import (  # noqa: E402
    agents,
    apikeys,
    audit,
    billing,
    billing_pages,
    brand,
    budgets,
    connections,
    domains,
    errors,
    events,
    failures,
    form_triggers,
    home,
    knowledge,
    mail_server,
    members,
    operate,
    plans,
    portal_settings,
    profile,
    runs,
    settings,
    signin,
    templates,
    testing,
    triggers,
    usage,
    vendor_triggers,
    workflow_alerts,
    workspaces,
)
from overture.web.console.signin import (  # noqa: E402  (the pattern other pages follow)
    FAILED_LOGIN,
    LOGINS_PER_ADDRESS,
    _address_and_email,
    _login_limit,
)

__all__ = ["FAILED_LOGIN", "LOGINS_PER_ADDRESS", "_address_and_email", "_login_limit", "agents",
           "apikeys", "audit", "billing", "billing_pages", "bp", "brand", "budgets",
           "connections", "domains", "errors", "events", "failures", "form_triggers", "home",
           "knowledge", "mail_server", "members", "operate", "plans", "portal_settings",
           "profile", "runs", "settings", "signin", "templates", "testing", "triggers", "usage",
           "vendor_triggers", "workflow_alerts", "workspaces"]
