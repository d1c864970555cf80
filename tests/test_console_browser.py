"""The console in a real browser (Debian's Chromium, driven by Playwright, against the
real app on a real server). An agency owner signs in, finds a workspace, creates one,
switches into a client workspace, decides an approval, invites someone, creates an API
key and visits their profile; a viewer chooses a workspace, sees no edit controls, and
a forged post is refused by the server. On every page axe-core finds no serious or
critical accessibility violation, nothing is loaded from another host, and the page
breaks no CSP rule.

Screenshots of each page, 1400 and 390 pixels wide, go to build/screenshots/console/.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser

from overture.platform.db import db, scoped_to
from overture.tenants.models import Membership
from overture.tenants.roles import Role
from tests.console_support import WAIT_MS, Visit, seed_activity, sign_in
from tests.live_server import serve


def test_an_agency_owner_works_through_the_console(app: Any, world: Any,
                                                    browser: Browser) -> None:
    seed_activity(world.tenants["a"].id, "Refunds", succeeded=14, failed=3, waiting=True,
                  cost="3.42")
    seed_activity(world.tenants["b"].id, "Invoices", succeeded=6, failed=0, cost="0.81")
    with serve(app) as base:
        visit = Visit.open(browser, base, "console")
        page = visit.page

        visit.go("/login", "sign-in")
        sign_in(page, base, world.users["nw_owner"].email)
        page.get_by_role("heading", name="Client workspaces").wait_for(timeout=WAIT_MS)
        visit.check("agency-home")

        # Searching narrows the table in place (htmx), and the address follows.
        page.get_by_label("Search workspaces").fill("ws-b")
        page.wait_for_url("**q=ws-b**", timeout=WAIT_MS)
        rows = page.locator("#workspaces tbody tr")
        rows.first.wait_for(timeout=WAIT_MS)
        assert rows.count() == 1 and "Workspace B" in rows.first.inner_text()

        visit.go("/workspaces/new", "workspace-new")
        page.get_by_label("Name", exact=True).fill("Fabrikam")
        page.get_by_label("Switch into it once created").uncheck()
        page.get_by_role("button", name="Create workspace").click()
        page.get_by_text("Workspace Fabrikam created.").wait_for(timeout=WAIT_MS)
        assert page.locator("#workspaces .cell-title", has_text="Fabrikam").count() == 1

        page.get_by_role("button", name="Open Workspace A").click()
        page.get_by_role("heading", name="Recent runs").wait_for(timeout=WAIT_MS)
        visit.check("workspace-home")

        visit.go("/workflows", "workflows")
        visit.go("/runs", "runs")
        visit.go("/audit?verify=1", "audit")
        visit.go("/approvals", "approvals")
        page.get_by_label("amount").fill("100")
        page.get_by_role("button", name="Approve").click()
        page.get_by_text("Approved: Refund 120 EUR to order 4411?").wait_for(timeout=WAIT_MS)
        visit.check("approvals-empty")

        visit.go("/members", "members")
        page.get_by_label("Email").fill("client.user@example.com")
        page.get_by_label("Role", exact=True).select_option("operator")
        page.get_by_role("button", name="Send invitation").click()
        page.get_by_text("Invitation sent to client.user@example.com.").wait_for(timeout=WAIT_MS)

        visit.go("/api-keys", "api-keys")
        page.get_by_label("Name").fill("CRM sync")
        page.get_by_role("button", name="Create key").click()
        secret = page.get_by_label("New API key")
        secret.wait_for(timeout=WAIT_MS)
        assert secret.input_value().startswith("ovt_")
        visit.check("api-key-created")

        visit.go("/profile", "profile")
        visit.go("/settings", "settings")
        visit.go("/no-such-page", "not-found")
        assert page.get_by_role("heading", name="Page not found").count() == 1

        # The workspace switcher takes the person back to the agency.
        page.goto(base + "/")
        page.get_by_label("Workspace", exact=True).select_option(label="Northwind (agency)")
        page.get_by_role("heading", name="Client workspaces").wait_for(timeout=WAIT_MS)

        page.get_by_text(world.users["nw_owner"].name).first.click()
        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("heading", name="Sign in").wait_for(timeout=WAIT_MS)
        page.close()

    assert visit.foreign == [], visit.foreign
    assert visit.problems == [], visit.problems


FORGE = """async (path) => {
  const token = document.querySelector('input[name="csrf_token"]').value;
  const body = new URLSearchParams({csrf_token: token, email: "mallory@example.com",
                                    role: "owner"});
  const response = await fetch(path, {method: "POST", body, headers: {Accept: "text/html"}});
  return [response.status, await response.text()];
}"""


def test_a_viewer_sees_no_edit_controls_and_a_forged_post_is_refused(
        app: Any, world: Any, browser: Browser) -> None:
    with scoped_to(world.tenants["b"].id):
        db.session.add(Membership(user_id=world.users["a_viewer"].id, role=Role.VIEWER))
        db.session.commit()
    with serve(app) as base:
        visit = Visit.open(browser, base, "console", world.users["a_viewer"].email)
        page = visit.page
        page.get_by_role("heading", name="Choose a workspace").wait_for(timeout=WAIT_MS)
        visit.check("choose-workspace")
        page.get_by_role("button", name="Workspace A").click()
        page.get_by_role("heading", name="Workspace A").wait_for(timeout=WAIT_MS)

        visit.go("/members", "members-as-viewer")
        assert page.get_by_role("button", name="Send invitation").count() == 0
        assert page.get_by_role("button", name="Remove").count() == 0
        assert page.get_by_role("link", name="API keys").count() == 0
        status, html = page.evaluate(FORGE, "/members/invite")
        assert status == 403 and "You do not have access to this" in html

        visit.go("/api-keys", "forbidden")
        assert page.get_by_role("heading", name="You do not have access to this").count() == 1
        page.close()
    assert visit.foreign == [], visit.foreign
    assert visit.problems == [], visit.problems
