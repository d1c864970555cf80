"""Invitations with consent: an offer of a role, emailed; a membership only on acceptance.

Inviting answers the same for every address (known or not, member elsewhere or not):
the caller learns nothing about people outside its tenant. Whether the address has an
account, and whether it is a platform admin, matters only when the link is followed,
by the person holding it. Inviting an address already invited re-sends the pending
invitation (a fresh link, the old one withdrawn) instead of failing.

The emailed token names the tenant (`scope_tenant_id`), so acceptance scopes to that
tenant without the invitee being a member yet. Accepting adds a membership and nothing
else: the tenant a user's requests act in by default is never switched for them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from overture.platform import audit
from overture.platform.db import db, get_or_404, scoped_to, utcnow
from overture.platform.errors import Conflict, Forbidden, LinkNotUsable
from overture.platform.mail import queue_mail
from overture.platform.pagination import Page, paginate
from overture.tenants import account_tokens, domains, password_policy
from overture.tenants.access import Access
from overture.tenants.account_tokens import TokenPurpose
from overture.tenants.invitations_models import Invitation, InvitationStatus
from overture.tenants.models import Membership, Tenant, User, UserStatus
from overture.tenants.passwords import hash_password
from overture.tenants.users import create_user, find_user_by_email, user_actor

LIFETIME = account_tokens.LIFETIMES[TokenPurpose.INVITATION]
PLATFORM_ADMIN_REFUSED = ("A platform admin cannot join a tenant by invitation: platform "
                          "administration already reaches every tenant. Ask for the "
                          "invitation to be sent to another address.")
WITHDRAWN = "This invitation was withdrawn. Ask the person who invited you for a new one."


# ----------------------------------------------------------------------------- inviting


def invite(access: Access, email: str, role: str) -> Invitation:
    """A pending invitation of `email` (normalised) to the tenant in scope, emailed.

    The caller has checked the permission and the role it may grant."""
    tenant = access.require_tenant()
    if _member_here(email):
        # The tenant's own member list already shows this; nothing outside it is told.
        raise Conflict("this person is already a member of this tenant")
    pending = _pending_for(email)
    if pending is not None:
        pending.role = role
        _send(access, pending, tenant)
        _record("invitation.resent", pending, email=email, role=role, reused=True)
        return pending
    invitation = Invitation(email=email, role=role, status=InvitationStatus.PENDING,
                            invited_by_id=access.principal.user.id,
                            expires_at=utcnow() + LIFETIME, send_count=0)
    try:
        with db.session.begin_nested():  # a concurrent invite of the same address wins
            db.session.add(invitation)
            db.session.flush()
    except IntegrityError:
        pending = _pending_for(email)
        if pending is None:
            raise
        return pending
    _send(access, invitation, tenant)
    _record("member.invited", invitation, email=email, role=role)
    return invitation


def _member_here(email: str) -> bool:
    stmt = (select(Membership.id).join(User, User.id == Membership.user_id)
            .where(func.lower(User.email) == email))
    return db.session.scalars(stmt).first() is not None


def _pending_for(email: str) -> Invitation | None:
    return db.session.scalars(
        select(Invitation).where(Invitation.email == email,
                                 Invitation.status == InvitationStatus.PENDING)
        .execution_options(populate_existing=True)).one_or_none()


def _send(access: Access, invitation: Invitation, tenant: Tenant) -> None:
    """A new link (the previous ones withdrawn), a new 7-day term, and the email."""
    account_tokens.revoke_for_invitation(invitation.id)
    token, secret = account_tokens.issue(TokenPurpose.INVITATION, invitation_id=invitation.id,
                                         scope_tenant_id=tenant.id)
    invitation.expires_at = token.expires_at
    invitation.send_count = (invitation.send_count or 0) + 1
    invitation.last_sent_at = utcnow()
    inviter = access.principal.user
    queue_mail(invitation.email, "invitation", {
        "tenant_name": tenant.name, "role": invitation.role,
        "inviter_name": inviter.name or inviter.email, "accept_url": accept_url(secret, tenant),
        "expires_at": token.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
    }, tenant_id=tenant.id)
    db.session.flush()


def accept_url(secret: str, tenant: Tenant) -> str:
    """On the tenant's own address: the invitee meets its brand from the first page."""
    return f"{domains.public_base_url(tenant.id)}/invite/{secret}"


def _record(action: str, invitation: Invitation, **details: object) -> None:
    audit.record(action, target_type="invitation", target_id=invitation.id,
                 details=details or None)


# ----------------------------------------------------------------------------- managing


def list_invitations(access: Access, cursor: str | None, limit: int | None,
                     status: str | None = InvitationStatus.PENDING) -> Page[Invitation]:
    access.require("member.read")
    access.require_tenant()
    stmt = select(Invitation)
    if status:
        stmt = stmt.where(Invitation.status == status)
    return paginate(stmt, Invitation.id, cursor, limit)


