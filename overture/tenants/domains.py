"""Custom domains: a tenant adds a host name, proves it controls its DNS with a TXT
record, and from then on requests for that host are served as the tenant's.

The record is `<label>.<domain> TXT "verify=<token>"`, where the label is the
installation's `OVERTURE_DOMAIN_TXT_LABEL` (`_verify` unless the operator chose
another: it is what a white-label client sees, so the default names no product). The
token is 192 random bits, stored as it is: it is published in DNS by design, so it is
no secret, and the console must be able to show it again until the record exists.
What makes the proof is that only someone who controls the zone can put this claim's
token there.

A domain is served only while it is verified. A check (`verify`) that gets a definite
answer without the record takes a verified domain out of service; a lookup that gets
no answer at all (timeout, failing resolvers) changes nothing. Removing a domain
deletes its row, and the next request for that host is the platform's: hosts are
looked up per request, never cached.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import idna
from flask import current_app
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from overture.platform import audit, resolver
from overture.platform.config import Settings
from overture.platform.db import db, get_or_404, in_tenant, unscoped, utcnow
from overture.platform.errors import Conflict, ValidationFailed
from overture.platform.pagination import Page, paginate
from overture.tenants.access import Access
from overture.tenants.domain_models import CustomDomain
from overture.tenants.models import Tenant

MAX_DOMAINS = 20  # per tenant: enough for every portal it runs, bounded against abuse
VALUE_PREFIX = "verify="
LDH_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
# A last label that is a number (or WHATWG's hex number) makes browsers read the
# whole name as an IPv4 address (`127.1`, `1.0x7f`).
NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
SHOWN_VALUES = 5


@dataclass(frozen=True)
class Check:
    """The outcome of one verification: `ok`, and what was found, in words."""

    ok: bool
    message: str


def _settings() -> Settings:
    settings: Settings = current_app.extensions["overture.settings"]
    return settings


def platform_host(settings: Settings) -> str:
    return (urlsplit(settings.public_url).hostname or "").lower().rstrip(".")


# --------------------------------------------------------------------------- names


def normalize(raw: str, settings: Settings) -> str:
    """The host name a person typed, as the ASCII name browsers send; a 422 naming the
    fault for anything that cannot be a public host of this tenant's own."""
    value = (raw or "").strip()
    if not value:
        raise ValidationFailed.field("hostname", "enter a domain, such as portal.example.com")
    if "://" in value or any(c in value for c in "/?#@:[] \t"):
        raise ValidationFailed.field("hostname", "enter the host name only, such as "
                                     "portal.example.com: no scheme, port, path or spaces")
    value = value[:-1] if value.endswith(".") else value
    if "*" in value:
        raise ValidationFailed.field("hostname", "wildcards cannot be verified: add each "
                                     "host name")
    if _is_ip(value):
        raise ValidationFailed.field("hostname", "an IP address cannot be a custom domain: "
                                     "use a host name")
    try:
        hostname = idna.encode(value, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValidationFailed.field("hostname", f"not a valid domain name ({exc})") from exc
    labels = hostname.split(".")
    if len(hostname) > 253 or not all(LDH_LABEL.fullmatch(label) for label in labels):
        raise ValidationFailed.field("hostname", "not a valid domain name: labels of letters, "
                                     "digits and hyphens, at most 63 each, 253 in all")
    if len(labels) < 2:
        raise ValidationFailed.field("hostname", "use a full domain name with a dot, such as "
                                     "portal.example.com")
    if NUMERIC_LABEL.fullmatch(labels[-1]) or _is_ip(hostname):
        raise ValidationFailed.field("hostname", "an IP address cannot be a custom domain: "
                                     "use a host name")
    if labels[-1] == "localhost":
        raise ValidationFailed.field("hostname", "localhost names cannot be custom domains")
    own = platform_host(settings)
    if own and (hostname == own or hostname.endswith("." + own)):
        raise ValidationFailed.field("hostname", "this is the platform's own address, not a "
                                     "domain of yours")
    return hostname


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def display_name(hostname: str) -> str:
    """The name as people write it (Unicode for an internationalised domain)."""
    try:
        return str(idna.decode(hostname))
    except (idna.IDNAError, UnicodeError):
        return hostname


def record_name(domain: CustomDomain, settings: Settings | None = None) -> str:
    return f"{(settings or _settings()).domain_txt_label}.{domain.hostname}"


def record_value(domain: CustomDomain) -> str:
    return VALUE_PREFIX + domain.token


# --------------------------------------------------------------------------- the tenant's list


def list_domains(access: Access, cursor: str | None, limit: int | None) -> Page[CustomDomain]:
    access.require("tenant.read")
    return paginate(select(CustomDomain), CustomDomain.id, cursor, limit)


def get_domain(access: Access, domain_id: str) -> CustomDomain:
    access.require("tenant.read")
    return get_or_404(CustomDomain, domain_id, "domain")


def add_domain(access: Access, raw: str) -> CustomDomain:
    """Claim a host name; the caller commits. It is served once `verify` finds the record."""
    access.require("tenant.manage")
    access.require_tenant()
    hostname = normalize(raw, _settings())
    mine = db.session.scalars(select(CustomDomain.hostname)).all()
    if hostname in mine:
        raise Conflict(f"this workspace already has {hostname}")
    if len(mine) >= MAX_DOMAINS:
        raise ValidationFailed.field("hostname", f"a workspace has at most {MAX_DOMAINS} "
                                     "domains: remove one first")
    if _verified_holder(hostname) is not None:
        raise _taken(hostname)
    domain = CustomDomain(hostname=hostname, token=secrets.token_urlsafe(24),
                          created_by_id=access.principal.user.id)
    try:
        with db.session.begin_nested():
            db.session.add(domain)
            db.session.flush()
    except IntegrityError as exc:  # the same name added at the same moment
        raise Conflict(f"this workspace already has {hostname}") from exc
    audit.record("domain.added", target_type="custom_domain", target_id=domain.id,
                 details={"hostname": hostname})
    return domain


def remove(access: Access, domain: CustomDomain) -> None:
    """Delete the claim; the caller commits. The next request for the host is not served
    as this tenant's (nothing caches hosts)."""
    access.require("tenant.manage")
    audit.record("domain.removed", target_type="custom_domain", target_id=domain.id,
                 details={"hostname": domain.hostname, "was_verified": domain.verified})
    db.session.delete(domain)
    db.session.flush()


def _taken(hostname: str) -> Conflict:
    return Conflict(f"another workspace holds {hostname} verified: it can be added here only "
                    "once that workspace removes it")


# --------------------------------------------------------------------------- verification


def verify(access: Access, domain: CustomDomain) -> Check:
    """Look for the TXT record now; the caller commits. A Conflict (409) when another
    tenant holds the name verified, however close the race."""
    access.require("tenant.manage")
    settings = _settings()
    name, expected = record_name(domain, settings), record_value(domain)
    now = utcnow()
    try:
        answer = resolver.txt_records(name, settings)
    except resolver.LookupFailed as exc:
        # No answer says nothing about the record: a verified domain stays served.
        check = Check(False, f"The check could not be made: {exc}. Nothing was changed; "
                             "try again in a moment.")
        domain.last_checked_at, domain.last_check_error = now, check.message
        return check
    if any(_holds(value, expected) for value in answer.values):
        return _proven(domain, now)
    check = Check(False, _not_found(domain, answer, expected, settings))
    domain.last_checked_at, domain.last_check_error = now, check.message
    if domain.verified:
        domain.verified_at = None
        audit.record("domain.unverified", target_type="custom_domain", target_id=domain.id,
                     details={"hostname": domain.hostname, "found": list(answer.values)[:5]})
        check = Check(False, f"{domain.hostname} is no longer served: the record that "
                             f"proved it is gone. {check.message}")
        domain.last_check_error = check.message
    return check


def _holds(value: str, expected: str) -> bool:
    # DNS consoles differ on quoting: surrounding quotes and spaces are not part of it.
    return value.strip().strip('"').strip() == expected


def _proven(domain: CustomDomain, now: datetime) -> Check:
    holder = _verified_holder(domain.hostname)
    if holder is not None and holder.id != domain.id:
        raise _taken(domain.hostname)
    domain.last_checked_at, domain.last_check_error = now, None
    if domain.verified:
        return Check(True, f"{domain.hostname} is verified: the record is still in place.")
    try:
        with db.session.begin_nested():
            domain.verified_at = now
            db.session.flush()
    except IntegrityError as exc:  # another tenant verified it since the check above
        raise _taken(domain.hostname) from exc
    audit.record("domain.verified", target_type="custom_domain", target_id=domain.id,
                 details={"hostname": domain.hostname})
    return Check(True, f"{domain.hostname} is verified: its pages are served there from "
                       "now on.")


def _not_found(domain: CustomDomain, answer: resolver.TxtAnswer, expected: str,
               settings: Settings) -> str:
    where = answer.name
    advice = (f"Create a TXT record named {where} with the value {expected}, then check "
              "again; new records can take a few minutes to reach the resolvers.")
    if not answer.exists:
        found = f"No record exists at {where} yet."
    elif not answer.values:
        found = f"{where} exists but holds no TXT record."
    else:
        shown = ", ".join(repr(_clip(v)) for v in answer.values[:SHOWN_VALUES])
        more = len(answer.values) - SHOWN_VALUES
        found = (f"Found {len(answer.values)} TXT record{'s' if len(answer.values) > 1 else ''}"
                 f" at {where}, none of them {expected!r}: {shown}"
                 f"{f' and {more} more' if more > 0 else ''}.")
    if answer.exists and answer.values:
        return f"{found} {advice}"
    try:  # a common slip: the record made on the domain itself
        apex = resolver.txt_records(domain.hostname, settings)
    except resolver.LookupFailed:
        return f"{found} {advice}"
    if any(_holds(value, expected) for value in apex.values):
        return (f"{found} The record is on {domain.hostname} itself; it must be on {where}. "
                f"{advice}")
    return f"{found} {advice}"


def _clip(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[:limit] + "…"


# --------------------------------------------------------------------------- serving


@contextmanager
def _host_visible(hostname: str) -> Iterator[None]:
    """Let this transaction read the verified claim on one host name, whatever tenant
    it belongs to (the `host_read` row-level security policy of migration 0024)."""
    connection = db.session.connection()
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.execute(text("SELECT set_config('app.host', :host, true)"),
                           {"host": hostname})
    # No `finally`: after an error the transaction is rolled back, and the setting
    # (transaction-local) with it.
    yield
    if postgres:
        connection.execute(text("SELECT set_config('app.host', '', true)"))


def _verified_holder(hostname: str) -> CustomDomain | None:
    with _host_visible(hostname):
        return db.session.scalars(unscoped(
            select(CustomDomain).where(CustomDomain.hostname == hostname,
                                       CustomDomain.verified_at.is_not(None))
        )).one_or_none()


def tenant_for_host(hostname: str) -> Tenant | None:
    """The tenant whose verified domain `hostname` is, if that tenant is in service."""
    domain = _verified_holder(hostname)
    if domain is None or not domain.tenant.usable:
        return None
    return domain.tenant



def public_base_url(tenant_id: uuid.UUID | None) -> str:
    """Where a tenant's people and customers reach it: `https://` and its verified
    custom domain (the first it verified, when it has several), else the installation's
    public URL. Every absolute link Overture mails or shows for a tenant starts here.

    Only the tenant's own domain: a workspace's pages are not served on its agency's
    domain (a portal whose slug is not the host's tenant is 404 there, and a session
    belongs to the host it was made on). TLS ends in front of Overture on a custom
    domain, so its links are https whatever the installation's own scheme."""
    settings = _settings()
    if tenant_id is None:
        return settings.public_url
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None or not tenant.usable:
        return settings.public_url  # its domain is not served (tenant_for_host)
    with db.session.no_autoflush, in_tenant(tenant_id):
        hostname = db.session.scalars(
            select(CustomDomain.hostname).where(CustomDomain.tenant_id == tenant_id,
                                                CustomDomain.verified_at.is_not(None))
            .order_by(CustomDomain.verified_at, CustomDomain.hostname).limit(1)).first()
    return f"https://{hostname}" if hostname else settings.public_url
