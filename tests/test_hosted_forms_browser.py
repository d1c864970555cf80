"""Hosted forms in a real browser (`-k hosted_form`): a builder adds a form on the
Triggers page, copies its address and opens it; a visitor (not signed in) fills it in,
is told what is wrong beside the fields, sends it, and reads the success message; the
Runs page shows one run started by the form. Axe finds nothing serious and the CSP
nothing broken on each page; screenshots go to build/screenshots/hosted-forms/."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from playwright.sync_api import Browser

from overture.orchestration import workflows
from overture.platform.db import db, scoped_to
from tests.console_support import SHOTS, WAIT_MS, WIDTHS, Visit, sign_in
from tests.engine_api_support import ok
from tests.live_server import serve
from tests.support import as_key
from tests.test_hosted_forms import FORM_DEF


def test_hosted_form_journey_in_a_browser(app: Any, world: Any, browser: Browser) -> None:
    admin = as_key(app, world, "a_admin")
    # Through the service: the test client's JSON sorts keys, and the form shows the
    # schema's fields in the schema's order.
    with scoped_to(world.tenants["a"].id):
        made = workflows.create_workflow("Refunds", draft=FORM_DEF)
        workflows.publish(made, world.users["a_admin"].id)
        db.session.commit()
        workflow = {"id": str(made.id)}
    ok(admin.patch("/brand", json={"product_name": "Acme Refunds", "primary": "#0f766e"}))
    with serve(app) as base:
        context = browser.new_context(viewport={"width": WIDTHS[0], "height": 900},
                                      permissions=["clipboard-read", "clipboard-write"])
        page = context.new_page()
        console = Visit(page, base, "hosted-forms")
        sign_in(page, base, world.users["a_admin"].email)
        page.goto(base + "/triggers#forms")
        page.get_by_text("No hosted forms yet").wait_for(timeout=WAIT_MS)
        section = page.locator("#forms")
        section.get_by_label("Workflow").select_option(workflow["id"])
        section.get_by_label("Title").fill("Request a refund")
        section.get_by_label("Description (optional)").fill(
            "Tell us about the order. We answer within two days.")
        section.get_by_label("Success message (optional)").fill(
            "Thank you! Your request is on its way.")
        page.get_by_role("button", name="Add form").click()
        page.get_by_text("The form “Request a refund” is open").wait_for(timeout=WAIT_MS)
        url = page.get_by_label("Address of the form Request a refund").input_value()
        page.get_by_role("button", name="Copy the address of Request a refund").click()
        page.get_by_role("button", name="Copied").wait_for(timeout=WAIT_MS)
        assert page.evaluate("navigator.clipboard.readText()") == url
        opener = page.get_by_role("link", name="Open the form Request a refund in a new tab")
        assert opener.get_attribute("href") == url and opener.get_attribute("target") == "_blank"
        console.check("console-triggers")
        SHOTS.joinpath("hosted-forms").mkdir(parents=True, exist_ok=True)
        section.screenshot(path=str(SHOTS / "hosted-forms" / "console-forms-section.png"))
        context.close()

        # A visitor, not signed in, on the form (the live server's address for its path).
        path = urlparse(url).path
        visitor_page = browser.new_page(viewport={"width": WIDTHS[0], "height": 900})
        visitor = Visit(visitor_page, base, "hosted-forms")
        visitor_page.goto(base + path)
        visitor_page.get_by_role("heading", name="Request a refund").wait_for(timeout=WAIT_MS)
        assert visitor_page.get_by_text("Acme Refunds").first.is_visible()
        # The honeypot: drawn off screen, out of the accessibility tree.
        honeypot = visitor_page.locator("input[name=website]")
        assert honeypot.evaluate("e => e.getBoundingClientRect().right <= 0")
        assert visitor_page.get_by_role("textbox", name="Leave this field empty").count() == 0
        labels = visitor_page.locator("form label").all_inner_texts()
        assert [t.strip(" *") for t in labels[:3]] == ["Order number", "Reason", "Amount (EUR)"]
        visitor.check("form")
        visitor_page.get_by_label("Order number").fill("12")
        visitor_page.get_by_role("button", name="Send").click()
        visitor_page.get_by_text("Please check the fields marked below.").wait_for(
            timeout=WAIT_MS)
        assert visitor_page.get_by_text("Is not in the expected format.").is_visible()
        visitor.check("form-errors")
        visitor_page.get_by_label("Order number").fill("1042")
        visitor_page.get_by_label("Reason").select_option("damaged")
        visitor_page.get_by_label("Amount (EUR)").fill("120")
        visitor_page.get_by_label("It was a gift").check()
        visitor_page.get_by_role("button", name="Send").click()
        visitor_page.get_by_text("Thank you! Your request is on its way.").wait_for(
            timeout=WAIT_MS)
        assert visitor_page.url == base + path + "/sent"
        visitor.check("sent")

        # Closed, then unknown: a page that says so, in the brand.
        form_id = ok(admin.get(f"/workflows/{workflow['id']}/form-triggers"))["items"][0]["id"]
        ok(admin.patch(f"/form-triggers/{form_id}", json={"enabled": False}))
        response = visitor_page.goto(base + path)
        assert response is not None and response.status == 410
        visitor_page.get_by_role("heading", name="This form is closed").wait_for(timeout=WAIT_MS)
        visitor.check("closed")
        response = visitor_page.goto(base + path[:-4] + "nope")
        assert response is not None and response.status == 404
        visitor_page.get_by_role("heading", name="This form does not exist").wait_for(
            timeout=WAIT_MS)
        visitor.check("unknown")
        visitor_page.close()

        runs = ok(admin.get("/runs", query_string={"workflow_id": workflow["id"]}))["items"]
        assert [r["trigger"] for r in runs] == ["form"]
        assert ok(admin.get(f"/runs/{runs[0]['id']}"))["input"]["order"] == "1042"

        again = browser.new_page(viewport={"width": WIDTHS[0], "height": 900})
        runs_visit = Visit(again, base, "hosted-forms")
        sign_in(again, base, world.users["a_admin"].email)
        again.goto(base + "/runs")
        again.locator("td", has_text="Form").first.wait_for(timeout=WAIT_MS)
        runs_visit.check("runs")
        again.close()
    for watched in (console, visitor, runs_visit):
        assert watched.foreign == [], watched.foreign
        assert watched.problems == [], watched.problems
