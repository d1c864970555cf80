"""Tenant lifecycle: agencies create, rename, suspend, resume and delete client workspaces.

Deleting is a tombstone: the row stays (its audit trail must outlive it), its
slug is released, and nothing can enter it again.
"""

from __future__ import annotations

import re
import uuid

from sqlalchemy import or_, select

from overture.platform import audit
from overture.platform.db import db, scoped_to, utcnow
from overture.platform.errors import Conflict, NotFound, ValidationFailed
from overture.platform.ids import parse_id
from overture.platform.pagination import Page, paginate
from overture.platform.validation import clean_name
from overture.tenants import invitations
from overture.tenants.access import Access, access_to
from overture.tenants.models import Membership, Tenant, TenantKind, TenantStatus, User
from overture.tenants.roles import Role

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60]
    return slug or "tenant"


def _unique_slug(base: str) -> str:
    slug, n = base, 1
    while db.session.scalars(select(Tenant.id).where(Tenant.slug == slug)).first():
        n += 1
        slug = f"{base}-{n}"
    return slug


def _check_slug(slug: str) -> str:
    if not SLUG_RE.match(slug):
        raise ValidationFailed.field(
            "slug", "lowercase letters, digits and hyphens, 1 to 64, not starting or "
                    "ending with a hyphen")
    if db.session.scalars(select(Tenant.id).where(Tenant.slug == slug)).first():
        raise Conflict(f"the slug '{slug}' is taken")
    return slug


def create_tenant(name: str, kind: TenantKind, created_by: User | None,
                  parent: Tenant | None = None, slug: str | None = None,
                  owner: User | None = None) -> Tenant:
    """A new agency or client workspace, optionally with its first owner."""
    name = clean_name(name)
    slug = _check_slug(slug) if slug else _unique_slug(slugify(name))
    tenant = Tenant(kind=kind, name=name, slug=slug, parent_id=parent.id if parent else None,
                    created_by_id=created_by.id if created_by else None,
                    status=TenantStatus.ACTIVE)
    db.session.add(tenant)
    db.session.flush()
    if owner is not None:
        with scoped_to(tenant.id):
            db.session.add(Membership(tenant_id=tenant.id, user_id=owner.id, role=Role.OWNER,
                                      invited_by_id=created_by.id if created_by else None))
            db.session.flush()
    return tenant


def _audit(access: Access, action: str, tenant: Tenant, **details: object) -> None:
    """Record a lifecycle act in the tenant's own log and in the log of the tenant the
    caller acted from (the agency, or the platform), so both sides can read it."""
    details = {"name": tenant.name, "slug": tenant.slug, "kind": tenant.kind, **details}
    audit.record(action, target_type="tenant", target_id=tenant.id, details=details,
                 tenant_id=tenant.id)
    if access.tenant.id != tenant.id:
        audit.record(action, target_type="tenant", target_id=tenant.id, details=details,
                     tenant_id=access.tenant.id)


def create_workspace(access: Access, name: str, slug: str | None = None) -> Tenant:
    """A client workspace under the agency the caller is acting in."""
    access.require("workspace.create")
    agency = access.tenant
    if agency is None or not agency.is_agency:
        raise ValidationFailed.field("kind", "client workspaces are created from an agency")
    tenant = create_tenant(name, TenantKind.WORKSPACE, access.principal.user, parent=agency,
                           slug=slug)
    _audit(access, "tenant.created", tenant)
    return tenant


def create_agency(access: Access, name: str, slug: str | None = None,
                  owner_email: str | None = None) -> Tenant:
    """A new agency. Its first owner, when named, is invited (consent): the person
    accepts by the emailed link, like every other member."""
    if not access.is_platform:
        raise ValidationFailed.field("kind", "only a platform admin creates agencies")
    access.require("workspace.create")
    tenant = create_tenant(name, TenantKind.AGENCY, access.principal.user, slug=slug)
    _audit(access, "tenant.created", tenant)
    if owner_email:
        with scoped_to(tenant.id, user_id=access.principal.user.id):
            invitations.invite(access_to(access.principal, tenant), owner_email, Role.OWNER)
    return tenant


