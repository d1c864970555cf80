"""Who may act where: principals, reachable tenants and the effective permissions.

Agencies reach a client workspace only through a role held in that agency (or a
membership in the workspace itself). This is checked here, before the scope is
switched to the workspace.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import or_, select

from overture.platform.db import (
    PLATFORM_TENANT_ID,
    Scope,
    activate_scope,
    current_scope,
    db,
    narrow_scope,
    unscoped,
)
from overture.platform.errors import Forbidden, NotFound, TenantRequired, TenantSuspended
from overture.platform.ids import parse_id
from overture.tenants.models import ApiKey, Membership, Tenant, TenantKind, TenantStatus, User
from overture.tenants.roles import (
    AGENCY_REACHING_ROLES,
    PLATFORM_ADMIN,
    Role,
    parse_role,
    permissions_for,
    stronger,
)


@dataclass(frozen=True)
class Principal:
    """The acting party: a signed-in user, or an API key acting within its scopes."""

    user: User
    api_key: ApiKey | None = None

    @property
    def kind(self) -> str:
        return "api_key" if self.api_key else "user"

    @property
    def home_tenant_id(self) -> uuid.UUID | None:
        return self.api_key.tenant_id if self.api_key else None


@dataclass(frozen=True)
class Access:
    """What a principal may do in one tenant. Platform administration acts in the
    platform tenant (the installation itself), so its acts land in the platform's audit."""

    principal: Principal
    tenant: Tenant
    role: Role | None
    permissions: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_platform(self) -> bool:
        return self.tenant.kind == TenantKind.PLATFORM

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, permission: str) -> None:
        if permission not in self.permissions:
            raise Forbidden(f"this action needs the '{permission}' permission")

    def require_tenant(self) -> Tenant:
        """The client tenant acted in. Platform administration holds no tenant-owned
        data of its own, so the caller must name a tenant for that."""
        if self.is_platform:
            raise TenantRequired("name the tenant to act in with the X-Overture-Tenant header "
                                 "(its id or slug)")
        return self.tenant


PORTAL_ONLY = ("this is for the workspace's staff: portal users (the member role) use "
               "the workspace's portal at /portal/<workspace>/")


def require_staff(access: Access) -> None:
    """Forbidden for a portal user (the member role): the console and the API are the
    staff's, whatever permission a page or an endpoint asks for (or none)."""
    if access.role == Role.MEMBER and not access.principal.user.is_platform_admin:
        raise Forbidden(PORTAL_ONLY)


def is_portal_only(user: User) -> bool:
    """Someone whose every role is the member role: an end customer and nothing else."""
    if user.is_platform_admin:
        return False
    roles = {m.role for m in memberships_of(user) if m.tenant.status != TenantStatus.DELETED}
    return roles == {Role.MEMBER}


def memberships_of(user: User) -> list[Membership]:
    """Every membership of a user, across tenants (identity-keyed lookup)."""
    activate_scope_identity(user)
    stmt = unscoped(select(Membership).where(Membership.user_id == user.id))
    return list(db.session.scalars(stmt))


def activate_scope_identity(user: User) -> None:
    """Open the user's own identity-keyed rows (their memberships) to this transaction."""
    if current_scope().user_id != user.id:
        narrow_scope(user_id=user.id)


def role_in(user: User, tenant: Tenant, memberships: list[Membership] | None = None) -> Role | None:
    """The strongest role a user holds in a tenant, directly or through its agency."""
    memberships = memberships_of(user) if memberships is None else memberships
    role: Role | None = None
    for m in memberships:
        held = parse_role(m.role)
        if held is None:
            continue
        through_agency = tenant.parent_id == m.tenant_id and held in AGENCY_REACHING_ROLES
        if m.tenant_id == tenant.id or through_agency:
            role = stronger(role, held)
    return role


def agency_role_in(user: User, tenant: Tenant,
                   memberships: list[Membership] | None = None) -> Role | None:
    """The role a user holds in the agency of a client workspace (None elsewhere)."""
    if tenant.parent_id is None:
        return None
    memberships = memberships_of(user) if memberships is None else memberships
    held = [parse_role(m.role) for m in memberships if m.tenant_id == tenant.parent_id]
    role: Role | None = None
    for one in held:
        if one in AGENCY_REACHING_ROLES:
            role = stronger(role, one)
    return role


def _permissions(user: User, tenant: Tenant, role: Role,
                 memberships: list[Membership] | None = None) -> frozenset[str]:
    return permissions_for(role, agency_role_in(user, tenant, memberships))


