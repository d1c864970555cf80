"""The journey of issue 14's first acceptance, in a real browser (Debian's Chromium)
against the real app with a real worker, on the demo `make up` seeds: the agency owner
signs in, creates a client workspace from the demo's template, switches into it, creates
a workflow, builds it in the visual builder (an agent, a condition with two branches,
an action on the demo outbox), publishes it, starts a test run with a sample input and
watches the run viewer fill in. Nothing is loaded from another host, and axe finds no
serious or critical violation on any page.

Screenshots of every page go to build/screenshots/journey/ (1400 x 900)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect
from sqlalchemy import select

from overture.connectors.models import Connection
from overture.demo import DEMO_PASSWORD, seed_demo
from overture.demo_support import OUTBOX_CONNECTION
from overture.demo_template import TEMPLATE_NAME
from overture.platform.db import db, scoped_to
from overture.tenants.models import Tenant
from tests.console_support import WAIT_MS, Visit, browse, build_ui, page_text, sign_in
from tests.engine_support import running_workers
from tests.live_server import serve

AGENCY_OWNER = "owner@northwind.example.com"
CLIENT = "Initech Helpdesk"
SAMPLE = '{"subject": "Invoice INV-7 is wrong", "urgent": true}'


class Journey(Visit):
    """A `Visit` whose photos are numbered, one screen each, in the journey's order; what
    axe or the CSP finds is kept for the end."""

    def __init__(self, page: Page, base: str) -> None:
        super().__init__(page, base, "journey")
        self.n = 0

    def shot(self, name: str, top: bool = True) -> None:
        self.n += 1
        if top:
            self.page.evaluate("window.scrollTo(0, 0)")
        self.page.screenshot(path=str(self.shots / f"{self.n:02d}-{name}.png"))
        self.problems.extend(self.csp_violations())
        self.problems.extend(f"{name}: {v}" for v in self.axe())


def _tenant(name: str) -> Any:
    return db.session.scalars(select(Tenant.id).where(Tenant.name == name)).one()


def _node(page: Page, step_id: str) -> Any:
    return page.locator(f'.react-flow__node[data-id="{step_id}"]')


def _add(page: Page, key: str) -> None:
    """Add a step from the palette, after the selected one."""
    page.locator(f'[data-palette="{key}"]').click()


def test_agency_owner_builds_publishes_and_runs_a_workflow(app_ctx: Any, settings: Any,
                                                           browser: Any) -> None:
    build_ui()
    seed_demo()  # what `make up` seeds, the agency's template included
    db.session.commit()
    with running_workers(settings, processes=1, threads=4), serve(app_ctx) as base:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        trip = Journey(page, base)
        trip.shots.mkdir(parents=True, exist_ok=True)

        page.goto(base + "/login")
        trip.shot("sign-in")
        sign_in(page, base, AGENCY_OWNER, DEMO_PASSWORD)
        page.get_by_role("heading", name="Client workspaces").wait_for(timeout=WAIT_MS)
        trip.shot("agency-home")

        # A client workspace from the demo's template.
        page.get_by_role("link", name="New workspace").first.click()
        page.get_by_label("Name", exact=True).fill(CLIENT)
        page.get_by_label("A template").check()
        page.get_by_label("Template", exact=True).select_option(label=f"{TEMPLATE_NAME} (v1)")
        trip.shot("new-workspace-from-template")
        page.get_by_role("button", name="Create workspace").click()
        page.get_by_role("heading", name=f"Workspace {CLIENT} created").wait_for(timeout=WAIT_MS)
        trip.shot("workspace-provisioned")

        # Into it: its home, then its workflows (the template's one is there).
        page.get_by_role("button", name=f"Open {CLIENT}").click()
        expect(page.locator("#switch-tenant option:checked")).to_have_text(CLIENT)
        trip.shot("client-home")
        page.get_by_role("link", name="Workflows", exact=True).click()
        expect(page.get_by_text("Support triage", exact=True)).to_be_visible()
        trip.shot("workflows")
        page.get_by_role("link", name="New workflow").click()
        page.get_by_label("Name", exact=True).fill("Urgent tickets")
        page.get_by_role("button", name="Create and open the builder").click()
        expect(page.locator(".ovb-empty")).to_be_visible(timeout=WAIT_MS)
        trip.shot("builder-empty")

        # Four steps: an agent, a condition, and its two branches.
        _add(page, "type:agent")
        agent = _node(page, "agent_1")
        expect(agent).to_be_visible()
        page.fill("#ovb-f-agent_1-name", "Read the ticket")
        page.fill("#ovb-f-agent_1-agent", "Ticket triager")
        page.fill("#ovb-f-agent_1-task", "Summarise the ticket {{ input.subject }}")
        page.locator("#ovb-f-agent_1-task").press("Tab")
        trip.shot("builder-agent")
        _add(page, "type:condition")
        expect(_node(page, "condition_1")).to_be_visible()
        page.fill("#ovb-f-condition_1-name", "Urgent?")
        page.fill("#ovb-f-condition_1-if", "input.urgent == true")
        page.locator("#ovb-f-condition_1-if").press("Tab")
        _add(page, "action:demo_outbox.send_email")
        expect(_node(page, "send_email_1")).to_be_visible()
        # The connection is picked by name from the workspace's own (the template's outbox).
        page.fill("#ovb-f-send_email_1-name", "Email the on-call team")
        page.select_option("#ovb-f-send_email_1-connection", label=OUTBOX_CONNECTION)
        page.fill("#ovb-f-send_email_1-input-to", '["oncall@initech.example"]')
        page.fill("#ovb-f-send_email_1-input-subject", "Urgent: {{ input.subject }}")
        page.fill("#ovb-f-send_email_1-input-text", "{{ input.subject }} needs someone now.")
        page.locator("#ovb-f-send_email_1-input-text").press("Tab")
        trip.shot("builder-action")
        _add(page, "type:stop")
        expect(_node(page, "stop_1")).to_be_visible()
        page.fill("#ovb-f-stop_1-name", "Done")
        page.locator("#ovb-f-stop_1-name").press("Tab")
        # The condition's two branches: urgent mail first, otherwise straight to the end.
        _node(page, "condition_1").focus()
        page.keyboard.press("Enter")
        page.select_option("#ovb-f-condition_1-then", "send_email_1")
        page.select_option("#ovb-f-condition_1-else", "stop_1")
        page.select_option("#ovb-f-condition_1-next", "")
        expect(page.locator('.react-flow__edge[aria-label="condition_1 to stop_1 (false)"]')
               ).to_have_count(1)
        page.get_by_role("button", name="Publish").click()
        expect(page.get_by_role("status")).to_have_text("Published version 1.", timeout=WAIT_MS)
        trip.shot("builder-published")

        # A test run with a sample input; the run viewer fills in as the worker goes.
        page.get_by_role("button", name="Test run").click()
        page.locator("#ovb-run-input").fill(SAMPLE)
        trip.shot("builder-test-run")
        page.get_by_role("button", name="Start test run").click()
        viewer = page.get_by_role("link", name="Open in the run viewer")
        viewer.wait_for(timeout=WAIT_MS)
        viewer.click()
        page.wait_for_url("**/runs/**", timeout=WAIT_MS)
        expect(page.locator('.react-flow__node[data-id="agent_1"]')).to_be_visible(
            timeout=WAIT_MS)
        trip.shot("run-viewer-started")
        for step_id in ("agent_1", "condition_1", "send_email_1", "stop_1"):
            expect(page.locator(".run-graph li", has=page.locator(".mono", has_text=step_id))
                   .locator(".badge")).to_have_text("Succeeded", timeout=WAIT_MS * 2)
        expect(page.locator("#run-live .badge").first).to_have_text("Succeeded",
                                                                    timeout=WAIT_MS)
        trip.shot("run-viewer-succeeded")
        page.locator(".run-graph").scroll_into_view_if_needed()
        trip.shot("run-viewer-steps", top=False)
        page.close()
    with scoped_to(_tenant(CLIENT)):  # the action really ran: the mail is in the outbox
        (outbox,) = db.session.scalars(select(Connection).where(
            Connection.connector_key == "demo_outbox")).all()
        (mail,) = outbox.settings["messages"]
    assert mail["subject"] == "Urgent: Invoice INV-7 is wrong"
    assert trip.foreign == [], trip.foreign
    assert trip.problems == [], trip.problems


def test_new_workflow_page_follows_permissions(app: Any, world: Any) -> None:
    viewer = browse(app, world, "a_viewer")
    assert "New workflow" not in page_text(viewer.get("/workflows"))
    assert viewer.get("/workflows/new").status_code == 403
    assert viewer.post("/workflows/new", {"name": "Sneaky"}).status_code == 403  # forged
    builder = browse(app, world, "a_builder")
    refused = builder.post("/workflows/new", {"name": "  "})
    assert refused.status_code == 422 and 'aria-invalid="true"' in refused.get_data(
        as_text=True)  # said beside the name, nothing made
    made = builder.post("/workflows/new", {"name": "Greeter", "description": "Says hi"})
    assert made.status_code == 302 and made.location.endswith("/builder")
    again = builder.post("/workflows/new", {"name": "Greeter"})
    assert again.status_code == 422  # the name is taken: said on the form, not a 500
    assert "Greeter" in page_text(builder.get("/workflows"))
