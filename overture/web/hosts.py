"""Which host a request is for, and which tenant's custom domain that is.

Behind a reverse proxy the connection's peer is the proxy, and the Host the browser
asked for may arrive in `X-Forwarded-Host` (the scheme in `X-Forwarded-Proto`). Those
headers are believed only from a peer in `OVERTURE_TRUSTED_PROXIES` (the same list
that `extensions.client_address` reads `X-Forwarded-For` with), and then only the last
value, the one the proxy next to us wrote; from anyone else they are removed before the
app sees the request, so nothing can read them by mistake. (werkzeug's ProxyFix trusts
a count of hops from any peer instead.)

`resolve_host`, the first `before_request` hook, sets `g.host_tenant_id`: the tenant
whose *verified* custom domain the request's host is, else None (the platform's own
host, an unknown, unverified or removed domain, a suspended tenant). The lookup is
made per request, on a unique index; nothing is cached, so removing a domain or losing
its verification takes effect on the next request.

On such a domain `/` is the front door (`front_door`, a hook that runs once the session
is read): the console's home for a signed-in person who may use the console there (the
tenant's staff or its agency's, as the console's own check decides), the tenant's portal
for everyone else (its customers, and anyone not signed in).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, current_app, g, redirect, request
from flask_login import current_user
from werkzeug.wrappers import Response

from overture.platform.errors import Forbidden, NotFound
from overture.tenants import access as tenant_access
from overture.tenants import domains
from overture.tenants.access import Principal
from overture.tenants.models import Tenant

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# A Host header value: a name or IPv4 address, or a bracketed IPv6 one, and a port.
HOST_VALUE = re.compile(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]{1,253})(:[0-9]{1,5})?")
SKIPPED_ENDPOINTS = frozenset({"static"})


class TrustedProxies:
    """WSGI middleware: the host and scheme a trusted proxy vouches for."""

    def __init__(self, app: Callable[..., Any], trusted: Iterable[IPNetwork]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        forwarded_host = _last(environ.pop("HTTP_X_FORWARDED_HOST", ""))
        forwarded_proto = _last(environ.pop("HTTP_X_FORWARDED_PROTO", "")).lower()
        if self._trusted(environ.get("REMOTE_ADDR", "")):
            if HOST_VALUE.fullmatch(forwarded_host):
                environ["HTTP_HOST"] = forwarded_host
            if forwarded_proto in ("http", "https"):
                environ["wsgi.url_scheme"] = forwarded_proto
        return self.app(environ, start_response)

    def _trusted(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.trusted)


def _last(value: str) -> str:
    """The rightmost entry of a comma-separated header: the one the nearest proxy wrote."""
    return value.rsplit(",", 1)[-1].strip()


def request_hostname() -> str:
    """The request's host name: lower case, without port or trailing dot."""
    host = (request.host or "").lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0].rstrip(".") if ":" in host else host.rstrip(".")


def _could_be_custom(hostname: str) -> bool:
    """Cheap refusals before the database: the platform's own host, IP literals,
    single-label names."""
    if "." not in hostname or hostname == domains.platform_host(
            current_app.extensions["overture.settings"]):
        return False
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return True
    return False


def resolve_host() -> Response | None:
    g.host_tenant_id = None
    if request.endpoint in SKIPPED_ENDPOINTS:
        return None
    hostname = request_hostname()
    if not _could_be_custom(hostname):
        return None
    tenant = domains.tenant_for_host(hostname)
    if tenant is None:
        return None
    g.host_tenant_id = tenant.id
    return None


def front_door() -> Response | None:
    """`/` on a tenant's domain: the console's home (the view that answers `/`) for its
    staff, a redirect to the tenant's portal (web/portal/) for everyone else."""
    tenant_id = g.get("host_tenant_id")
    if tenant_id is None or request.path != "/" or request.method not in ("GET", "HEAD"):
        return None
    tenant = tenant_access.find_tenant(str(tenant_id))
    if tenant is None:
        return None
    if _console_is_theirs(tenant):
        return None
    return redirect(f"/portal/{tenant.slug}/")


def _console_is_theirs(tenant: Tenant) -> bool:
    """Whether the signed-in person may use the console for `tenant`: the console's own
    check (`tenants.access`: reach the tenant, directly or through its agency, in a
    staff role)."""
    if not current_user.is_authenticated:
        return False
    try:
        access = tenant_access.access_to(Principal(user=current_user._get_current_object()),
                                          tenant)
        tenant_access.require_staff(access)
    except (NotFound, Forbidden):  # not theirs, or theirs as a customer (or suspended)
        return False
    return True


def install(app: Flask) -> None:
    settings = app.extensions["overture.settings"]
    app.wsgi_app = TrustedProxies(app.wsgi_app, settings.trusted_proxies)  # type: ignore[method-assign]
    # First of all hooks (before the session is read): every page, error pages too,
    # knows whose domain it is on.
    app.before_request_funcs.setdefault(None, []).insert(0, resolve_host)
    # After the session is read (sessions.install put its hook first): who is asking.
    app.before_request(front_door)
