"""The outbound guard: every connection the platform opens to a tenant-supplied place
(connectors, OAuth endpoints, model providers, mail and database servers) is checked
here, and only here.

A host is resolved once; every address it resolves to must be a public one (or on the
installation's allow-list, `OVERTURE_OUTBOUND_ALLOWLIST`), and the connection then goes
to one of those checked addresses, never to a second resolution, so a DNS answer that
changes between the check and the connect cannot redirect it. Checking the resolved
address rather than the spelling makes every spelling of a private address alike:
decimal `2130706433`, hex `0x7f000001`, octal `0177.0.0.1`, short `127.1`, a trailing
dot, upper case, `[::ffff:127.0.0.1]` all resolve to an address refused below.

HTTP goes through `platform.http` (an httpx transport built on this module); SMTP,
IMAP and PostgreSQL through the openers at the end of this module. A test
(tests/test_outbound_paths.py) fails when code elsewhere opens a connection itself.
"""

from __future__ import annotations

import functools
import imaplib
import ipaddress
import os
import smtplib
import socket
import ssl
from dataclasses import dataclass
from typing import Any

import psycopg

from overture.platform.errors import ConfigError, OvertureError

ALLOWLIST_ENV = "OVERTURE_OUTBOUND_ALLOWLIST"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlockedDestination(OvertureError):
    status = 422
    code = "blocked-destination"
    title = "Destination not allowed"


class OriginNotAllowed(BlockedDestination):
    """A request of a client locked to some origins (a connection's, a provider's) went
    elsewhere, by its URL or by a redirect. `origin` names where it tried to go."""

    code = "origin-refused"
    title = "Origin not allowed for these credentials"

    def __init__(self, origin: str, detail: str) -> None:
        super().__init__(detail, origin=origin)
        self.origin = origin


class Unresolvable(OSError):
    """The host has no address (a typo, or the resolver is down): a connection
    failure, like a refused connection, not a refusal of ours."""


def _networks(*pairs: tuple[str, str]) -> tuple[tuple[Network, str], ...]:
    return tuple((ipaddress.ip_network(net), reason) for net, reason in pairs)


# IANA's special-purpose registries: nothing here is a public internet service.
FORBIDDEN_V4 = _networks(
    ("0.0.0.0/8", "'this network' (0.0.0.0 reaches the local host)"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT (shared address space)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata, 169.254.169.254)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved (and broadcast)"),
)
# IPv6 is refused outside global unicast (2000::/3); these name the usual suspects.
FORBIDDEN_V6 = _networks(
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/23", "IETF protocol assignments"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("fc00::/7", "unique local (private; fd00:ec2::254 is a cloud metadata address)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)
GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[str, tuple[ipaddress.IPv4Address, ...]]:
    """The IPv4 addresses an IPv6 address stands for: reaching it reaches them."""
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", (ip.ipv4_mapped,)
    if ip in NAT64:
        return "NAT64", (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
    if ip.sixtofour is not None:
        return "6to4", (ip.sixtofour,)
    if ip.teredo is not None:
        return "Teredo", ip.teredo
    return "", ()


def refusal(ip: Address) -> str | None:
    """Why the platform may not connect to `ip`, or None for a public address
    (the allow-list is not consulted here)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return next((reason for net, reason in FORBIDDEN_V4 if ip in net), None)
    kind, embedded = _embedded_v4(ip)
    if embedded:
        return next((f"{kind}, embedding {v4} ({reason})" for v4 in embedded
                     if (reason := refusal(v4))), None)
    reason = next((reason for net, reason in FORBIDDEN_V6 if ip in net), None)
    if reason is None and ip not in GLOBAL_UNICAST_V6:
        reason = "reserved (not global unicast)"
    return reason


@functools.lru_cache(maxsize=8)
def parse_allowlist(raw: str) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False)
                     for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"{ALLOWLIST_ENV} must be comma-separated CIDRs: {exc}") from exc


def allowlist() -> tuple[Network, ...]:
    # Read at each check (not once at start): tests and operators change it per process.
    return parse_allowlist(os.environ.get(ALLOWLIST_ENV, ""))


def check_address(ip: Address, host: str = "") -> None:
    if any(ip.version == net.version and ip in net for net in allowlist()):
        return
    reason = refusal(ip)
    if reason is not None:
        where = f"{host!r} resolves to {ip}" if host and host != str(ip) else str(ip)
        raise BlockedDestination(f"{where}: {reason}, not a public address (an operator "
                                 f"can allow it with {ALLOWLIST_ENV})")


@dataclass(frozen=True)
class Target:
    """A checked destination: connect only to `addresses`; `host` is what TLS verifies."""

    host: str
    port: int
    addresses: tuple[str, ...]


def check_host(host: str, port: int) -> Target:
    """Resolve `host` once and check every address; raise BlockedDestination if any is
    not allowed (a name that resolves to a public and a private address is refused),
    Unresolvable if there is none."""
    host = (host or "").strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or isinstance(port, bool) or not isinstance(port, int) \
            or not 0 < port < 65536:
        raise BlockedDestination(f"not a host and port: {host!r}:{port!r}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise Unresolvable(f"cannot resolve {host!r}") from exc
    addresses: list[str] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        check_address(ip, host)
        scope_id = info[4][3] if len(info[4]) > 3 else 0  # an allow-listed link-local's
        address = f"{ip}%{scope_id}" if scope_id else str(ip)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise Unresolvable(f"cannot resolve {host!r}")
    return Target(host, port, tuple(addresses))


def open_socket(target: Target, timeout: float | None,
                source_address: tuple[str, int] | None = None) -> socket.socket:
    """A TCP connection to one of the checked addresses, in the resolver's order.
    Each address is numeric, so `create_connection` resolves nothing again."""
    last: OSError = Unresolvable(f"cannot resolve {target.host!r}")
    for address in target.addresses:
        try:
            return socket.create_connection((address, target.port), timeout, source_address)
        except OSError as exc:
            last = exc
    raise last


# --------------------------------------------------------------------------- mail, databases


class PinnedSMTP(smtplib.SMTP):
    """smtplib.SMTP to a checked target; `_host` (what STARTTLS verifies) stays the name."""

    def __init__(self, target: Target, timeout: float, **kwargs: Any) -> None:
        self._target = target
        super().__init__(target.host, target.port, timeout=timeout, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return open_socket(self._target, timeout, self.source_address)


class PinnedSMTPSSL(PinnedSMTP, smtplib.SMTP_SSL):
    """SMTP over TLS from the first byte, to a checked target; the certificate must name
    the host."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = super()._get_socket(host, port, timeout)
        return self.context.wrap_socket(sock, server_hostname=self._host)


class PinnedIMAP(imaplib.IMAP4):
    """imaplib.IMAP4 to a checked target."""

    def __init__(self, target: Target, timeout: float) -> None:
        self._target = target
        super().__init__(target.host, target.port, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return open_socket(self._target, timeout)


class PinnedIMAPSSL(imaplib.IMAP4_SSL):
    """IMAP over TLS to a checked target; the certificate must name the host."""

    def __init__(self, target: Target, timeout: float, context: ssl.SSLContext) -> None:
        self._target = target
        super().__init__(target.host, target.port, ssl_context=context, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = open_socket(self._target, timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


def connect_postgres(target: Target, **params: Any) -> psycopg.Connection[Any]:
    """A PostgreSQL connection to the first checked address (`hostaddr`: libpq does not
    resolve again), with `host` kept for TLS verification and the password file."""
    return psycopg.connect(host=target.host, hostaddr=target.addresses[0].partition("%")[0],
                           port=target.port, **params)