def get_invitation(access: Access, invitation_id: str) -> Invitation:
    access.require("member.read")
    access.require_tenant()
    return get_or_404(Invitation, invitation_id, "invitation")


def _require_pending(invitation: Invitation) -> None:
    if invitation.status != InvitationStatus.PENDING:
        raise Conflict(f"this invitation is {invitation.status}, no longer pending")


def resend(access: Access, invitation: Invitation) -> Invitation:
    """Email a new link; the old one stops working."""
    access.require("member.manage")
    _require_pending(invitation)
    _send(access, invitation, access.require_tenant())
    _record("invitation.resent", invitation, email=invitation.email)
    return invitation


def revoke(access: Access, invitation: Invitation) -> Invitation:
    access.require("member.manage")
    _require_pending(invitation)
    account_tokens.revoke_for_invitation(invitation.id)
    invitation.status = InvitationStatus.REVOKED
    invitation.revoked_at = utcnow()
    db.session.flush()
    _record("invitation.revoked", invitation, email=invitation.email)
    return invitation


# ----------------------------------------------------------------------------- accepting


@dataclass(frozen=True)
class Offer:
    """What the person holding a link is offered, read without using the link up."""

    invitation_id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_name: str
    email: str
    role: str
    inviter_name: str
    expires_at: datetime
    account: User | None  # an account that can sign in, for this address

    @property
    def needs_account(self) -> bool:
        return self.account is None


def offer(secret: str) -> Offer:
    """The invitation behind a link, if it can still be accepted (else LinkNotUsable)."""
    token = account_tokens.peek(secret, TokenPurpose.INVITATION)
    tenant = db.session.get(Tenant, token.scope_tenant_id) if token.scope_tenant_id else None
    if tenant is None or not tenant.usable:
        raise LinkNotUsable("revoked", WITHDRAWN)
    with scoped_to(tenant.id):
        invitation = db.session.scalars(
            select(Invitation).where(Invitation.id == token.invitation_id)).one_or_none()
    if invitation is None or invitation.status == InvitationStatus.REVOKED:
        raise LinkNotUsable("revoked", WITHDRAWN)
    if invitation.status == InvitationStatus.ACCEPTED:
        raise LinkNotUsable("used", "This invitation has already been accepted.")
    inviter = invitation.invited_by
    account = find_user_by_email(invitation.email)
    return Offer(invitation.id, tenant.id, tenant.name, invitation.email, invitation.role,
                 (inviter.name or inviter.email) if inviter else "an administrator",
                 token.expires_at, account if _can_sign_in(account) else None)


def _can_sign_in(user: User | None) -> bool:
    """An account that was only ever invited (no password yet) is set up by the link."""
    return user is not None and not (user.status == UserStatus.INVITED
                                     and user.password_hash is None)


def accept_as_new(secret: str, name: str, password: str) -> User:
    """Create the invited person's account (active, with this password) and join."""
    found = offer(secret)
    if not found.needs_account:
        raise Conflict("an account with this email exists: sign in to accept")
    name = name.strip()
    existing = find_user_by_email(found.email)  # invited earlier, never set up
    if existing is None:
        user = create_user(found.email, password, name)
    else:
        password_policy.check(password, found.email, name)
        existing.password_hash = hash_password(password)
        existing.name = name or existing.name
        existing.status = UserStatus.ACTIVE
        user = existing
    _join(secret, found, user)
    return user


def accept_as(secret: str, user: User) -> Offer:
    """The signed-in `user` accepts: only as the invited address, never a platform admin."""
    found = offer(secret)
    if user.email.lower() != found.email:
        raise Forbidden(f"This invitation is for {found.email}. Sign out and sign in as "
                        "that address to accept it.")
    if user.is_platform_admin:
        raise Forbidden(PLATFORM_ADMIN_REFUSED)
    _join(secret, found, user)
    return found


def _join(secret: str, found: Offer, user: User) -> None:
    if user.is_platform_admin:
        raise Forbidden(PLATFORM_ADMIN_REFUSED)
    account_tokens.redeem(secret, TokenPurpose.INVITATION)  # once, even under a race
    with scoped_to(found.tenant_id, user_id=user.id):
        invitation = get_or_404(Invitation, found.invitation_id, "invitation")
        exists = db.session.scalars(
            select(Membership).where(Membership.user_id == user.id)).first()
        if exists is None:
            db.session.add(Membership(user_id=user.id, role=invitation.role,
                                      invited_by_id=invitation.invited_by_id))
        invitation.status = InvitationStatus.ACCEPTED
        invitation.accepted_at = utcnow()
        invitation.accepted_user_id = user.id
        db.session.flush()
        audit.record("invitation.accepted", target_type="invitation", target_id=invitation.id,
                     details={"user_id": str(user.id), "role": invitation.role},
                     actor=user_actor(user), tenant_id=found.tenant_id)
