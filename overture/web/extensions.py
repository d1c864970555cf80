"""Flask extensions, created unbound and initialised by the app factory, and the one
answer to "who is calling from where": `client_address`."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from flask import current_app, request
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_wtf import CSRFProtect

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address() -> str:
    """The caller's address, for rate limits, audit events and an API key's last use.

    The connection's peer, unless the peer is a trusted proxy (OVERTURE_TRUSTED_PROXIES):
    then `X-Forwarded-For` is read from the right, each hop a trusted proxy vouches
    for, up to the first address that is not a trusted proxy. Entries further left
    were written by the client and prove nothing. With no trusted proxy the header is
    ignored: anyone can send it.
    """
    settings = current_app.extensions.get("overture.settings")
    trusted = settings.trusted_proxies if settings is not None else ()
    peer = request.remote_addr or ""
    if not trusted:
        return peer or "unknown"
    return forwarded_client(peer, request.headers.getlist("X-Forwarded-For"), trusted)


def forwarded_client(peer: str, forwarded_for: Iterable[str],
                     trusted: Iterable[IPNetwork]) -> str:
    networks = tuple(trusted)
    address = _parse(peer)
    if address is None:
        return peer or "unknown"
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        if not any(address in network for network in networks):
            break
        previous = _parse(hop)
        if previous is None:  # garbage: stop at the last hop a proxy vouched for
            break
        address = previous
    return str(address)


def _parse(value: str) -> IPAddress | None:
    """An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:443`."""
    value = value.strip()
    if value.startswith("[") and "]" in value:
        value = value[1:value.index("]")]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


limiter = Limiter(key_func=client_address)
login_manager = LoginManager()
csrf = CSRFProtect()
