"""Mail in a real browser (Debian's Chromium through Playwright, against the real app on
a real server): a workspace admin sets the workspace's own SMTP server on the Mail
server page and sends a test message, watching it go from "Sending…" to "Sent." in
place (htmx); a builder turns on a workflow's failure alerts; and a branded mail as its
reader's mail client shows it (white-label: the client's logo, colour and footer, no
"Overture"). axe-core finds no serious or critical violation, no page breaks the CSP,
and each is photographed at 1400 and 390 pixels wide (build/screenshots/mail/)."""

from __future__ import annotations

import uuid
from typing import Any

from playwright.sync_api import Browser, Route

from overture.platform import mail, mail_delivery
from overture.platform.db import db
from overture.platform.mail import OutboxMessage
from tests.brand_support import png, upload
from tests.console_support import WAIT_MS, Visit
from tests.domain_support import add_verified
from tests.engine_api_support import ok
from tests.live_server import serve
from tests.mail_support import smtp_server
from tests.support import as_key, as_user

DOMAIN = "portal.ws-a.example"


def test_mail_pages_and_a_branded_mail_in_the_browser(app, world, browser: Browser,
                                                      dns_zone, monkeypatch) -> None:
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.0/8")
    handed: list[uuid.UUID] = []
    monkeypatch.setitem(app.extensions, mail.SENDER,
                        lambda message_id, delay_ms: handed.append(message_id))
    agency = as_user(app, world, "nw_admin", "northwind")
    ok(agency.patch("/brand", json={
        "product_name": "Northwind Cloud", "white_label": True,
        "legal_footer": "Northwind Ltd.\nRegistered in England, 01234567.",
        "support_url": "https://help.northwind.example"}))
    logo = png(240, 60, (245, 158, 11, 255))  # amber: it shows on the teal header
    assert upload(agency, "logo", logo).status_code == 200
    ok(as_key(app, world, "a_admin").patch("/brand", json={
        "primary": "#0f766e", "sender_name": "Workspace A Desk",
        "support_email": "desk@ws-a.example"}))
    add_verified(world, "a_admin", "a", DOMAIN, dns_zone)
    flow = ok(as_user(app, world, "a_builder").post("/workflows", json={
        "name": "Charges", "definition": {"steps": [
            {"id": "t", "type": "transform", "output": "ok"}]}}), 201)

    with serve(app) as base, smtp_server() as (port, box):
        visit = Visit.open(browser, base, "mail", world.users["a_admin"].email)
        page = visit.page
        visit.go("/mail-server", "mail-server-empty")
        page.get_by_label("Host").fill("127.0.0.1")
        page.get_by_label("Port").fill(str(port))
        page.get_by_label("Security").select_option("none")
        page.get_by_label("From address").fill("hello@ws-a.example")
        page.get_by_role("button", name="Save mail server").click()
        page.get_by_text("Mail server saved").wait_for(timeout=WAIT_MS)
        visit.check("mail-server-saved")

        page.get_by_role("button", name="Send a test message").click()
        page.locator("#mail-test", has_text="Sending").wait_for(timeout=WAIT_MS)
        app.extensions[mail_delivery.EXTENSION].fn(str(handed[-1]))  # the worker's part
        page.locator("#mail-test", has_text="Sent.").wait_for(timeout=WAIT_MS)
        visit.check("mail-server-test-sent")
        (received,) = box.messages(world.users["a_admin"].email)
        assert received["From"] == "Workspace A Desk <hello@ws-a.example>"

        builder = Visit.open(browser, base, "mail", world.users["a_builder"].email)
        builder.go(f"/workflows/{flow['id']}", "workflow-alerts-off")
        builder.page.get_by_label("Mail each run that fails or times out").check()
        builder.page.get_by_label("Send to").fill("a.operator@people.example.com")
        builder.page.get_by_role("button", name="Save alerts").click()
        builder.page.get_by_text("Failure alerts are on.").wait_for(timeout=WAIT_MS)
        assert "a.operator@people.example.com" in builder.page.locator(
            "#alerts-state").inner_text()
        builder.check("workflow-alerts-on")
        assert visit.foreign == builder.foreign == [] and visit.problems == []

    # The test message as the admin's mail client shows it: its logo is fetched from
    # the workspace's own domain (answered here), nothing from anywhere else.
    message = db.session.get(OutboxMessage, handed[-1])
    assert message is not None and "overture" not in message.html_body.lower()
    reader = Visit.open(browser, f"https://{DOMAIN}", "mail")
    fetched: list[str] = []

    def logo_from_the_domain(route: Route) -> Any:
        fetched.append(route.request.url)
        return route.fulfill(body=logo, content_type="image/png")

    reader.page.route(f"https://{DOMAIN}/brand-assets/**", logo_from_the_domain)
    reader.page.set_content(message.html_body)
    reader.check("mail-test-message")
    assert len(fetched) == 1 and reader.foreign == []
    assert reader.page.get_by_role("img", name="Northwind Cloud").is_visible()