def reachable_tenants(user: User) -> list[tuple[Tenant, Role]]:
    """Tenants a user can enter, with the role they hold there. Deleted ones are gone."""
    memberships = memberships_of(user)
    direct = {m.tenant_id for m in memberships}
    agencies = [m.tenant_id for m in memberships
                if m.tenant.is_agency and parse_role(m.role) in AGENCY_REACHING_ROLES]
    stmt = select(Tenant).where(
        or_(Tenant.id.in_(direct), Tenant.parent_id.in_(agencies)),
        Tenant.status != TenantStatus.DELETED,
    ).order_by(Tenant.id)
    result = []
    for tenant in db.session.scalars(stmt):
        role = role_in(user, tenant, memberships)
        if role is not None:
            result.append((tenant, role))
    return result


def tenant_choices(user: User) -> list[dict[str, str]]:
    """The tenants a person may name, as a problem document lists them."""
    return [{"id": str(t.id), "name": t.name, "kind": t.kind, "slug": t.slug}
            for t, _ in reachable_tenants(user)]


def find_tenant(ref: str) -> Tenant | None:
    """A live tenant by id or slug."""
    ident = parse_id(ref)
    cond = Tenant.id == ident if ident else Tenant.slug == ref
    tenant = db.session.scalars(select(Tenant).where(cond)).one_or_none()
    if tenant is None or tenant.status == TenantStatus.DELETED:
        return None
    return tenant


def access_to(principal: Principal, tenant: Tenant) -> Access:
    """The principal's access to `tenant`. Unreachable tenants are simply not found."""
    user = principal.user
    role = role_in(user, tenant)
    if principal.api_key is not None:
        home = principal.api_key.tenant_id
        if tenant.id != home and tenant.parent_id != home:
            raise NotFound("tenant not found")
    if role is None:
        if user.is_platform_admin and principal.api_key is None:
            return Access(principal, tenant, None, PLATFORM_ADMIN)
        raise NotFound("tenant not found")
    if not tenant.usable:
        raise TenantSuspended("this tenant is suspended")
    permissions = _permissions(user, tenant, role)
    if principal.api_key is not None:
        permissions = permissions & frozenset(principal.api_key.scopes)
    if user.is_platform_admin and principal.api_key is None:
        permissions = permissions | PLATFORM_ADMIN
    return Access(principal, tenant, role, permissions)


def permitted(access: Access, tenants: list[Tenant], permission: str) -> list[Tenant]:
    """Of `tenants` (an agency's clients, say), those in which the caller holds
    `permission`: the check `access_to` makes, with the caller's memberships read once
    for them all."""
    user, key = access.principal.user, access.principal.api_key
    memberships = memberships_of(user)
    found = []
    for tenant in tenants:
        role = role_in(user, tenant, memberships)
        allowed = _permissions(user, tenant, role, memberships) if role is not None \
            else frozenset()
        if key is not None:
            allowed = allowed & frozenset(key.scopes)
        elif user.is_platform_admin:
            allowed = allowed | PLATFORM_ADMIN
        if permission in allowed:
            found.append(tenant)
    return found


def platform_access(principal: Principal) -> Access:
    if not principal.user.is_platform_admin or principal.api_key is not None:
        raise Forbidden("platform administration needs a platform admin")
    platform = db.session.get(Tenant, PLATFORM_TENANT_ID)
    assert platform is not None, "the platform tenant is created by migration 0002"
    return Access(principal, platform, None, PLATFORM_ADMIN)


def enter(principal: Principal, tenant_ref: str | None) -> Access:
    """Resolve the tenant a request acts in and switch the scope to it.

    An API key acts in its own tenant unless it names one of its agency's clients.
    A user names the tenant, or acts in their only one.
    """
    user = principal.user
    if tenant_ref:
        tenant = find_tenant(tenant_ref)
        if tenant is None:
            raise NotFound("tenant not found")
    elif principal.api_key is not None:
        tenant = db.session.get(Tenant, principal.api_key.tenant_id)
    else:
        homes = [m for m in memberships_of(user) if m.tenant.status != TenantStatus.DELETED]
        if len(homes) == 1:
            tenant = homes[0].tenant
        elif not homes and user.is_platform_admin:
            access = platform_access(principal)
            activate_scope(Scope(tenant_id=PLATFORM_TENANT_ID, user_id=user.id))
            return access
        else:
            raise TenantRequired("name the tenant to act in with the X-Overture-Tenant header "
                                 "(its id or slug); `choices` lists those you may choose",
                                 choices=tenant_choices(user))
    if tenant is None:
        raise NotFound("tenant not found")
    access = access_to(principal, tenant)
    activate_scope(Scope(tenant_id=tenant.id, user_id=user.id,
                         api_key_prefix=principal.api_key.prefix if principal.api_key else None))
    return access
