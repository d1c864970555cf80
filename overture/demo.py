"""The seeded demo: a platform admin, the agency "Northwind Agency" with two client
workspaces, one user per role, in "Acme Support" the support-triage workflow
(`overture.demo_support`) and its portal (`overture.demo_portal`), and the agency's
template "Support desk", a snapshot of Acme Support (`overture.demo_template`). Seeded
only into an empty database."""

from __future__ import annotations

from sqlalchemy import func, select

from overture.demo_portal import seed_portal
from overture.demo_support import seed_support
from overture.demo_template import seed_template
from overture.platform.db import db, scoped_to
from overture.tenants.lifecycle import create_tenant
from overture.tenants.models import Membership, Tenant, TenantKind
from overture.tenants.roles import Role
from overture.tenants.users import create_user

DEMO_PASSWORD = "overture-demo"  # noqa: S105 - printed at start-up; demo data only

# (email, name, tenant slug, role)
DEMO_USERS = [
    ("owner@northwind.example.com", "Nadia Northwind (agency owner)", "northwind", Role.OWNER),
    ("admin@northwind.example.com", "Noah Northwind (agency admin)", "northwind", Role.ADMIN),
    ("owner@acme.example.com", "Ava Acme (owner)", "acme-support", Role.OWNER),
    ("admin@acme.example.com", "Adam Acme (admin)", "acme-support", Role.ADMIN),
    ("builder@acme.example.com", "Bea Builder", "acme-support", Role.BUILDER),
    ("operator@acme.example.com", "Otto Operator", "acme-support", Role.OPERATOR),
    ("viewer@acme.example.com", "Vera Viewer", "acme-support", Role.VIEWER),
    ("auditor@acme.example.com", "Audrey Auditor", "acme-support", Role.AUDITOR),
    ("customer@acme.example.com", "Carl Customer (portal member)", "acme-support", Role.MEMBER),
    ("owner@globex.example.com", "Gus Globex (owner)", "globex-sales", Role.OWNER),
]
PLATFORM_ADMIN_EMAIL = "admin@overture.example.com"
SUPPORT_BUILDER = "builder@acme.example.com"  # creates the support-triage demo
AGENCY_OWNER = "owner@northwind.example.com"  # snapshots it as the agency's template


def is_seeded() -> bool:
    return bool(db.session.scalar(select(func.count()).select_from(Tenant)
                                  .where(Tenant.kind != TenantKind.PLATFORM)))


def seed_demo() -> list[tuple[str, str]]:
    """Create the demo data; returns (email, what they are) for the start-up banner."""
    admin = create_user(PLATFORM_ADMIN_EMAIL, DEMO_PASSWORD, "Pat Platform",
                        is_platform_admin=True)
    agency = create_tenant("Northwind Agency", TenantKind.AGENCY, admin, slug="northwind")
    tenants = {
        "northwind": agency,
        "acme-support": create_tenant("Acme Support", TenantKind.WORKSPACE, admin,
                                      parent=agency, slug="acme-support"),
        "globex-sales": create_tenant("Globex Sales", TenantKind.WORKSPACE, admin,
                                      parent=agency, slug="globex-sales"),
    }
    logins = [(PLATFORM_ADMIN_EMAIL, "platform admin")]
    users = {}
    for email, name, slug, role in DEMO_USERS:
        user = users[email] = create_user(email, DEMO_PASSWORD, name)
        tenant = tenants[slug]
        with scoped_to(tenant.id):
            db.session.add(Membership(user_id=user.id, role=role, invited_by_id=admin.id))
            db.session.flush()
        where = f": the portal at /portal/{slug}/" if role == Role.MEMBER else ""
        logins.append((email, f"{role} of {tenant.name}{where}"))
    workflow = seed_support(tenants["acme-support"], users[SUPPORT_BUILDER])
    seed_template(agency, tenants["acme-support"], users[AGENCY_OWNER])
    # After the template's snapshot: what a workspace shows in its portal is its own.
    seed_portal(tenants["acme-support"], users[SUPPORT_BUILDER], workflow)
    db.session.commit()
    return logins
