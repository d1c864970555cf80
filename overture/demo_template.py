"""The demo agency's template: "Support desk", a snapshot of the seeded "Acme Support"
workspace (its agents, knowledge, connections and published workflow), so an agency owner
can create a client workspace from a template straight after `make up`."""

from __future__ import annotations

from overture.orchestration.templates import service as templates
from overture.orchestration.templates.models import Template
from overture.platform.db import scoped_to
from overture.tenants.access import Principal, access_to
from overture.tenants.models import Tenant, User

TEMPLATE_NAME = "Support desk"


def seed_template(agency: Tenant, workspace: Tenant, owner: User) -> Template:
    """Snapshot `workspace` as the agency's template v1, as `owner` (who manages the
    agency's workspaces). Flushes; the caller commits."""
    with scoped_to(agency.id):
        return templates.create_template(access_to(Principal(owner), agency), workspace.id,
                                         TEMPLATE_NAME)