def managed_tenants(access: Access, cursor: str | None, limit: int | None,
                    status: str | None = None) -> Page[Tenant]:
    """The tenants the caller administers: an agency's clients, or every tenant."""
    stmt = select(Tenant).where(Tenant.status != TenantStatus.DELETED,
                                Tenant.kind != TenantKind.PLATFORM)
    if not access.is_platform:
        stmt = stmt.where(Tenant.parent_id == access.tenant.id)
    if status:
        if status not in {TenantStatus.ACTIVE, TenantStatus.SUSPENDED}:
            raise ValidationFailed.field("status", "must be active or suspended")
        stmt = stmt.where(Tenant.status == status)
    return paginate(stmt, Tenant.id, cursor, limit)


def managed_tenant(access: Access, tenant_id: str | uuid.UUID) -> Tenant:
    """One tenant the caller administers. Everything else is not found."""
    ident = parse_id(tenant_id)
    tenant = db.session.get(Tenant, ident) if ident else None
    if tenant is None or tenant.status == TenantStatus.DELETED or \
            tenant.kind == TenantKind.PLATFORM:
        raise NotFound("tenant not found")
    if access.is_platform:
        return tenant
    if tenant.parent_id != access.tenant.id:
        raise NotFound("tenant not found")
    return tenant


def rename(access: Access, tenant: Tenant, name: str) -> Tenant:
    access.require("workspace.manage")
    old, tenant.name = tenant.name, clean_name(name)
    _audit(access, "tenant.renamed", tenant, previous_name=old)
    return tenant


def suspend(access: Access, tenant: Tenant) -> Tenant:
    access.require("workspace.manage")
    if tenant.status != TenantStatus.SUSPENDED:
        tenant.status = TenantStatus.SUSPENDED
        tenant.suspended_at = utcnow()
        _audit(access, "tenant.suspended", tenant)
    return tenant


def resume(access: Access, tenant: Tenant) -> Tenant:
    access.require("workspace.manage")
    if tenant.status != TenantStatus.ACTIVE:
        tenant.status = TenantStatus.ACTIVE
        tenant.suspended_at = None
        _audit(access, "tenant.resumed", tenant)
    return tenant


def delete(access: Access, tenant: Tenant) -> None:
    access.require("workspace.manage")
    live_children = db.session.scalars(select(Tenant.id).where(
        Tenant.parent_id == tenant.id, Tenant.status != TenantStatus.DELETED)).first()
    if live_children:
        raise Conflict("delete this agency's client workspaces first")
    _audit(access, "tenant.deleted", tenant)
    tenant.status = TenantStatus.DELETED
    tenant.deleted_at = utcnow()
    # `~` never passes SLUG_RE, so no live tenant can already hold (or squat) the
    # tombstone, and the whole id keeps tombstones of equal slugs apart.
    tenant.slug = f"{tenant.slug[:38]}~deleted~{tenant.id.hex}"


def rename_own(access: Access, name: str) -> Tenant:
    """Rename the tenant the caller is acting in."""
    access.require("tenant.manage")
    tenant = access.require_tenant()
    old, tenant.name = tenant.name, clean_name(name)
    _audit(access, "tenant.renamed", tenant, previous_name=old)
    return tenant


def all_tenants(slug: str | None = None) -> list[Tenant]:
    """Every tenant row, deleted ones included (their audit outlives them): for
    system jobs that visit each tenant in turn."""
    stmt = select(Tenant).order_by(Tenant.id)
    if slug:
        stmt = stmt.where(or_(Tenant.slug == slug, Tenant.slug.like(f"{slug[:38]}~deleted~%")))
    return list(db.session.scalars(stmt))
