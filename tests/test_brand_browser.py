"""The brand in a real browser (Debian's Chromium, Playwright, the real app on a real
server): an agency owner sets the agency's brand with white-label on and a logo, a
client workspace overrides the colours on the Brand page (the preview and the contrast
list follow the form; a low-contrast colour is refused with the pair and its ratio),
and the console, an error page and the sign-in page reached through the client's own
verified domain show the client's brand, and no "Overture" in their text, title or
headers; so do the client's portal there (`/` leads a visitor to it), its sign-in page
and, once a customer is in, its home.

The domain is verified through the real check (tests/domain_support.add_verified
against the dnslib server of tests/dns_server.py); Chromium reaches it at 127.0.0.1.
Screenshots, 1400 and 390 pixels wide, go to build/screenshots/brand/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.brand_support import png
from tests.console_support import WAIT_MS, Visit, chromium
from tests.dns_server import Zone
from tests.domain_support import add_verified
from tests.live_server import serve
from tests.portal_support import set_up
from tests.support import PASSWORD

CLIENT_HOST = "portal.acme.example"
VIOLET = "rgb(124, 58, 237)"  # the client's primary colour, #7c3aed


@pytest.fixture
def mapped_browser() -> Iterator[Browser]:
    with chromium(CLIENT_HOST) as browser:
        yield browser


class WhiteLabelVisit(Visit):
    """A `Visit` whose check also finds no "Overture" in the page's text, title or
    source, and which keeps every response's headers to ask the same of them."""

    def __init__(self, page: Page, base: str, shots: str) -> None:
        super().__init__(page, base, shots)
        self.headers: list[tuple[str, str, str]] = []
        page.on("response", lambda r: self.headers.extend(
            (r.url, k, v) for k, v in r.headers.items()))

    def check(self, name: str, showing_refused_colour: bool = False) -> None:
        page = self.page
        page.wait_for_load_state("networkidle", timeout=WAIT_MS)
        serious = self.axe()
        if showing_refused_colour:
            # The preview and the swatches show the refused colour on purpose: that is
            # how the page says why it was refused. Nothing else may fail.
            serious = [v for v in serious if not v.startswith("color-contrast") or not all(
                t.strip().startswith((".bp-", 'li[data-bg="')) for t in v.split(" @ ")[1]
                .split(", "))]
        assert serious == [], (name, serious)
        assert self.csp_violations() == [], name
        text = page.evaluate("document.documentElement.innerText")
        assert "overture" not in text.lower(), (name, text)
        assert "overture" not in page.title().lower(), (name, page.title())
        assert "overture" not in page.content().lower(), name
        self.photograph(name)


def background(page: Page, selector: str) -> str:
    return page.locator(selector).first.evaluate("e => getComputedStyle(e).backgroundColor")


def test_brand_agency_and_client_brand_reach_console_error_sign_in_and_portal_pages(
        app: Any, world: Any, dns_zone: Zone, mapped_browser: Browser, tmp_path: Path) -> None:
    logo = tmp_path / "northwind-logo.png"
    logo.write_bytes(png(360, 96, (15, 118, 110, 255)))
    add_verified(world, "a_admin", "a", CLIENT_HOST, dns_zone)  # workspace A's own domain
    set_up(world)  # what A's portal offers its customers
    with serve(app) as base:
        shots = WhiteLabelVisit.open(mapped_browser, base, "brand", world.users["nw_owner"].email)
        page = shots.page

        # The agency: its name, white-label on, a logo.
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
        assert background(page, ".bp-button") == VIOLET
        page.get_by_role("button", name="Save brand").click()
        page.get_by_text("Brand saved.").wait_for(timeout=WAIT_MS)
        shots.check("client-brand")

        for path, name in (("/", "client-home"), ("/runs", "client-runs"),
                           ("/no-such-page", "client-not-found")):
            page.goto(base + path)
            shots.check(name)
            assert page.title().endswith("Northwind Cloud"), page.title()
        assert background(page, "a.btn") == VIOLET  # the error page's "Go to home" button
        assert page.get_by_role("img", name="Northwind Cloud").first.is_visible()

        page.get_by_text(world.users["nw_owner"].name).first.click()
        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("heading", name="Sign in").wait_for(timeout=WAIT_MS)
        # On the platform's own address the sign-in page is the platform's.
        assert page.title() == "Sign in · Overture"
        page.close()

        # Through the client's domain, a new visitor: the client's brand before anyone
        # signs in, the domain's sign-in and error pages and its portal.
        client_base = base.replace("127.0.0.1", CLIENT_HOST)
        client = WhiteLabelVisit.open(mapped_browser, client_base, "brand")
        page = client.page
        page.goto(client_base + "/login")
        client.check("client-sign-in")
        assert page.title() == "Sign in · Northwind Cloud"
        assert background(page, "button[type=submit]") == VIOLET
        page.goto(client_base + "/no-such-page")
        client.check("client-sign-in-not-found")

        page.goto(client_base + "/")  # the domain's front door: A's portal, its sign-in
        page.get_by_role("heading", name="Sign in").wait_for(timeout=WAIT_MS)
        assert page.url.startswith(client_base + "/portal/ws-a/login"), page.url
        client.check("client-portal-sign-in")
        assert page.title() == "Workspace A · Northwind Cloud"
        assert background(page, "button[type=submit]") == VIOLET
        assert page.get_by_role("img", name="Northwind Cloud").first.is_visible()
        page.get_by_label("Email").fill(world.users["a_member"].email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Hello a_member").wait_for(timeout=WAIT_MS)
        assert page.url == client_base + "/portal/ws-a/"
        client.check("client-portal-home")
        assert page.title() == "Home · Workspace A · Northwind Cloud"
        assert background(page, ".p-btn") == VIOLET  # "Start Request a refund"
        assert page.get_by_role("img", name="Northwind Cloud").first.is_visible()
        assert "Northwind Ltd · 1 Harbour Street, Leeds" in page.locator("footer").inner_text()
        page.goto(client_base + "/")  # a customer's front door stays the portal
        page.wait_for_url(client_base + "/portal/ws-a/", timeout=WAIT_MS)
        page.close()

    for visit in (shots, client):
        assert visit.problems == [], visit.problems
        assert visit.foreign == [], visit.foreign  # nothing from another host
    client_headers = [(url, k, v) for url, k, v in client.headers if CLIENT_HOST in url]
    assert client_headers, "the client's pages were fetched"
    assert [url for url, _, _ in client.headers if "/portal/ws-a/" in url], "and its portal"
    leaks = [h for h in client_headers if "overture" in f"{h[1]}: {h[2]}".lower()]
    assert leaks == [], leaks
