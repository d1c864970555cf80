"""Single sign-on, the tenant side: a tenant's OpenID Connect provider (configure, read,
remove) and who an ID token's claims sign in (identity, just-in-time account and
membership). The protocol itself (discovery, code exchange, ID token checks) is
`tenants.oidc`.

The client secret is sealed with the platform's master key (AES-256-GCM through the
vault's key wrapper, bound to the tenant and the provider row) and never leaves this
module except to the provider's token endpoint.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from overture.platform import audit
from overture.platform.crypto import DecryptionFailed
from overture.platform.db import PLATFORM_TENANT_ID, db, scoped_to, utcnow
from overture.platform.errors import ConfigError, NotFound, OvertureError, ValidationFailed
from overture.platform.logging import get_logger
from overture.tenants import vault
from overture.tenants.access import Access, memberships_of
from overture.tenants.models import Membership, Tenant, User, UserStatus
from overture.tenants.roles import Role, parse_role
from overture.tenants.sso_models import SsoProvider, UserIdentity
from overture.tenants.users import create_user, find_user_by_email, normalize_email, user_actor

log = get_logger(__name__)
MAX_DOMAINS = 50
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
MASK = "********"


class SsoRefused(OvertureError):
    """A sign-in the provider vouched for that we will not complete; `reason` names why
    (domain_not_allowed, email_not_verified, disabled, not_a_member, account_elsewhere,
    not_configured) so the page can say it plainly."""

    status = 403
    code = "sso-refused"
    title = "Single sign-on refused"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, reason=reason)
        self.reason = reason


# --------------------------------------------------------------------------- configuration


def _local_http_allowed() -> bool:
    settings = current_app.extensions.get("overture.settings")
    return settings is not None and settings.env in {"development", "test"}


def check_url(url: str, field: str) -> str:
    """https only; http just for a provider on this machine in development and test
    (the outbound guard still refuses loopback unless the operator allows it)."""
    url = (url or "").strip()
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "http" and host in LOCAL_HOSTS and _local_http_allowed():
        pass
    elif parts.scheme != "https":
        raise ValidationFailed.field(field, "must be an https URL")
    if not host or parts.query or parts.fragment or parts.username or parts.password:
        raise ValidationFailed.field(field, "must be a plain URL with a host (no query, "
                                            "fragment or credentials)")
    return url


def _issuer(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > 400:
        raise ValidationFailed.field("issuer", "must be a URL of at most 400 characters")
    return check_url(value, "issuer")


def _client_id(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > 200:
        raise ValidationFailed.field("client_id", "must be 1 to 200 characters")
    return value.strip()


def _domains(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_DOMAINS:
        raise ValidationFailed.field("allowed_domains",
                                     f"must be a list of at most {MAX_DOMAINS} domains")
    domains: list[str] = []
    for i, raw in enumerate(value):
        domain = raw.strip().lower().rstrip(".") if isinstance(raw, str) else ""
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            domain = ""
        if not DOMAIN_RE.match(domain):
            raise ValidationFailed.field(f"allowed_domains.{i}",
                                         "must be a domain name, like example.com")
        if domain not in domains:
            domains.append(domain)
    return domains


def _default_role(value: Any) -> Role:
    role = parse_role(value) if isinstance(value, str) else None
    if role is None or role == Role.OWNER:
        allowed = ", ".join(r.value for r in Role if r != Role.OWNER)
        raise ValidationFailed.field("default_role", f"must be one of {allowed}")
    return role


def _require(access: Access) -> Tenant:
    # Who may configure SSO decides who joins and with which role: the admin's pair.
    access.require("tenant.manage")
    access.require("member.manage")
    return access.require_tenant()


def get_provider() -> SsoProvider | None:
    """The provider of the tenant in scope, if any."""
    return db.session.scalars(select(SsoProvider)).one_or_none()


def read(access: Access) -> SsoProvider:
    _require(access)
    provider = get_provider()
    if provider is None:
        raise NotFound("no single sign-on provider is configured for this tenant")
    return provider


def configure(access: Access, body: dict[str, Any]) -> SsoProvider:
    """Create or replace the tenant's provider. `client_secret` is write-only: omitted,
    the stored one is kept; a new provider needs one."""
    tenant = _require(access)
    issuer, client_id = _issuer(body.get("issuer")), _client_id(body.get("client_id"))
    domains = _domains(body.get("allowed_domains", []))
    role = _default_role(body.get("default_role", Role.VIEWER.value))
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValidationFailed.field("enabled", "must be true or false")
    secret = body.get("client_secret")
    if secret is not None and (not isinstance(secret, str) or not secret
                               or len(secret) > 2000):
        raise ValidationFailed.field("client_secret", "must be 1 to 2000 characters")
    provider = get_provider()
    if provider is None and secret is None:
        raise ValidationFailed.field("client_secret", "is required for a new provider")
    if provider is not None and secret is None and issuer != provider.issuer:
        # The stored secret goes only to the issuer it was given for: otherwise whoever
        # may edit the issuer could have it sent to a server of theirs and read it.
        raise ValidationFailed.field("client_secret", "is required when the issuer changes")
    if provider is None:
        provider = SsoProvider(id=uuid.uuid4(), tenant_id=tenant.id,
                               created_by_id=access.principal.user.id)
        db.session.add(provider)
    provider.issuer, provider.client_id = issuer, client_id
    provider.allowed_domains, provider.default_role, provider.enabled = domains, role, enabled
    if secret is not None:
        _seal(provider, secret)
    db.session.flush()
    audit.record("sso.configured", target_type="sso_provider", target_id=provider.id,
                 details={"issuer": issuer, "client_id": client_id, "allowed_domains": domains,
                          "default_role": role, "enabled": enabled,
                          "client_secret_changed": secret is not None})
    return provider


def remove(access: Access) -> None:
    provider = read(access)
    audit.record("sso.removed", target_type="sso_provider", target_id=provider.id,
                 details={"issuer": provider.issuer})
    db.session.delete(provider)
    db.session.flush()


def public_view(provider: SsoProvider) -> dict[str, Any]:
    """What the API shows: everything but the secret, which is only said to be set."""
    return {"issuer": provider.issuer, "client_id": provider.client_id,
            "client_secret": MASK if provider.client_secret_sealed else None,
            "allowed_domains": list(provider.allowed_domains or []),
            "default_role": provider.default_role, "enabled": provider.enabled,
            "created_at": provider.created_at}


# --------------------------------------------------------------------------- the secret


def _aad(provider: SsoProvider) -> bytes:
    return f"overture/sso-client-secret|{provider.tenant_id}|{provider.id}".encode()


def _seal(provider: SsoProvider, secret: str) -> None:
    kid, sealed = vault.key_wrapper().wrap(secret.encode(), _aad(provider))
    vault.ensure_probe(kid)  # a process without this master key then refuses to start
    provider.client_secret_sealed = f"{kid}/{sealed}"


def client_secret(provider: SsoProvider) -> str | None:
    """The plaintext secret, for the token request only."""
    if not provider.client_secret_sealed:
        return None
    kid, _, sealed = provider.client_secret_sealed.partition("/")
    return vault.key_wrapper().unwrap(kid, sealed, _aad(provider)).decode()


# --------------------------------------------------------------------------- sign-in


@dataclass(frozen=True)
class Login:
    """A tenant's provider, as the sign-in flow needs it (read in the tenant's scope)."""

    tenant_id: uuid.UUID
    tenant_slug: str
    issuer: str
    client_id: str
    client_secret: str | None
    allowed_domains: tuple[str, ...]
    default_role: str


def login_provider(tenant: Tenant) -> Login:
    """The enabled provider of `tenant`, or SsoRefused('not_configured')."""
    if not tenant.usable:
        raise SsoRefused("not_configured", "this organisation is suspended")
    with scoped_to(tenant.id):
        provider = get_provider()
        if provider is None or not provider.enabled:
            raise SsoRefused("not_configured",
                             "this organisation has not set up single sign-on")
        try:
            secret = client_secret(provider)
        except (DecryptionFailed, ConfigError) as exc:
            # A master key gone from the keyring: the admin must enter the secret again.
            log.error("sso.secret_unreadable", tenant_id=str(tenant.id), error=str(exc))
            raise SsoRefused("not_configured", "this organisation's single sign-on cannot "
                                               "be used until an admin enters its client "
                                               "secret again") from exc
        return Login(tenant.id, tenant.slug, provider.issuer, provider.client_id, secret,
                     tuple(provider.allowed_domains or ()), provider.default_role)


def record_failure(tenant_id: uuid.UUID | None, reason: str, detail: str) -> None:
    """`auth.sso_failed` in the tenant's log (the platform's if no tenant is known)."""
    audit.record("auth.sso_failed", details={"reason": reason, "detail": detail[:300]},
                 actor=audit.Actor("anonymous"), tenant_id=tenant_id or PLATFORM_TENANT_ID)


def _domain_allowed(email: str, domains: tuple[str, ...]) -> bool:
    return email.rpartition("@")[2].lower() in domains


def _linkable(user: User, tenant: Tenant) -> bool:
    """May a provider this tenant controls speak for an existing account with this
    email? Only if the account is no platform admin and belongs to nothing beyond this
    tenant (and, for an agency, its workspaces): a workspace's provider must not take
    over an agency's or another organisation's member."""
    if user.is_platform_admin:
        return False
    for m in memberships_of(user):
        if m.tenant_id != tenant.id and m.tenant.parent_id != tenant.id:
            return False
    return True


def _account(login: Login, tenant: Tenant, claims: dict[str, Any]) -> tuple[User, bool]:
    """The user these claims are (by identity, else by verified email in an allowed
    domain, linking or creating), and whether the email is good for joining."""
    raw_email = claims.get("email") if isinstance(claims.get("email"), str) else ""
    try:
        email = normalize_email(raw_email) if raw_email else ""
    except ValidationFailed:
        email = ""
    verified = claims.get("email_verified") is True and bool(email)
    joinable = verified and _domain_allowed(email, login.allowed_domains)
    identity = _identity(login, claims)
    if identity is not None:
        identity.last_used_at = utcnow()
        return db.session.get(User, identity.user_id), joinable
    if not verified:
        raise SsoRefused("email_not_verified", "your identity provider has not verified "
                                               "your email address, so we cannot match it "
                                               "to an account")
    if not joinable:
        raise SsoRefused("domain_not_allowed", f"this organisation's single sign-on does "
                                               f"not admit addresses at "
                                               f"{email.rpartition('@')[2]}")
    try:
        with db.session.begin_nested():
            return _link_or_create(login, tenant, claims, email), joinable
    except IntegrityError:
        # The same person's first sign-in finishing at the same moment in another
        # browser made the identity first: it is theirs, so use it.
        identity = _identity(login, claims)
        if identity is None:
            raise
        return db.session.get(User, identity.user_id), joinable


def _identity(login: Login, claims: dict[str, Any]) -> UserIdentity | None:
    return db.session.scalars(select(UserIdentity).where(
        UserIdentity.issuer == login.issuer, UserIdentity.subject == str(claims["sub"]))
    ).one_or_none()


def _link_or_create(login: Login, tenant: Tenant, claims: dict[str, Any], email: str) -> User:
    user = find_user_by_email(email)
    if user is None:
        user = create_user(email, name=str(claims.get("name") or "")[:120])
        user.status = UserStatus.ACTIVE
    elif not _linkable(user, tenant):
        raise SsoRefused("account_elsewhere", "an account with this email already exists "
                                              "outside this organisation; sign in with "
                                              "your password instead")
    db.session.add(UserIdentity(user_id=user.id, issuer=login.issuer,
                                subject=str(claims["sub"]), last_used_at=utcnow()))
    db.session.flush()
    return user


def sign_in(login: Login, claims: dict[str, Any]) -> User:
    """The user validated `claims` stand for, made a member of the tenant if they may
    join; audits auth.sso_login (and member.jit_joined). Raises SsoRefused."""
    tenant = db.session.get(Tenant, login.tenant_id)
    user, joinable = _account(login, tenant, claims)
    if user.status == UserStatus.DISABLED:
        raise SsoRefused("disabled", "this account is disabled")
    if user.status == UserStatus.INVITED:
        user.status = UserStatus.ACTIVE  # the provider proved the invited address
    with scoped_to(tenant.id, user_id=user.id):
        member = db.session.scalars(select(Membership).where(
            Membership.user_id == user.id)).one_or_none()
        # A platform admin is never made a tenant member by signing in (issue 13).
        if member is None and not user.is_platform_admin:
            if not joinable:
                raise SsoRefused("not_a_member", "you are not a member of this organisation")
            member = Membership(user_id=user.id, role=login.default_role)
            db.session.add(member)
            db.session.flush()
            audit.record("member.jit_joined", target_type="member", target_id=member.id,
                         details={"user_id": str(user.id), "role": member.role,
                                  "issuer": login.issuer},
                         actor=user_actor(user), tenant_id=tenant.id)
        user.last_login_at = utcnow()
        audit.record("auth.sso_login", target_type="user", target_id=user.id,
                     details={"issuer": login.issuer}, actor=user_actor(user),
                     tenant_id=tenant.id)
    return user
