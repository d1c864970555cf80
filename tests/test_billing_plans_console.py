"""The console's Plans and Billing pages (`-k billing`): an agency owner defines a
client plan with its price book as a table, a bad cell said beside it, assigns it to a
client, and reads each client's cost, price and margin; the client reads its draft
invoice, which matches; empty states without a plan; a plan in use is not deleted."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from overture.billing import usage
from overture.platform.db import db, scoped_to
from tests.console_support import browse, page_text, region
from tests.support import World

GPT = "openai:gpt-4o-mini"
NOV = datetime(2026, 11, 5, 10, tzinfo=UTC)
PREFIX = "price_book.meters."


def put(tenant_id: Any, meter: str, quantity: str, dimension: str = "") -> None:
    with scoped_to(tenant_id):
        usage.record([usage.Entry(meter, Decimal(quantity), dimension)], at=NOV)
        db.session.commit()


def plan_form(name: str, **cells: str) -> dict[str, str]:
    data = {"name": name, "currency": "USD", "base_fee": "19.99", "mode": "cost_plus",
            "markup_percent": "30", "rate_rows": "1", "rate-0-model": "", "rate-0-input": "",
            "rate-0-output": ""}
    data.update({PREFIX + k.replace("__", "."): v for k, v in cells.items()})
    return data


@pytest.fixture
def agency(app: Any, world: World) -> Any:
    put(world.tenants["a"].id, "steps", "1333")
    put(world.tenants["a"].id, "llm_cost", "1.234567", GPT)
    put(world.tenants["b"].id, "steps", "77")
    return browse(app, world, "nw_owner")


def test_billing_agency_defines_a_plan_assigns_it_and_reads_its_margins(app, world, agency):
    assert "No plans yet" in page_text(agency.get("/plans"))
    assert "Client workspaces and their plans" in page_text(agency.get("/plans"))
    refused = agency.post("/plans/new", data=plan_form(
        "Growth", steps__unit_price="0.0015",
        runs_started__tiers="100: 0.01, 50: 0.0075, above: 0"))
    assert refused.status_code == 422
    assert "Must be above the tier before" in region(
        refused, f"{PREFIX}runs_started.tiers-error")
    saved = agency.post("/plans/new", data=plan_form(
        "Growth", steps__unit_price="0.0015",
        runs_started__tiers="100: 0.01, above: 0.0075"))
    assert saved.status_code == 302, page_text(saved)
    listed = agency.get("/plans")
    assert "Growth" in region(listed, "plans-list")
    plan_id = re.search(r'href="/plans/([0-9a-f-]{36})"', listed.get_data(as_text=True))[1]
    edit = agency.get(f"/plans/{plan_id}")
    assert 'value="100: 0.01, above: 0.0075"' in edit.get_data(as_text=True)
    for ws in ("a", "b"):
        assert agency.post("/plans/assign", data={"tenant_id": world.tid(ws),
                                                  "plan_id": plan_id}).status_code == 302
    billing = agency.get("/billing?month=2026-11")
    assert billing.status_code == 200
    rows = region(billing, "billing-clients")
    # A: price 19.99 + 2.00 + 1.60 = 23.59; cost at no wholesale plan: nothing
    assert "Workspace A" in rows and "$23.59" in rows and "$20.11" in rows  # B: 19.99 + 0.12
    assert "All 2 workspaces" in rows and "$43.70" in rows
    assert "No plan is assigned to Northwind" in page_text(billing)
    client = browse(app, world, "a_admin")
    draft = client.get("/billing?month=2026-11")
    assert "Growth" in region(draft, "billing-plan-name")
    assert region(draft, "draft-total").startswith("id=\"draft-total\">$23.59")
    assert "cost + 30 %" in region(draft, "draft-invoice")
    gone = agency.post(f"/plans/{plan_id}/delete")
    assert gone.status_code == 302 and gone.headers["Location"].endswith(f"/plans/{plan_id}")
    assert "assigned to a tenant" in page_text(agency.get(f"/plans/{plan_id}"))


def test_billing_pages_without_a_plan_say_so(app, world):
    client = browse(app, world, "c_owner")
    text = page_text(client.get("/billing"))
    assert "No plan is assigned to Workspace C" in text
    assert "Plans are defined by an agency" in page_text(client.get("/plans"))
    assert client.get("/billing?month=2026-13").status_code == 422
    viewer = browse(app, world, "a_viewer")
    assert viewer.get("/billing").status_code == 403
    admin = browse(app, world, "nw_admin")  # an agency admin defines plans for clients
    assert admin.get("/plans/new").status_code == 200
    assert browse(app, world, "nw_viewer").get("/plans/new").status_code == 403


def test_billing_platform_admin_keeps_wholesale_plans_for_agencies(app, world):
    root = browse(app, world, "platform")
    page = root.get("/plans")
    assert page.status_code == 200
    assert "Wholesale plans" in page_text(page)
    saved = root.post("/plans/new", data=plan_form("Agency standard", steps__unit_price="0.0007"))
    assert saved.status_code == 302, page_text(saved)
    listed = root.get("/plans")
    agencies = region(listed, "plans-billed")
    assert "Northwind" in agencies and "Contoso" in agencies and "Workspace A" not in agencies
    plan_id = re.search(r'href="/plans/([0-9a-f-]{36})"', listed.get_data(as_text=True))[1]
    assert root.post("/plans/assign", data={"tenant_id": world.tid("northwind"),
                                            "plan_id": plan_id}).status_code == 302
    owner = browse(app, world, "nw_owner")
    assert "Agency standard" in region(owner.get("/billing"), "billing-plan-name")
