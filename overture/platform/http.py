"""The one outbound HTTP client: timeouts always, and no requests to private,
loopback, link-local or metadata addresses unless the installation allows them.

Tenant-supplied URLs are resolved and every resolved address is checked; redirects
are followed by hand so every hop is checked the same way. (Pinning the connection
to the checked address, against DNS rebinding, arrives with the connector framework.)
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

import httpx

from overture.platform.errors import OvertureError

DEFAULT_TIMEOUT = 30.0
MAX_REDIRECTS = 5
ALLOWLIST_ENV = "OVERTURE_OUTBOUND_ALLOWLIST"


class BlockedDestination(OvertureError):
    status = 422
    code = "blocked-destination"
    title = "Destination not allowed"


def _allowlist() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    raw = os.environ.get(ALLOWLIST_ENV, "")
    return [ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",")
            if part.strip()]


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    cgnat = ipaddress.ip_network("100.64.0.0/10")
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or ip in cgnat)


def check_destination(url: str) -> list[str]:
    """Raise BlockedDestination unless every address `url` resolves to is public or
    on the installation's allow-list; returns those addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedDestination(f"only http(s) URLs with a host are allowed: {url!r}")
    return check_host(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))


def _pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL aimed at the checked address, with the Host header and TLS server name
    of the original host: resolved once, so DNS cannot answer differently later."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = literal + (f":{parts.port}" if parts.port else "")
    pinned = parts._replace(netloc=netloc).geturl()
    host_header = host + (f":{parts.port}" if parts.port else "")
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return pinned, {"Host": host_header}, extensions


def check_host(host: str, port: int) -> list[str]:
    """The same check for a non-HTTP destination (SMTP, IMAP, PostgreSQL): raise
    BlockedDestination unless every address `host` resolves to is allowed; return those
    addresses, so the caller can connect to one of them rather than resolve again."""
    if not host or not isinstance(port, int) or not 0 < port < 65536:
        raise BlockedDestination(f"not a host and port: {host!r}:{port!r}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BlockedDestination(f"cannot resolve {host!r}") from exc
    allowed, addresses = _allowlist(), []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if _forbidden(ip) and not any(ip in net for net in allowed):
            raise BlockedDestination(f"{host!r} resolves to a private or reserved "
                                     f"address ({ip})")
        addresses.append(str(ip))
    return addresses


def request(method: str, url: str, *, headers: dict[str, str] | None = None,
            content: bytes | None = None, json: object = None,
            params: Iterable[tuple[str, str]] | dict[str, str] | None = None,
            timeout: float = DEFAULT_TIMEOUT) -> httpx.Response:
    """One request to a tenant-supplied URL, every redirect hop checked."""
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            address = check_destination(url)[0]
            pinned, host, extensions = _pinned(url, address)
            response = client.request(method, pinned, headers={**(headers or {}), **host},
                                      content=content, json=json, params=params,
                                      extensions=extensions)
            if not response.is_redirect:
                return response
            url = urljoin(url, response.headers["location"])
            if response.status_code in (301, 302, 303):
                method, content, json = "GET", None, None
        raise BlockedDestination(f"more than {MAX_REDIRECTS} redirects")
