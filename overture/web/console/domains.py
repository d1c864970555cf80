"""Custom domains of the workspace in use: add one, see the TXT record to create (with
copy buttons), verify it (the answer says what DNS holds when it is not right), remove
it. A viewer sees the list and the records, never the controls."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from overture.platform.db import db
from overture.platform.errors import Conflict
from overture.tenants import domains
from overture.tenants.domain_models import CustomDomain
from overture.web.api.domains import checks_limited
from overture.web.console import bp
from overture.web.console.context import console_access, page, register_nav, render
from overture.web.console.forms import FormErrors, form_errors, status_of

register_nav("Domains", "console.domains_page", "tenant.read", "admin")


def _card(domain: CustomDomain, can_manage: bool,
          check: domains.Check | None = None) -> dict[str, Any]:
    return {"d": domain, "display": domains.display_name(domain.hostname),
            "name": domains.record_name(domain), "value": domains.record_value(domain),
            "check": check, "can_manage": can_manage}


def _page(errors: FormErrors | None = None, hostname: str = "") -> Any:
    access = console_access()
    can_manage = access.can("tenant.manage") and not access.is_platform
    found = domains.list_domains(access, None, 200).items
    found.sort(key=lambda d: (not d.verified, d.hostname))
    return render("console/domains.html", status_of(errors or FormErrors()), title="Domains",
                  cards=[_card(d, can_manage) for d in found], can_manage=can_manage,
                  errors=errors or FormErrors(), hostname=hostname,
                  limit=domains.MAX_DOMAINS)


@bp.get("/domains")
@page("tenant.read")
def domains_page() -> Any:
    return _page()


@bp.post("/domains")
@page("tenant.manage")
def add_domain() -> Any:
    hostname = request.form.get("hostname", "")
    with form_errors({"hostname"}) as errors:
        domain = domains.add_domain(console_access(), hostname)
        db.session.commit()
        flash(f"{domain.hostname} is added. Create its TXT record below, then verify it.", "ok")
        return redirect(url_for("console.domains_page") + f"#domain-{domain.id}")
    return _page(errors, hostname)


@bp.post("/domains/<domain_id>/verify")
@checks_limited
@page("tenant.manage")
def verify_domain(domain_id: str) -> Any:
    access = console_access()
    domain = domains.get_domain(access, domain_id)
    try:
        check = domains.verify(access, domain)
        db.session.commit()
    except Conflict as err:
        db.session.rollback()
        domain = domains.get_domain(access, domain_id)
        check = domains.Check(False, err.detail)
    if request.headers.get("HX-Request"):
        return render("console/_domain.html", card=_card(domain, True, check))
    flash(check.message, "ok" if check.ok else "error")
    return redirect(url_for("console.domains_page") + f"#domain-{domain.id}")


@bp.post("/domains/<domain_id>/remove")
@page("tenant.manage")
def remove_domain(domain_id: str) -> Response:
    access = console_access()
    domain = domains.get_domain(access, domain_id)
    hostname = domain.hostname
    domains.remove(access, domain)
    db.session.commit()
    flash(f"{hostname} is removed: it is no longer served as this workspace's.", "ok")
    return redirect(url_for("console.domains_page"))
