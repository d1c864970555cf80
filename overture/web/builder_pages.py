"""The visual builder's page: a console page hosting the React island (ui/, built by
`make ui` into static/builder/). The island reads and writes the workflow through the
public API (/api/v1) with the session cookie, the tenant header and the CSRF token the
page hands it; the page itself only checks access and passes those on.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, g, render_template, request, session
from flask_login import current_user, login_required

from overture.orchestration import workflows
from overture.tenants import access as tenant_access
from overture.tenants.access import Principal
from overture.web.auth import TENANT_HEADER

bp = Blueprint("builder", __name__)
# The session key under which the console keeps the workspace a person chose (the
# console shell's web/console/context.py uses the same one).
SESSION_TENANT = "console_tenant"
BUILD = Path(__file__).parent / "static" / "builder" / "builder.js"


def _tenant_ref() -> str | None:
    return (request.headers.get(TENANT_HEADER) or request.args.get("tenant")
            or session.get(SESSION_TENANT))


@bp.get("/workflows/<workflow_id>/builder")
@login_required
def builder(workflow_id: str) -> str:
    # The API's own check (enter, then require), for the signed-in person; reading the
    # page is not an API call, so it is not charged to their API allowance.
    access = tenant_access.enter(Principal(user=current_user._get_current_object()),
                                 _tenant_ref())
    g.access = access
    access.require("workflow.read")
    workflow = workflows.get_workflow(workflow_id)  # NotFound in another tenant, too
    return render_template(
        "builder.html", workflow=workflow, tenant=access.tenant,
        can_edit=access.can("workflow.edit"), can_publish=access.can("workflow.publish"),
        can_run=access.can("run.start") and access.can("run.read"),
        built=BUILD.exists())
