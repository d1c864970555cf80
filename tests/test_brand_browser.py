"""The brand in a real browser (Debian's Chromium, Playwright, the real app on a real
server): an agency owner sets the agency's brand with white-label on and a logo, a
client workspace overrides the colours on the Brand page (the preview and the contrast
list follow the form; a low-contrast colour is refused with the pair and its ratio),
and the console, an error page and the sign-in page reached through the client's own
domain show the client's brand, and no "Overture" in their text, title or headers.

Until the custom-domain part lands, a stand-in hook plays its role on a separate app:
it sets `g.host_tenant_id` for one host name, which Chromium resolves to 127.0.0.1.
Screenshots, 1400 and 390 pixels wide, go to build/screenshots/brand/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import g, request
from playwright.sync_api import Browser, Page, sync_playwright

from overture.web.app import create_app
from tests.brand_support import png
from tests.live_server import serve
from tests.support import PASSWORD
from tests.test_console_browser import (
    AXE,
    CHROMIUM,
    CHROMIUM_ARGS,
    RECORD_VIOLATIONS,
    RUN_AXE,
    WAIT_MS,
    WIDTHS,
)

SHOTS = Path(__file__).resolve().parent.parent / "build" / "screenshots" / "brand"
CLIENT_HOST = "portal.acme.example"


@pytest.fixture
def branded_app(settings: Any, app_ctx: Any) -> Any:
    """The app with a stand-in for the custom-domain hook (ISSUE 15's DOMAINS part)."""
    app = create_app(settings)
    hosts: dict[str, Any] = {}
    app.extensions["test.hosts"] = hosts

    @app.before_request
    def _host_tenant() -> None:
        g.host_tenant_id = hosts.get(request.host.split(":")[0])

    return app


@pytest.fixture
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {CLIENT_HOST} 127.0.0.1"])
        try:
            yield browser
        finally:
            browser.close()


class Shots:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        self.headers: list[tuple[str, str, str]] = []
        page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        page.on("dialog", lambda dialog: dialog.accept())
        page.on("response", lambda r: self.headers.extend(
            (r.url, k, v) for k, v in r.headers.items()))
        page.add_init_script(RECORD_VIOLATIONS)

    def check(self, name: str, showing_refused_colour: bool = False) -> None:
        page = self.page
        page.wait_for_load_state("networkidle", timeout=WAIT_MS)
        page.evaluate(AXE)
        serious = page.evaluate(RUN_AXE)
        if showing_refused_colour:
            # The preview and the swatches show the refused colour on purpose: that is
            # how the page says why it was refused. Nothing else may fail.
            serious = [v for v in serious if not v.startswith("color-contrast") or not all(
                t.strip().startswith((".bp-", 'li[data-bg="')) for t in v.split(" @ ")[1]
                .split(", "))]
        assert serious == [], name
        assert page.evaluate("window.__cspViolations") == [], name
        text = page.evaluate("document.documentElement.innerText")
        assert "overture" not in text.lower(), (name, text)
        assert "overture" not in page.title().lower(), (name, page.title())
        assert "overture" not in page.content().lower(), name
        SHOTS.mkdir(parents=True, exist_ok=True)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        page.set_viewport_size({"width": WIDTHS[0], "height": 900})


def sign_in(page: Page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_brand_agency_and_client_brand_reach_console_error_and_sign_in_pages(
        branded_app: Any, world: Any, chromium: Browser, tmp_path: Path) -> None:
    logo = tmp_path / "northwind-logo.png"
    logo.write_bytes(png(360, 96, (15, 118, 110, 255)))
    branded_app.extensions["test.hosts"][CLIENT_HOST] = world.tenants["a"].id
    with serve(branded_app) as base:
        page = chromium.new_page(viewport={"width": WIDTHS[0], "height": 900})
        shots = Shots(page)

        # The agency: its name, white-label on, a logo.
        sign_in(page, base, world.users["nw_owner"].email)
        page.get_by_role("heading", name="Client workspaces").wait_for(timeout=WAIT_MS)
        page.goto(base + "/brand")
        page.get_by_label("Product name").fill("Northwind Cloud")
        page.get_by_label("Legal footer").fill("Northwind Ltd · 1 Harbour Street, Leeds")
        page.get_by_label("White label").check()
        page.get_by_role("button", name="Save brand").click()
        page.get_by_text("Brand saved.").wait_for(timeout=WAIT_MS)
        page.get_by_label("Logo file").set_input_files(str(logo))
        page.get_by_role("button", name="Upload logo", exact=True).click()
        page.get_by_text("Logo uploaded.").wait_for(timeout=WAIT_MS)
        shots.check("agency-brand")

        # The client workspace overrides the colours; the preview follows the form.
        page.goto(base + "/")
        page.get_by_label("Workspace", exact=True).select_option(label="Workspace A")
        page.get_by_role("heading", name="Recent runs").wait_for(timeout=WAIT_MS)
        page.goto(base + "/brand")
        primary = page.get_by_label("Primary colour", exact=True)
        primary.fill("#ffd60a")
        bad = page.locator("#contrast-list li", has_text="links on white")
        assert "1.41:1" in bad.inner_text() and "too low" in bad.inner_text()
        page.get_by_role("button", name="Save brand").click()
        page.get_by_text("Nothing was saved").wait_for(timeout=WAIT_MS)
        assert "has a contrast ratio of 1.41:1" in page.locator("#primary-error").inner_text()
        shots.check("client-brand-refused", showing_refused_colour=True)
        primary.fill("#7c3aed")
        page.get_by_label("Accent colour", exact=True).fill("#f59e0b")
        assert "passes" in bad.inner_text()
        button = page.locator(".bp-button")
        assert button.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(124, 58, 237)"
        page.get_by_role("button", name="Save brand").click()
        page.get_by_text("Brand saved.").wait_for(timeout=WAIT_MS)
        shots.check("client-brand")

        for path, name in (("/", "client-home"), ("/runs", "client-runs"),
                           ("/no-such-page", "client-not-found")):
            page.goto(base + path)
            shots.check(name)
            assert page.title().endswith("Northwind Cloud"), page.title()
        save = page.locator("a.btn").first  # the error page's "Go to home" button
        assert save.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(124, 58, 237)"
        assert page.get_by_role("img", name="Northwind Cloud").first.is_visible()

        page.get_by_text(world.users["nw_owner"].name).first.click()
        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("heading", name="Sign in").wait_for(timeout=WAIT_MS)
        # On the platform's own address the sign-in page is the platform's.
        assert page.title() == "Sign in · Overture"

        # Through the client's domain: the client's brand, before anyone signs in.
        client_base = base.replace("127.0.0.1", CLIENT_HOST)
        page.goto(client_base + "/login")
        shots.check("client-sign-in")
        assert page.title() == "Sign in · Northwind Cloud"
        assert page.locator("button[type=submit]").evaluate(
            "e => getComputedStyle(e).backgroundColor") == "rgb(124, 58, 237)"
        page.goto(client_base + "/no-such-page")
        shots.check("client-sign-in-not-found")
        page.close()

    assert shots.problems == [], shots.problems
    client_headers = [(url, k, v) for url, k, v in shots.headers if CLIENT_HOST in url]
    assert client_headers, "the client's pages were fetched"
    leaks = [h for h in client_headers if "overture" in f"{h[1]}: {h[2]}".lower()]
    assert leaks == [], leaks
