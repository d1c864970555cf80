"""The portal's frame: which workspace the address names, who may be there, and
`render`, which gives every portal page its layout.

The workspace is the one whose slug the address carries. On a verified custom
domain (`g.host_tenant_id`, set by the domains hook) a slug of another tenant is not
found, exactly like a slug nobody has. The page acts for the workspace: it sets
`g.brand_tenant_id`, so the brand every template gets (web/brand_pages.py: `brand`, and
`brand_css` in the page's one inline style, allowed by its hash) is the workspace's.

`customer` is the one check a portal page uses: signed in (else to the portal's own
sign-in page, and back), a member of this workspace holding `portal.use` (staff hold
other roles and use the console), the scope and the audit actor set to them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, redirect, render_template, request, session, url_for
from flask_login import current_user

from overture.orchestration.portal import customer as service
from overture.platform import audit
from overture.platform.db import utcnow
from overture.platform.errors import Forbidden, NotFound
from overture.tenants import access as tenant_access
from overture.tenants.access import Access, Principal
from overture.tenants.models import Tenant, TenantKind, User
from overture.web.auth import actor_of
from overture.web.portal import bp

F = TypeVar("F", bound=Callable[..., Any])
PORTAL_USE = "portal.use"

@bp.url_value_preprocessor
def _take_slug(endpoint: str | None, values: dict[str, Any] | None) -> None:
    g.portal_slug = (values or {}).pop("slug", None)


@bp.url_defaults
def _give_slug(endpoint: str, values: dict[str, Any]) -> None:
    if "slug" not in values and g.get("portal_slug"):
        values["slug"] = g.portal_slug


@bp.before_request
def _find_workspace() -> None:
    """Every portal address names a live workspace, or it is not found."""
    slug = g.get("portal_slug") or ""
    tenant = tenant_access.find_tenant(slug) if slug else None
    if tenant is None or tenant.slug != slug or tenant.kind == TenantKind.PLATFORM:
        raise NotFound("there is no portal here")
    host = g.get("host_tenant_id")
    if host is not None and host != tenant.id:
        raise NotFound("there is no portal here")
    g.portal_tenant = tenant
    g.brand_tenant_id = tenant.id


def workspace() -> Tenant:
    tenant: Tenant = g.portal_tenant
    return tenant


def person() -> User:
    return g.access.principal.user  # type: ignore[no-any-return]


def customer(view: F) -> F:
    """A portal page: signed in, and a portal user of this workspace."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return redirect(url_for("portal.login", next=request.full_path.rstrip("?")))
        enter()
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def enter() -> Access:
    """The signed-in person's access to this workspace; the scope follows it."""
    access = g.get("access")
    if access is not None:
        return access
    principal = Principal(user=current_user._get_current_object())
    g.principal = principal
    audit.set_actor(actor_of(principal))
    try:
        access = tenant_access.enter(principal, str(workspace().id))
    except NotFound as exc:
        raise Forbidden(f"you are signed in as {principal.user.email}, who is not a "
                        "customer here") from exc
    if not access.can(PORTAL_USE):
        raise Forbidden("this portal is for the workspace's customers; its staff use the "
                        "console")
    g.access = access
    _count_as_active(principal.user.id)
    return access


def _count_as_active(user_id: Any) -> None:
    """Once a month per session: the meter itself counts each person once a month, this
    only spares every page the write."""
    now = utcnow()
    marker = f"{workspace().id}:{now:%Y-%m}"
    if session.get("portal_active") != marker:
        service.note_activity(user_id, now)
        session["portal_active"] = marker


def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(template, portal=frame(), **context), status


def frame() -> dict[str, Any]:
    """What the layout needs: the workspace, the person (once they are in), the
    sections and which one this is."""
    access: Access | None = g.get("access")
    waiting = len(service.my_approvals(access.principal.user.id)) if access else 0
    return {"tenant": g.get("portal_tenant"), "user": access.principal.user if access else None,
            "endpoint": request.endpoint, "waiting": waiting,
            "poll": current_app.config.get("PORTAL_POLL", "2s")}
