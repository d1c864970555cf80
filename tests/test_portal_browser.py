"""The portal in a real browser, on a phone-sized screen (Debian's Chromium, 390 pixels
wide, driven by Playwright, against the real app on a real server with real worker
processes). A customer signs in, starts a run from the form made from the workflow's
input schema (a validation message first, then success), answers the approval the run
asks of them, sees the run finish, chats with an agent and reads the answer as it is
streamed, downloads their data, gets a 404 for another customer's run and a 403 for a
console page, and signs out. On every page axe-core finds no serious or critical
violation, nothing is loaded from another host, and no CSP rule is broken.

Screenshots of each page, 1400 and 390 pixels wide, go to build/screenshots/portal/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from overture.orchestration import workflows
from overture.orchestration.portal import customer as service
from overture.orchestration.portal import publishing
from overture.platform.db import db, scoped_to
from tests.console_support import WAIT_MS, Visit
from tests.engine_api_support import settle
from tests.engine_support import running_workers
from tests.live_server import serve
from tests.portal_support import PORTAL, REFUND, SECRET, customer, set_up
from tests.support import PASSWORD

PHONE = {"width": 390, "height": 844}


# Every text the assistant's bubble held, in order (each `delta` event replaces it).
WATCH_ANSWER = """() => {
  window.__answerStates = [];
  new MutationObserver((records) => {
    for (const record of records) {
      const bubble = record.target.closest && record.target.closest(".p-msg-assistant");
      for (const node of record.addedNodes) {
        if (bubble && node.nodeType === Node.TEXT_NODE && node.data) {
          window.__answerStates.push(node.data);
        }
      }
    }
  }).observe(document.getElementById("transcript"), {childList: true, subtree: true});
}"""


@pytest.fixture(scope="module")
def workers(settings):
    with running_workers(settings, processes=1, threads=4) as worker_process:
        yield worker_process


class PhoneVisit(Visit):
    """The console's checks (axe, CSP, no other host) and screenshots, and back to the
    phone's size after each."""

    def photograph(self, name: str) -> None:
        super().photograph(name)
        self.page.set_viewport_size(PHONE)


def someone_elses_run(world: Any, portal: Any) -> str:
    other = customer(world)
    with scoped_to(world.tenants["a"].id, user_id=other.id):
        run = service.start(workflows.get_workflow(portal.workflow_id),
                            {"order": "7777", "reason": "late"}, other.id)
        db.session.commit()
        return str(run.id)


