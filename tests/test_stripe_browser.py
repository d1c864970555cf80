"""The Stripe and Invoices pages in a real browser (`-k stripe`): an agency's owner
connects its Stripe account with a restricted key (never shown again), tests it
against the fake Stripe, sees a refused key's message beside the field, and reads the
invoice list, empty and then with an invoice Stripe finalized. axe-core finds no
serious violation, no page breaks the CSP; shots in build/screenshots/stripe/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from playwright.sync_api import Browser

from overture.billing import stripe_plans
from overture.billing.stripe_models import MeterEventRow, StripeLink
from overture.platform.db import PLATFORM_TENANT_ID, db, scoped_to
from tests.console_support import WAIT_MS, Visit
from tests.live_server import serve
from tests.stripe_fake import event, fake_stripe, invoice, post, use_stripe
from tests.support import as_user

KEY = "rk_test_51Browserkeyabcdefghij9876"


def test_stripe_pages_in_the_browser(app, world, browser: Browser, monkeypatch) -> None:
    with fake_stripe() as fake, serve(app) as base:
        use_stripe(app, monkeypatch, fake)
        visit = Visit.open(browser, base, "stripe", world.users["nw_owner"].email)
        page = visit.page
        visit.go("/stripe", "stripe-empty")
        assert page.get_by_text("No Stripe account connected").is_visible()

        page.get_by_label("Restricted key", exact=True).fill("pk_live_notasecretkey1")
        page.get_by_role("button", name="Connect").click()
        page.locator("#secret_key-error").wait_for(timeout=WAIT_MS)
        visit.check("stripe-refused-key")

        page.get_by_label("Restricted key", exact=True).fill(KEY)
        page.get_by_role("button", name="Connect").click()
        page.get_by_text("Stripe account connected").wait_for(timeout=WAIT_MS)
        assert KEY not in page.content() and "rk_test_…9876" in page.content()
        page.get_by_role("button", name="Test the connection").click()
        page.get_by_text("the connection works").wait_for(timeout=WAIT_MS)
        visit.check("stripe-connected")
        assert fake.seen("GET", "/v1/billing/meters")[-1].headers["Authorization"] == \
            f"Bearer {KEY}"
        sync = page.locator("#stripe-sync")
        assert sync.get_by_text("No plans yet").is_visible()
        clients = page.locator("#stripe-clients tbody tr")
        assert clients.count() == 2  # Workspace A and B
        assert "No plan" in clients.first.inner_text()

        nw = as_user(app, world, "nw_owner", "northwind")
        made = nw.post("/plans", json={"name": "Client retail", "base_fee": "9",
                                       "price_book": {"meters": {}, "models": {"mode": "none"}}})
        assert made.status_code == 201, made.get_data(as_text=True)
        stripe_plans.sync_due()
        visit.go("/stripe", "stripe-sync-status")
        plan_row = page.locator("#stripe-plans tbody tr")
        assert "Client retail" in plan_row.inner_text() and "Synced" in plan_row.inner_text()
        assert next(iter(fake.products)) in plan_row.inner_text()

        a, nw_id = world.tenants["a"].id, world.tenants["northwind"].id
        hour = datetime(2026, 12, 6, 8, tzinfo=UTC)
        with scoped_to(a):
            for n, (status, error) in enumerate([("sent", None), ("pending", "HTTP 500"),
                                                 ("pending", None)]):
                db.session.add(MeterEventRow(
                    tenant_id=a, owner_id=nw_id, billed_id=a, meter="steps",
                    hour=hour + timedelta(hours=n), quantity=Decimal(3),
                    identifier=f"browser-{n}", status=status, attempts=1 if error else 0,
                    last_error=error, sent_at=hour if status == "sent" else None))
            db.session.commit()
        visit.go("/stripe", "stripe-sync-reports")
        first = page.locator("#stripe-clients tbody tr").first
        cells = first.locator("td")
        assert cells.nth(2).inner_text().strip() == "1"  # hours reported
        assert cells.nth(3).inner_text().startswith("2") and "HTTP 500" in cells.nth(3).inner_text()

        visit.go("/invoices", "invoices-empty")
        assert page.get_by_text("No invoices yet").is_visible()
        db.session.add(StripeLink(stripe_id="cus_nw", kind="customer",
                                  routes_to=world.tenants["northwind"].id,
                                  owner_id=PLATFORM_TENANT_ID))
        db.session.commit()
        post(app, event("evt_b1", "invoice.finalized", invoice()))
        visit.go("/invoices", "invoices-one")
        row = page.locator("#invoices tbody tr")
        assert row.count() == 1 and "123.45 EUR" in row.inner_text()
        assert row.get_by_role("link").get_attribute("href").startswith("https://invoice.")

        client = Visit.open(browser, base, "stripe", world.users["a_owner"].email)
        client.go("/stripe", "stripe-workspace")
        assert client.page.get_by_text("Billing is arranged by your agency").is_visible()
        assert visit.foreign == client.foreign == [] and visit.problems == []
