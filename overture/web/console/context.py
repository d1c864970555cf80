"""The console's frame: which workspace a page acts in, the one permission check
(`page`), the left navigation, and `render`, which gives every page its shell.

A page acts in one tenant, chosen in this order: the `X-Overture-Tenant` header, the
workspace the person chose in the console (kept in their server-side session), the
tenant whose verified domain the request came to, the one tenant they belong to. The
check is the API's own (the principal as `auth.current_principal` makes it,
`tenants.access.enter`, `Access.require`), so a page never decides differently.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import current_app, g, render_template, request, session
from flask_login import current_user, login_required

from overture.billing import standing
from overture.platform import audit
from overture.platform.db import utcnow
from overture.platform.errors import Forbidden, NotFound, TenantRequired, TenantSuspended
from overture.tenants import access as tenant_access
from overture.tenants.access import Access, Principal
from overture.tenants.models import Tenant
from overture.web.auth import TENANT_HEADER, actor_of

F = TypeVar("F", bound=Callable[..., Any])
CHOSEN = "console_tenant"  # session key: the id of the workspace chosen in the console


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    permission: str | None = None
    group: str = "workspace"  # one of NAV_GROUPS


# The console's sections, in order. A section shows only when its page exists in this
# app (other parts of the console register theirs) and the role may use it.
# The navigation's sections, in order, with the heading each shows (none for the first).
NAV_GROUPS = (("workspace", None), ("billing", "Usage & billing"), ("admin", "Manage"))
NAV: list[NavItem] = [
    NavItem("Home", "console.home"),
    NavItem("Workflows", "console.workflows_page", "workflow.read"),
    NavItem("Runs", "console.runs", "run.read"),
    NavItem("Approvals", "console.approvals", "run.read"),
    NavItem("Agents", "console.agents", "workflow.read"),
    NavItem("Connections", "console.connections", "credential.read"),
    NavItem("Knowledge", "console.knowledge", "workflow.read"),
    NavItem("Members", "console.members", "member.read", "admin"),
    NavItem("API keys", "console.api_keys", "apikey.read", "admin"),
    NavItem("Events", "console.events", "tenant.manage", "admin"),
    NavItem("Audit", "console.audit", "audit.read", "admin"),
    NavItem("Settings", "console.settings", "tenant.read", "admin"),
]


def register_nav(label: str, endpoint: str, permission: str | None = None,
                 group: str = "workspace") -> None:
    """Name a page in the navigation (another blueprint's page, say the builder's).
    An item with the same label is replaced, so the default endpoint can be overridden."""
    item = NavItem(label, endpoint, permission, group)
    for i, existing in enumerate(NAV):
        if existing.label == label:
            NAV[i] = item
            return
    NAV.append(item)


def chosen_ref() -> str | None:
    return request.headers.get(TENANT_HEADER) or session.get(CHOSEN)


def console_principal() -> Principal:
    """The signed-in person (the page is `login_required`). As `auth.current_principal`
    makes it, and audited as them, but not charged to their API allowance: reading a
    page is not an API call. Forms are CSRF-checked by CSRFProtect for every POST."""
    principal = g.get("principal")
    if principal is None:
        principal = Principal(user=current_user._get_current_object())
        g.principal = principal
        audit.set_actor(actor_of(principal))
    return principal


def console_access() -> Access:
    """The signed-in person's access in the workspace this page acts in (the scope
    follows it). TenantRequired when they reach several and chose none."""
    access = g.get("access")
    if access is not None:
        return access
    principal = console_principal()
    header = request.headers.get(TENANT_HEADER)
    # On a tenant's own domain its pages are the default (a mailed link to a run there
    # opens that run, for agency staff too), after a choice made on this host.
    host = str(g.host_tenant_id) if g.get("host_tenant_id") else None
    try:
        access = tenant_access.enter(principal, header or session.get(CHOSEN) or host)
    except NotFound:
        if header or not (session.get(CHOSEN) or host):
            raise
        # The chosen workspace is gone or no longer reachable (or this domain's tenant
        # is not theirs): forget it, fall back.
        session.pop(CHOSEN, None)
        access = tenant_access.enter(principal, None)
    g.access = access
    if not access.is_platform:
        g.brand_tenant_id = access.tenant.id  # the page shows this workspace's brand
    return access


def _chosen_tenant() -> Tenant | None:
    ref = chosen_ref()
    if ref:
        return tenant_access.find_tenant(ref)
    homes = tenant_access.memberships_of(current_user._get_current_object())
    return homes[0].tenant if len(homes) == 1 else None


def choose(tenant: Tenant) -> None:
    session[CHOSEN] = str(tenant.id)


def page(permission: str | None = None) -> Callable[[F], F]:
    """A console page: signed in as staff (never a portal user), in a workspace, holding
    `permission` there."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if tenant_access.is_portal_only(console_principal().user):
                raise Forbidden(tenant_access.PORTAL_ONLY)
            try:
                access = console_access()
            except TenantRequired:
                return render("console/choose.html", title="Choose a workspace")
            except TenantSuspended:
                # Said plainly, in the frame, so the person can switch or sign out.
                return render("console/suspended.html", 403, title="Workspace suspended",
                              suspended=_chosen_tenant())
            tenant_access.require_staff(access)
            if permission is not None:
                access.require(permission)
            return view(*args, **kwargs)

        wrapped._overture_permission = permission  # type: ignore[attr-defined]
        return login_required(wrapped)  # type: ignore[return-value]

    return decorate


def nav_items(access: Access | None) -> list[NavItem]:
    views = current_app.view_functions
    return [item for item in NAV if item.endpoint in views and (
        item.permission is None or (access is not None and access.can(item.permission)))]


def shell() -> dict[str, Any]:
    """What the layout needs: who, where, the navigation and the workspace switcher."""
    access: Access | None = g.get("access")
    user = current_user._get_current_object() if current_user.is_authenticated else None
    reachable = tenant_access.reachable_tenants(user) if user is not None else []
    items = nav_items(access)
    return {
        "user": user,
        "access": access,
        "tenant": access.tenant if access is not None else None,
        "reachable": reachable,
        "nav": [(heading, [i for i in items if i.group == group])
                for group, heading in NAV_GROUPS],
        "endpoint": request.endpoint,
        "past_due": _past_due(access),
    }


def _past_due(access: Access | None) -> dict[str, Any] | None:
    """Why runs stop (or are about to) for this workspace: its payment, or its
    agency's, is past due. None in good standing."""
    tenant = access.tenant if access is not None else None
    if tenant is None or tenant.kind == "platform":
        return None
    found = standing.governing(tenant.id, utcnow())
    if found is None:
        return None
    whose, shown = found
    return {"standing": shown, "own": whose == tenant.id,
            "payer": tenant.name if whose == tenant.id else (
                tenant.parent.name if tenant.parent else "the agency")}


def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(template, shell=shell(), **context), status
