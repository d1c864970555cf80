"""Plans and Billing in a real browser (Debian's Chromium): an agency owner on the
platform's wholesale plan defines a client plan with a 30 % markup (a bad price said
beside its cell first), bills both clients at it, and reads each client's cost, price
and margin; a client reads its draft invoice, which is its price; a workspace without
a plan is told so. axe-core finds nothing serious, the CSP holds, nothing is loaded
from another host. Screenshots at 1400 and 390 pixels go to build/screenshots/billing/."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from playwright.sync_api import Browser

from overture.billing import meters as m
from overture.billing import usage
from overture.platform.db import db, scoped_to
from tests.console_support import WAIT_MS, Visit
from tests.live_server import serve
from tests.support import as_user

GPT = "openai:gpt-4o-mini"
WHOLESALE = {"name": "Agency standard", "base_fee": "99", "price_book": {
    "meters": {"steps": {"unit_price": "0.0007"}},
    "models": {"mode": "cost_plus", "markup_percent": "0"}}}


def seed(app: Any, world: Any) -> None:
    """Northwind on a wholesale plan; usage this month in workspaces A and B."""
    root = as_user(app, world, "platform")
    plan = root.post("/plans", json=WHOLESALE).get_json()
    assert root.put(f"/billing/accounts/{world.tid('northwind')}",
                    json={"plan_id": plan["id"]}).status_code == 200
    for ws, steps, cost in (("a", "1333", "1.234567"), ("b", "77", "3.333333")):
        with scoped_to(world.tenants[ws].id):
            usage.record([usage.Entry(m.STEPS, Decimal(steps)),
                          usage.Entry(m.MODEL_COST, Decimal(cost), GPT)])
            db.session.commit()


def test_an_agency_owner_prices_clients_and_a_client_reads_its_invoice(
        app: Any, world: Any, browser: Browser) -> None:
    seed(app, world)
    with serve(app) as base:
        visit = Visit.open(browser, base, "billing", world.users["nw_owner"].email)
        page = visit.page
        page.get_by_role("link", name="Plans", exact=True).first.click()
        page.get_by_text("No plans yet").wait_for(timeout=WAIT_MS)
        visit.check("plans-empty")

        page.get_by_role("link", name="New plan").first.click()
        page.get_by_label("Name", exact=True).fill("Client growth")
        page.get_by_label("Monthly base fee").fill("19.99")
        page.get_by_label("Steps executed: unit price").fill("0.0015x")
        page.get_by_label("Markup on cost (%)").fill("30")
        page.get_by_role("button", name="Create plan").click()
        page.get_by_text("Must be a number").wait_for(timeout=WAIT_MS)
        visit.check("plan-form-error")
        page.get_by_label("Steps executed: unit price").fill("0.0015")
        page.get_by_role("button", name="Create plan").click()
        page.get_by_text("Plan Client growth saved").wait_for(timeout=WAIT_MS)

        for ws in ("Workspace A", "Workspace B"):
            page.get_by_label(f"Plan for {ws}").select_option(label="Client growth")
            page.get_by_role("button", name=f"Save the plan of {ws}").click()
            page.get_by_text("Billed at Client growth from now on").wait_for(timeout=WAIT_MS)
        assert "2" in page.locator("#plans-list tbody tr").first.inner_text()
        visit.check("plans")

        page.get_by_role("link", name="Billing", exact=True).first.click()
        clients = page.locator("#billing-clients")
        clients.wait_for(timeout=WAIT_MS)
        # A: cost 0.93 + 1.23 = 2.16; price 19.99 + 2.00 + 1.60 = 23.59; margin 21.43
        # B: cost 0.05 + 3.33 = 3.38; price 19.99 + 0.12 + 4.33 = 24.44; margin 21.06
        rows = [r.inner_text() for r in page.locator("#billing-clients tbody tr").all()]
        assert rows[0].split("\t")[-3:] == ["$2.16", "$23.59", "$21.43"], rows
        assert rows[1].split("\t")[-3:] == ["$3.38", "$24.44", "$21.06"], rows
        total = page.locator("#billing-clients tfoot").inner_text()
        assert total.split("\t")[-3:] == ["$5.54", "$48.03", "$42.49"], total
        assert "Agency standard" in page.locator("#billing-plan-name").inner_text()
        visit.check("billing-agency")
        page.close()

        client = Visit.open(browser, base, "billing", world.users["a_admin"].email)
        client.page.goto(base + "/billing")
        client.page.locator("#draft-total").wait_for(timeout=WAIT_MS)
        assert client.page.locator("#draft-total").inner_text() == "$23.59"
        client.check("billing-workspace")
        client.page.close()

        alone = Visit.open(browser, base, "billing", world.users["c_owner"].email)
        alone.page.goto(base + "/billing")
        alone.page.get_by_text("No plan is assigned to Workspace C").wait_for(timeout=WAIT_MS)
        alone.check("billing-no-plan")
        alone.page.close()
    for v in (visit, client, alone):
        assert v.foreign == [], v.foreign
        assert v.problems == [], v.problems
