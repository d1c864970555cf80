"""A tenant's custom domain in a real browser (Debian's Chromium through Playwright,
against the real app on a real server). Chromium reaches `portal.acme.example` and
`pending.acme.example` through `--host-resolver-rules`, which map both names to
127.0.0.1 where the server listens; the verification itself asks the dnslib server of
tests/dns_server.py.

On the verified domain `/` leads a visitor to workspace A's portal; A's admin signs in
there, lands on the console's home (`/` is the console's for A's staff) and uses the
console: adds another domain, copies its record, is told plainly that
the record is missing, verifies it once it exists, removes it. The session cookie is
host-only, and the unverified domain shows the platform's sign-in, signed out. Pages
are checked with axe-core and photographed at 1400 and 390 pixels wide.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser

from overture.platform.db import db, scoped_to
from overture.tenants import domains
from overture.tenants.domain_models import CustomDomain
from tests.console_support import WAIT_MS, Visit, chromium
from tests.dns_server import Zone
from tests.domain_support import add_verified
from tests.live_server import serve
from tests.support import PASSWORD, as_key

HOST, PENDING, EXTRA = "portal.acme.example", "pending.acme.example", "shop.acme.example"


@pytest.fixture
def mapped_browser() -> Iterator[Browser]:
    with chromium(HOST, PENDING) as browser:
        yield browser


def record_of(tenant_id: Any, hostname: str) -> tuple[str, str]:
    with scoped_to(tenant_id):
        from sqlalchemy import select

        domain = db.session.scalars(select(CustomDomain)
                                    .where(CustomDomain.hostname == hostname)).one()
        record = domains.record_name(domain), domains.record_value(domain)
        db.session.rollback()
    return record


def test_a_workspace_is_served_and_managed_on_its_own_domain(app, world, dns_zone: Zone,
                                                             mapped_browser: Browser):
    add_verified(world, "a_admin", "a", HOST, dns_zone)
    pending = as_key(app, world, "b_admin", "b").post("/domains", json={"hostname": PENDING})
    assert pending.status_code == 201
    with serve(app) as local:
        port = local.rsplit(":", 1)[1]
        base = f"http://{HOST}:{port}"
        context = mapped_browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        visit = Visit(page, base, "domains")

        response = page.goto(base + "/")
        assert response is not None and response.request.redirected_from is not None
        # The portal's own pages answer there: its sign-in, for a visitor.
        assert page.url == base + "/portal/ws-a/login?next=/portal/ws-a/"
        page.get_by_role("heading", name="Sign in").wait_for(timeout=WAIT_MS)
        assert "to Workspace A" in page.locator("main").inner_text()
        visit.check("domain-portal-sign-in")

        visit.go("/login", "domain-sign-in")
        page.get_by_label("Email").fill(world.users["a_admin"].email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(base + "/", timeout=WAIT_MS)  # the console's home, not the portal
        page.get_by_role("heading", name="Recent runs").wait_for(timeout=WAIT_MS)
        (cookie,) = [c for c in context.cookies() if c["name"] == "session"]
        assert cookie["domain"] == HOST  # host-only: no leading dot, no parent domain

        visit.go("/domains", "domain-console")
        panel = page.locator("section.domain", has_text=HOST)
        assert "Verified" in panel.inner_text()

        page.get_by_label("Domain", exact=True).fill(EXTRA)
        page.get_by_role("button", name="Add domain").click()
        page.get_by_text(f"{EXTRA} is added.").wait_for(timeout=WAIT_MS)
        extra = page.locator("section.domain", has_text=EXTRA)
        extra.get_by_role("button", name="Copy the record value").click()
        extra.get_by_role("button", name="Copied").wait_for(timeout=WAIT_MS)
        extra.get_by_role("button", name=f"Verify {EXTRA}").click()
        extra.get_by_text(f"No record exists at _verify.{EXTRA} yet.").wait_for(timeout=WAIT_MS)
        visit.check("domain-missing-record")

        name, value = record_of(world.tenants["a"].id, EXTRA)
        assert value in extra.inner_text()  # the value to create, said in the answer
        dns_zone.txt(name, value)
        # axe leaves empty `style` attributes on the inputs it inspected, and htmx copies
        # the attributes of a swapped element's namesakes while it settles: a fresh page
        # keeps the check's traces out of the CSP report.
        page.reload()
        page.get_by_text("Last checked").first.wait_for(timeout=WAIT_MS)
        assert f"No record exists at _verify.{EXTRA} yet." in extra.inner_text()  # kept
        extra.get_by_role("button", name=f"Verify {EXTRA}").click()
        extra.get_by_text("its pages are served there from now on").wait_for(timeout=WAIT_MS)
        visit.check("domain-verified")

        extra.get_by_role("button", name=f"Remove {EXTRA}").click()  # Visit accepts the question
        page.get_by_text(f"{EXTRA} is removed").wait_for(timeout=WAIT_MS)
        assert page.locator("section.domain", has_text=EXTRA).count() == 0

        # The unverified domain is the platform's: its sign-in, and nobody signed in.
        other = context.new_page()
        other.goto(f"http://{PENDING}:{port}/")
        assert other.url.startswith(f"http://{PENDING}:{port}/login")
        other.get_by_role("button", name="Sign in").wait_for(timeout=WAIT_MS)
        assert visit.foreign == [] and visit.problems == []
        context.close()