def test_a_customer_uses_the_portal_on_a_phone(app: Any, world: Any, browser: Any,
                                               workers: Any) -> None:
    portal = set_up(world)
    theirs = someone_elses_run(world, portal)
    streamed: list[str] = []
    try:
        with serve(app) as base:
            page: Page = browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
            visit = PhoneVisit(page, base, "portal")
            page.on("response", lambda r: streamed.append(r.headers.get("content-type", ""))
                    if "/chat/" in r.url and r.request.method == "POST" else None)

            # Signing in: the portal asks, then brings the customer home.
            page.goto(base + PORTAL + "/")
            page.get_by_role("heading", name="Sign in").wait_for(timeout=WAIT_MS)
            visit.check("sign-in")
            page.get_by_label("Email").fill(world.users["a_member"].email)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("heading", name="Hello a_member").wait_for(timeout=WAIT_MS)
            visit.check("home")

            # The form from the input schema: a message beside the field, then success.
            page.get_by_role("link", name="Start Request a refund").click()
            page.get_by_role("heading", name="Request a refund").wait_for(timeout=WAIT_MS)
            visit.check("start-form")
            page.get_by_label("Order number").fill("12")
            page.get_by_role("button", name="Start").click()
            page.get_by_text("Please check the fields marked below.").wait_for(timeout=WAIT_MS)
            assert page.get_by_text("Is not in the expected format.").is_visible()
            assert page.get_by_text("Is required.").is_visible()
            visit.check("start-form-errors")
            page.get_by_label("Order number").fill("1042")
            page.get_by_label("Reason").select_option("damaged")
            page.get_by_label("Amount (EUR)").fill("120")
            page.get_by_label("It was a gift").check()
            page.get_by_role("button", name="Start").click()
            page.get_by_text("Started. We will show the result here").wait_for(timeout=WAIT_MS)
            run_url = page.url

            # The run asks the customer to approve; the page updates by itself.
            page.get_by_text("Your answer is needed").wait_for(timeout=WAIT_MS)
            assert page.get_by_text("Your request").first.is_visible()
            visit.check("run-waiting")
            page.get_by_role("link", name="answer now").click()
            page.get_by_role("heading", name="Refund order 1042?").wait_for(timeout=WAIT_MS)
            visit.check("approvals")
            page.get_by_label("Comment (optional)").fill("Yes, the parcel arrived broken.")
            page.get_by_role("button", name="Approve").click()
            page.get_by_text("Approved. Thank you.").wait_for(timeout=WAIT_MS)
            visit.check("approvals-done")

            page.goto(run_url)
            page.get_by_text("Status: Done").wait_for(timeout=WAIT_MS)
            assert page.get_by_text("Refund for order 1042 is on its way.").is_visible()
            assert SECRET not in page.content()
            visit.check("run-done")
            page.get_by_role("link", name="My runs", exact=True).click()
            page.get_by_role("heading", name="My runs").wait_for(timeout=WAIT_MS)
            visit.check("runs")

            # The chat: the answer is read as it streams in.
            page.get_by_role("link", name="Home", exact=True).click()
            page.get_by_role("link", name="Chat with Help desk").click()
            page.get_by_role("heading", name="Help desk").wait_for(timeout=WAIT_MS)
            page.evaluate(WATCH_ANSWER)
            page.get_by_label("Your message").fill("I want a refund")
            page.get_by_role("button", name="Send").click()
            answer = page.locator(".p-msg-assistant").last
            answer.get_by_text("Refunds take 3 to 5 days. Which order is it?").wait_for(
                timeout=WAIT_MS)
            assert streamed and streamed[-1].startswith("text/event-stream")
            # The bubble grew piece by piece before it held the whole answer.
            grew = page.evaluate("window.__answerStates")
            assert grew[0] == "Refunds" and len(grew) > 3, grew
            assert grew[-1] == "Refunds take 3 to 5 days. Which order is it?"
            visit.check("chat")
            page.reload()
            page.get_by_text("Refunds take 3 to 5 days. Which order is it?").wait_for(
                timeout=WAIT_MS)  # kept for the next visit

            # Their data, as JSON.
            page.get_by_text("Account").click()
            with page.expect_download() as download:
                page.get_by_role("link", name="Download my data").click()
            data = json.loads(Path(download.value.path()).read_text())
            assert [r["status"] for r in data["runs"]] == ["succeeded"]
            assert data["conversations"][0]["messages"][0]["content"] == "I want a refund"
            assert theirs not in json.dumps(data)

            # Another customer's run is not found; the console is not theirs.
            response = page.goto(base + f"{PORTAL}/runs/{theirs}")
            assert response is not None and response.status == 404
            page.get_by_role("heading", name="Not found").wait_for(timeout=WAIT_MS)
            visit.check("not-found")
            response = page.goto(base + "/workflows")
            assert response is not None and response.status == 403
            page.get_by_role("heading", name="You do not have access to this").wait_for(
                timeout=WAIT_MS)
            assert page.get_by_role("link", name="Go to Workspace A's portal").count() == 1
            visit.check("console-refused")

            page.goto(base + PORTAL + "/")
            page.get_by_text("Account").click()
            page.get_by_role("button", name="Sign out").click()
            page.get_by_role("heading", name="Sign in").wait_for(timeout=WAIT_MS)
            page.close()
    finally:
        settle([world.tenants["a"].id])

    assert visit.foreign == [], visit.foreign
    assert visit.problems == [], visit.problems


def test_a_builder_publishes_a_workflow_from_the_console_portal_page(app: Any, world: Any,
                                                                     browser: Any) -> None:
    with scoped_to(world.tenants["a"].id):
        workflow = workflows.create_workflow("refunds", draft=REFUND)
        workflows.publish(workflow, None)
        db.session.commit()
    with serve(app) as base:
        visit = Visit.open(browser, base, "portal", world.users["a_builder"].email)
        page = visit.page
        page.get_by_role("heading", name="Recent runs").wait_for(timeout=WAIT_MS)
        page.get_by_role("link", name="Portal", exact=True).click()
        page.get_by_role("heading", name="Portal", exact=True).wait_for(timeout=WAIT_MS)
        visit.check("portal-settings")
        page.get_by_text("Portal settings for refunds", exact=True).click()
        page.get_by_label("Show in the portal").first.check()
        page.get_by_label("Label customers see").first.fill("Request a refund")
        page.get_by_label("Your request").check()
        page.get_by_label("Show the run's final output").check()
        visit.check("portal-settings-open")
        page.get_by_role("button", name="Save portal settings for refunds").click()
        page.get_by_text("Saved. Request a refund is shown in the portal.").wait_for(
            timeout=WAIT_MS)
        visit.check("portal-settings-saved")
        page.close()
    assert visit.foreign == [] and visit.problems == []
    with scoped_to(world.tenants["a"].id):
        shown = publishing.of_workflow(workflow.id)
        assert (shown.published, shown.label, shown.visible_steps, shown.show_output) == (
            True, "Request a refund", ["summary"], True)
        db.session.rollback()
