"""Custom domains of the tenant this request acts in: add one, read the TXT record to
create, verify it, remove it. Only a verified domain is served as the tenant's."""

from __future__ import annotations

from typing import Any

from flask import request

from overture.platform.db import db
from overture.tenants import domains
from overture.tenants.domain_models import CustomDomain
from overture.web.api import api
from overture.web.api.domain_schemas import (
    DomainChecked,
    DomainCreate,
    DomainOut,
    DomainPage,
)
from overture.web.api.schemas import PageQuery
from overture.web.auth import current_access, require
from overture.web.extensions import limiter

TAGS = ["Domains"]
# Each check sends DNS queries: a loop on one domain must not keep the resolvers busy.
CHECKS_PER_DOMAIN = "20 per minute"

checks_limited = limiter.shared_limit(
    CHECKS_PER_DOMAIN, scope="domain-check", override_defaults=False,
    key_func=lambda: f"domain:{(request.view_args or {}).get('domain_id', '')}")


def domain_view(domain: CustomDomain) -> dict[str, Any]:
    return {
        "id": domain.id, "tenant_id": domain.tenant_id, "hostname": domain.hostname,
        "display_name": domains.display_name(domain.hostname),
        "status": "verified" if domain.verified else "pending",
        "record": {"type": "TXT", "name": domains.record_name(domain),
                   "value": domains.record_value(domain)},
        "verified_at": domain.verified_at, "last_checked_at": domain.last_checked_at,
        "last_check_error": domain.last_check_error, "created_at": domain.created_at,
    }


@api.get("/domains")
@require("tenant.read")
@api.input(PageQuery, location="query", arg_name="query")
@api.output(DomainPage)
@api.doc(tags=TAGS, summary="List the custom domains, with the TXT record each needs")
def list_domains(query: dict[str, Any]) -> dict[str, Any]:
    page = domains.list_domains(current_access(), query["cursor"], query["limit"])
    return page.body([domain_view(d) for d in page.items])


@api.post("/domains")
@require("tenant.manage")
@api.input(DomainCreate, arg_name="body")
@api.output(DomainOut, status_code=201)
@api.doc(tags=TAGS, summary="Add a custom domain; create its TXT record, then verify it",
         description="409 when this tenant already has the domain, or another tenant holds "
                     "it verified.")
def add_domain(body: dict[str, Any]) -> dict[str, Any]:
    domain = domains.add_domain(current_access(), body["hostname"])
    db.session.commit()
    return domain_view(domain)


@api.get("/domains/<domain_id>")
@require("tenant.read")
@api.output(DomainOut)
@api.doc(tags=TAGS, summary="One custom domain")
def get_domain(domain_id: str) -> dict[str, Any]:
    return domain_view(domains.get_domain(current_access(), domain_id))


@api.post("/domains/<domain_id>/verify")
@checks_limited
@require("tenant.manage")
@api.output(DomainChecked)
@api.doc(tags=TAGS, summary="Look up the TXT record now; verified once it is found",
         description="A check that finds the record gone takes a verified domain out of "
                     "service; one that gets no DNS answer changes nothing. `check.message` "
                     "says what was found. 409 when another tenant holds the domain "
                     "verified.")
def verify_domain(domain_id: str) -> dict[str, Any]:
    access = current_access()
    domain = domains.get_domain(access, domain_id)
    check = domains.verify(access, domain)
    db.session.commit()
    return domain_view(domain) | {"check": {"ok": check.ok, "message": check.message}}


@api.delete("/domains/<domain_id>")
@require("tenant.manage")
@api.output({}, status_code=204)
@api.doc(tags=TAGS, summary="Remove a custom domain; it is no longer served from the next "
                            "request on")
def remove_domain(domain_id: str) -> tuple[str, int]:
    access = current_access()
    domains.remove(access, domains.get_domain(access, domain_id))
    db.session.commit()
    return "", 204
