"""The JSON API under /api/v1, documented at /api/v1/openapi.json."""

from __future__ import annotations

from apiflask import APIBlueprint

from overture.web.extensions import csrf

api = APIBlueprint("api", __name__, url_prefix="/api/v1")
# Bearer calls need no CSRF token; session calls are checked in web.auth.
csrf.exempt(api)


def load_endpoints() -> APIBlueprint:
    from overture.web.api import (  # noqa: F401  (registers routes)
        agents,
        apikeys,
        approvals,
        audit,
        billing,
        brand,
        budgets,
        connectors,
        credentials,
        domains,
        events,
        form_triggers,
        invitations,
        knowledge,
        mail_server,
        me,
        members,
        mfa,
        model_prices,
        openapi_connectors,
        ops,
        portal,
        recovery,
        runs,
        schedules,
        sessions,
        sso,
        step_types,
        stripe_billing,
        templates,
        tenants,
        testing,
        triggers,
        usage,
        users,
        workflows,
    )

    return api
