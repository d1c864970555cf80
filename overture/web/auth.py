"""Who is calling, and the one permission check every endpoint uses: `require`.

People sign in with a session cookie (Flask-Login); programs send
`Authorization: Bearer ovt_...`. A session-authenticated API call that changes
something must carry the CSRF token (`X-CSRFToken`), as forms do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, request
from flask_login import current_user

from overture.platform import audit
from overture.platform.errors import Forbidden, Unauthenticated
from overture.tenants import access as tenant_access
from overture.tenants import mfa
from overture.tenants.access import Access, Principal
from overture.tenants.apikeys import authenticate_key
from overture.tenants.models import User
from overture.web import ratelimit
from overture.web.extensions import client_address, csrf

F = TypeVar("F", bound=Callable[..., Any])
TENANT_HEADER = "X-Overture-Tenant"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def current_principal() -> Principal:
    """The caller of this request, authenticated once and remembered on `g`."""
    principal = g.get("principal")
    if principal is not None:
        return principal
    with ratelimit.authentication_attempt():
        principal = _authenticate()
    ratelimit.charge(principal)  # after authentication: only a caller spends its bucket
    g.principal = principal
    audit.set_actor(actor_of(principal))
    return principal


def _authenticate() -> Principal:
    token = bearer_token()
    if token is not None:
        key = authenticate_key(token, client_address())
        creator: User = key.created_by
        if not creator.is_active:
            raise Unauthenticated("invalid API key")
        return Principal(user=creator, api_key=key)
    if current_user.is_authenticated:
        if request.method not in SAFE_METHODS:
            csrf.protect()
        return Principal(user=current_user._get_current_object())
    raise Unauthenticated("sign in, or send an API key as 'Authorization: Bearer ovt_...'")


def actor_of(principal: Principal) -> audit.Actor:
    if principal.api_key is not None:
        return audit.Actor("api_key", str(principal.api_key.id),
                           f"{principal.api_key.prefix} by {principal.user.email}")
    return audit.Actor("user", str(principal.user.id), principal.user.email)


def current_access() -> Access:
    """The caller's access in the tenant this request acts in; the scope follows it."""
    access = g.get("access")
    if access is None:
        access = tenant_access.enter(current_principal(), request.headers.get(TENANT_HEADER))
        tenant_access.require_staff(access)
        # A tenant that requires a second factor of its staff refuses them until they
        # enrol: checked here, where every request enters its tenant.
        mfa.require_enrolment_if_owed(access)
        g.access = access
    return access


def require(permission: str | None = None) -> Callable[[F], F]:
    """Authenticate, enter the tenant, and check `permission` before the view runs."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            access = current_access()
            if permission is not None:
                access.require(permission)
            return view(*args, **kwargs)

        wrapped._overture_permission = permission  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorate


def authenticated(view: F) -> F:
    """Any signed-in caller acting in no particular tenant, but not a portal user."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        principal = current_principal()
        if tenant_access.is_portal_only(principal.user):
            raise Forbidden(tenant_access.PORTAL_ONLY)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
