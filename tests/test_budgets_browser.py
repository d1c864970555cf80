"""The Budgets page in a real browser (Debian's Chromium, driven by Playwright), as a
workspace owner: the empty state, a refused form with the messages beside its fields,
limits saved and this month's spend as a bar, then the past-due banner (the agency's
invoice unpaid) on its pages. axe-core finds no serious or critical violation, the CSP
holds. Screenshots at 1400 and 390 pixels wide go to build/screenshots/budgets/*.png."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from playwright.sync_api import Browser

from overture.billing import meters as m
from overture.billing import standing, usage
from overture.platform.db import db, scoped_to, utcnow
from tests.console_support import WAIT_MS, Visit
from tests.live_server import serve


def spend(tenant_id: Any, amount: str) -> None:
    with scoped_to(tenant_id):
        usage.record([usage.Entry(m.MODEL_COST, Decimal(amount), "openai:gpt-4o")])
        usage.record([usage.Entry(m.RUNS_STARTED, Decimal(37))])
        db.session.commit()


def test_a_workspace_owner_sets_budgets_and_sees_why_runs_stop(app: Any, world: Any,
                                                               browser: Browser) -> None:
    a, agency = world.tenants["a"].id, world.tenants["northwind"].id
    with serve(app) as base:
        visit = Visit.open(browser, base, "budgets", world.users["a_owner"].email)
        page = visit.page
        page.goto(base + "/budgets")
        page.get_by_role("heading", name="Budgets", exact=True).wait_for(timeout=WAIT_MS)
        assert page.get_by_text("No budget", exact=True).is_visible()
        assert page.get_by_text("No caps", exact=True).is_visible()
        visit.check("budgets-empty")

        page.get_by_label("Monthly budget (USD)").fill("5.001")
        page.get_by_label("Alert thresholds (%)").fill("50, 180")
        page.get_by_label("Runs started a month").fill("many")
        page.get_by_role("button", name="Save limits").click()
        page.get_by_text("Nothing was saved").wait_for(timeout=WAIT_MS)
        assert "in cents at most" in page.locator("#budget-error").inner_text()
        assert "1 to 100" in page.locator("#thresholds-error").inner_text()
        assert "whole number" in page.locator("#cap_runs_started-error").inner_text()
        assert page.get_by_label("Monthly budget (USD)").input_value() == "5.001"
        visit.check("budgets-refused")

        spend(a, "4.20")
        page.get_by_label("Monthly budget (USD)").fill("5.00")
        page.get_by_label("Alert thresholds (%)").fill("50, 80, 100")
        page.get_by_label("Runs started a month").fill("40")
        page.get_by_role("button", name="Save limits").click()
        page.get_by_text("Budgets saved").wait_for(timeout=WAIT_MS)
        assert page.locator("#budget-spent").inner_text() == "$4.20"
        assert page.locator("#budget-limit").inner_text() == "$5.00"
        assert page.get_by_role("meter", name="Model spend: 84% used").is_visible()
        row = page.locator("#budget-caps tbody tr").first.inner_text()
        assert "runs started" in row.lower() and "\t37\t40\t" in row
        visit.check("budgets-set")

        standing.payment_failed(agency, utcnow() - timedelta(days=9), "in_agency")
        db.session.commit()
        page.goto(base + "/budgets")
        banner = page.locator("#billing-banner")
        banner.wait_for(timeout=WAIT_MS)
        assert "Northwind" in banner.inner_text()
        assert "New runs are refused until it is paid" in banner.inner_text()
        assert "Nothing has been deleted" in banner.inner_text()
        visit.check("budgets-past-due")
        page.goto(base + "/runs")
        assert page.locator("#billing-banner").is_visible()  # on every page

        standing.payment_succeeded(agency, utcnow(), "in_agency")
        db.session.commit()
        page.goto(base + "/budgets")
        page.get_by_role("heading", name="Budgets", exact=True).wait_for(timeout=WAIT_MS)
        assert page.locator("#billing-banner").count() == 0
        page.close()
    assert visit.foreign == [], visit.foreign
    assert visit.problems == [], visit.problems
