"""Members of the tenant in scope: invite (by invitation), change role, remove. A tenant
keeps an owner."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select

from overture.platform import audit
from overture.platform.db import db, get_or_404, in_tenant
from overture.platform.errors import Conflict, Forbidden, ValidationFailed
from overture.platform.pagination import Page, paginate
from overture.tenants import invitations
from overture.tenants.access import Access
from overture.tenants.invitations_models import Invitation
from overture.tenants.models import Membership, User, UserStatus
from overture.tenants.roles import RANK, Role, parse_role
from overture.tenants.users import normalize_email


def _role(value: str) -> Role:
    role = parse_role(value)
    if role is None:
        raise ValidationFailed.field("role", f"must be one of {', '.join(r.value for r in Role)}")
    return role


def _check_can_grant(access: Access, role: Role) -> None:
    """Only an owner makes owners: an admin cannot promote anyone above themselves."""
    platform_admin = access.principal.user.is_platform_admin
    if role == Role.OWNER and access.role != Role.OWNER and not platform_admin:
        raise Forbidden("only an owner can grant the owner role")


def list_members(access: Access, cursor: str | None, limit: int | None) -> Page[Membership]:
    access.require("member.read")
    access.require_tenant()
    return paginate(select(Membership), Membership.id, cursor, limit)


def get_member(access: Access, membership_id: str) -> Membership:
    access.require("member.read")
    access.require_tenant()
    return get_or_404(Membership, membership_id, "member")


def invite(access: Access, email: str, role: str, name: str = "") -> Invitation:
    """Invite a person to the tenant in scope: a pending invitation, emailed. No user and
    no membership is made here; the person consents by accepting (see `invitations`).
    `name` is kept for callers' compatibility: the invitee chooses their own name."""
    access.require("member.manage")
    access.require_tenant()
    granted = _role(role)
    _check_can_grant(access, granted)
    return invitations.invite(access, normalize_email(email), granted)


def _owner_count() -> int:
    """Owners of the tenant in scope, locked: two admins removing the last two owners at
    once must not both succeed."""
    owners = db.session.scalars(
        select(Membership.id).where(Membership.role == Role.OWNER).with_for_update())
    return len(owners.all())


def change_role(access: Access, membership: Membership, role: str) -> Membership:
    access.require("member.manage")
    new_role = _role(role)
    _check_can_grant(access, new_role)
    if membership.role == Role.OWNER and new_role != Role.OWNER:
        _check_can_grant(access, Role.OWNER)
        if _owner_count() <= 1:
            raise Conflict("the last owner cannot be demoted; make someone else owner first")
    if membership.role != new_role:
        audit.record("member.role_changed", target_type="member", target_id=membership.id,
                     details={"user_id": str(membership.user_id), "from": membership.role,
                              "to": new_role})
    membership.role = new_role
    return membership


def remove(access: Access, membership: Membership) -> None:
    access.require("member.manage")
    if membership.role == Role.OWNER:
        _check_can_grant(access, Role.OWNER)
        if _owner_count() <= 1:
            raise Conflict("the last owner cannot be removed")
    audit.record("member.removed", target_type="member", target_id=membership.id,
                 details={"user_id": str(membership.user_id), "role": membership.role})
    db.session.delete(membership)
    db.session.flush()


# --------------------------------------------------------------------------- recipients


def people_holding(tenant_id: uuid.UUID, roles: Iterable[Role | str]) -> list[User]:
    """The active people holding one of `roles` in a tenant (to write to them)."""
    wanted = [str(r) for r in roles]
    with db.session.no_autoflush, in_tenant(tenant_id):
        return list(db.session.scalars(
            select(User).join(Membership, Membership.user_id == User.id)
            .where(Membership.tenant_id == tenant_id, Membership.role.in_(wanted),
                   User.status == UserStatus.ACTIVE)
            .order_by(User.email)))


def active_staff(tenant_id: uuid.UUID, *, emails: Iterable[str] | None = None,
                 user_id: uuid.UUID | None = None) -> list[User]:
    """Active staff (any role but the portal's `member`) of a tenant, among these
    addresses or this person."""
    stmt = (select(User).join(Membership, Membership.user_id == User.id)
            .where(Membership.tenant_id == tenant_id, Membership.role != Role.MEMBER,
                   User.status == UserStatus.ACTIVE).order_by(User.email))
    if emails is not None:
        stmt = stmt.where(User.email.in_([e.lower() for e in emails]))
    if user_id is not None:
        stmt = stmt.where(User.id == user_id)
    with db.session.no_autoflush, in_tenant(tenant_id):
        return list(db.session.scalars(stmt))


def nearest_holders(tenant_id: uuid.UUID, role: Role) -> list[User]:
    """The people holding `role`, else those of the next stronger role that anyone
    holds: a request meant for a role nobody holds still reaches someone who may act."""
    for candidate in reversed(RANK[:RANK.index(role) + 1]):
        found = people_holding(tenant_id, [candidate])
        if found:
            return found
    return []
