"""TXT lookups through the installation's DNS resolvers (dnspython), for custom-domain
verification.

The query goes to the resolvers the operator configured (`OVERTURE_DNS_NAMESERVERS`
and `OVERTURE_DNS_PORT`, else the system's), never to an address a tenant supplied:
a tenant names only the record to look up. That is why this is one of the outbound
scan's guard modules (tests/outbound_scan.py) rather than a path through the guard,
which exists to refuse tenant-chosen destinations.

No answer is cached here (dnspython's resolver keeps no cache unless given one), so a
record just created or removed is seen as the resolvers see it.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from overture.platform.config import Settings


class LookupFailed(Exception):
    """No definite answer (a timeout, every resolver failing): says nothing about the
    record, so the caller must not conclude it is missing."""


@dataclass(frozen=True)
class TxtAnswer:
    """What the resolvers said about one name: `exists` is False on NXDOMAIN; `values`
    are the TXT records there, each one's strings joined, as text."""

    name: str
    exists: bool
    values: tuple[str, ...]


def txt_records(name: str, settings: Settings) -> TxtAnswer:
    resolver = dns.resolver.Resolver(configure=not settings.dns_nameservers)
    if settings.dns_nameservers:
        resolver.nameservers = list(settings.dns_nameservers)
    resolver.port = settings.dns_port
    resolver.lifetime = settings.dns_timeout_seconds
    resolver.timeout = min(2.0, settings.dns_timeout_seconds)  # per try; lifetime bounds all
    try:
        answer = resolver.resolve(dns.name.from_text(name), dns.rdatatype.TXT,
                                  search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return TxtAnswer(name, False, ())
    except dns.resolver.LifetimeTimeout as exc:
        raise LookupFailed(f"the DNS resolvers did not answer within "
                           f"{settings.dns_timeout_seconds:g} s") from exc
    except dns.resolver.NoNameservers as exc:
        raise LookupFailed("every DNS resolver failed to answer (SERVFAIL or refused)") from exc
    except dns.exception.DNSException as exc:
        raise LookupFailed(f"the DNS lookup failed: {exc}") from exc
    values = tuple(b"".join(rdata.strings).decode("utf-8", "replace")
                   for rdata in (answer.rrset or ()))
    return TxtAnswer(name, True, values)
