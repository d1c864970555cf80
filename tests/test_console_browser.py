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

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from overture.platform.db import db, scoped_to
from overture.tenants.models import Membership
from overture.tenants.roles import Role
from tests.console_support import seed_activity
from tests.live_server import serve
from tests.support import PASSWORD

CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright downloads no browser
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
WAIT_MS = 60_000  # how long to wait on a busy machine, not a speed check
AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
SHOTS = Path(__file__).resolve().parent.parent / "build" / "screenshots" / "console"
WIDTHS = (1400, 390)
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => v.id + ": " + v.help + " @ " + v.nodes.map((n) => n.target.join(" ")).join(", "));
}"""


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Visit:
    """Checks every page the journey reaches, and photographs it."""

    def __init__(self, page: Page, base: str) -> None:
        self.page, self.base = page, base
        self.foreign: list[str] = []
        self.problems: list[str] = []
        page.on("request", lambda r: None if r.url.startswith(base + "/")
                else self.foreign.append(r.url))
        page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        page.on("dialog", lambda dialog: dialog.accept())
        page.add_init_script(RECORD_VIOLATIONS)

    def check(self, name: str) -> None:
        page = self.page
        page.wait_for_load_state("networkidle", timeout=WAIT_MS)
        page.evaluate(AXE)  # through the debugger: the page's CSP does not apply to it
        serious = page.evaluate(RUN_AXE)
        assert serious == [], (name, serious)
        violations = page.evaluate("window.__cspViolations")
        assert violations == [], (name, violations)
        SHOTS.mkdir(parents=True, exist_ok=True)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        page.set_viewport_size({"width": WIDTHS[0], "height": 900})

    def go(self, path: str, name: str) -> None:
        response = self.page.goto(self.base + path)
        assert response is not None and response.status < 500, (path, response and response.status)
        self.check(name)


def test_an_agency_owner_works_through_the_console(app: Any, world: Any,
                                                    browser: Browser) -> None:
    seed_activity(world.tenants["a"].id, "Refunds", succeeded=14, failed=3, waiting=True,
                  cost="3.42")
    seed_activity(world.tenants["b"].id, "Invoices", succeeded=6, failed=0, cost="0.81")
    with serve(app) as base:
        page = browser.new_page(viewport={"width": WIDTHS[0], "height": 900})
        visit = Visit(page, base)

        visit.go("/login", "sign-in")
        page.get_by_label("Email").fill(world.users["nw_owner"].email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
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
        page = browser.new_page(viewport={"width": WIDTHS[0], "height": 900})
        visit = Visit(page, base)
        page.goto(base + "/login")
        page.get_by_label("Email").fill(world.users["a_viewer"].email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
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
