"""Plans and invoices through the API (`-k billing`): the platform's wholesale plans
and an agency's retail plans, assigned to tenants; price book edits versioned and
audited; a plan in use cannot be deleted; draft invoices; and an agency's cost, price
and margin per client, which add up to the cent and match each client's draft
invoice."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text

from overture.billing import usage
from overture.billing.plan_models import Plan
from overture.platform.db import PLATFORM_TENANT_ID, db, scoped_to
from tests.engine_api_support import audit_events
from tests.support import as_key, as_user

GPT, HAIKU = "openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"
NOV = datetime(2026, 11, 5, 10, tzinfo=UTC)

WHOLESALE = {"name": "Agency wholesale", "base_fee": "99", "price_book": {
    "meters": {"steps": {"unit_price": "0.0007", "included": "1000"},
               "runs_started": {"unit_price": "0.0033"}},
    "models": {"mode": "cost_plus", "markup_percent": "0"}}}
RETAIL = {"name": "Client growth", "base_fee": "19.99", "price_book": {
    "meters": {"steps": {"unit_price": "0.0015"},
               "runs_started": {"tiers": [{"up_to": "100", "unit_price": "0.01"},
                                          {"up_to": None, "unit_price": "0.0075"}]}},
    "models": {"mode": "cost_plus", "markup_percent": "30"}}}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    body = response.get_json()
    if field:
        assert field in {e["field"] for e in body.get("errors", [])}, body
    return body


def put(tenant_id: Any, meter: str, quantity: str, dimension: str = "",
        when: datetime = NOV) -> None:
    with scoped_to(tenant_id):
        usage.record([usage.Entry(meter, Decimal(quantity), dimension)], at=when)
        db.session.commit()


@pytest.fixture
def billed(app, world):
    """Northwind on a wholesale plan; its workspaces A and B on its retail plan; usage
    in November, with amounts that round."""
    root, nw = as_user(app, world, "platform"), as_user(app, world, "nw_owner", "northwind")
    wholesale = ok(root.post("/plans", json=WHOLESALE), 201)
    ok(root.put(f"/billing/accounts/{world.tid('northwind')}",
                json={"plan_id": wholesale["id"]}))
    retail = ok(nw.post("/plans", json=RETAIL), 201)
    for ws in ("a", "b"):
        ok(nw.put(f"/billing/accounts/{world.tid(ws)}", json={"plan_id": retail["id"]}))
    a, b = world.tenants["a"].id, world.tenants["b"].id
    for meter, quantity, dimension in (("steps", "1333", ""), ("runs_started", "157", ""),
                                       ("llm_cost", "1.234567", GPT), ("llm_cost", "0.0049", HAIKU),
                                       ("llm_input_tokens", "120000", GPT)):
        put(a, meter, quantity, dimension)
    for meter, quantity, dimension in (("steps", "77", ""), ("llm_cost", "3.333333", GPT)):
        put(b, meter, quantity, dimension)
    put(a, "steps", "5000", when=datetime(2026, 12, 1, tzinfo=UTC))  # the next month
    world.plans = {"wholesale": wholesale, "retail": retail}
    return world


def test_billing_agency_with_30_percent_markup_sees_cost_price_margin_to_the_cent(app, billed):
    """Acceptance 3: per client, cost + margin = price to the cent, the totals add up,
    and each client's draft invoice is its price."""
    view = ok(as_user(app, billed, "nw_owner", "northwind").get(
        "/billing/clients?month=2026-11"))
    rows = {row["tenant"]["slug"]: row for row in view["items"]}
    assert set(rows) == {"ws-a", "ws-b"}
    a, b = rows["ws-a"], rows["ws-b"]
    # A at wholesale, no base fee nor included steps: 1333 x 0.0007 = 0.9331 -> 0.93;
    # 157 x 0.0033 = 0.5181 -> 0.52; models at cost: 1.234567 -> 1.23, 0.0049 -> 0.00
    assert a["cost"] == "2.68"
    # A at retail: 19.99 + 1333 x 0.0015 = 1.9995 -> 2.00; runs 100 x 0.01 + 57 x 0.0075
    # = 1.4275 -> 1.43; models + 30 %: 1.6049371 -> 1.60, 0.00637 -> 0.01
    assert a["price"] == "25.03"
    assert a["margin"] == "22.35"
    assert (b["cost"], b["price"], b["margin"]) == ("3.38", "24.44", "21.06")
    for row in (a, b):
        assert Decimal(row["cost"]) + Decimal(row["margin"]) == Decimal(row["price"])
        assert row["plan"] == "Client growth"
    assert view["total"] == {"cost": "6.06", "price": "49.47", "margin": "43.41"}
    assert view["wholesale_plan"] == "Agency wholesale" and view["currency"] == "USD"
    assert a["usage"]["steps"] == "1333"
    for ws, row in (("a", a), ("b", b)):
        draft = ok(as_key(app, billed, f"{ws}_admin").get("/billing/draft-invoice?month=2026-11"))
        assert draft["total"] == row["price"]
        assert sum(Decimal(line["amount"]) for line in draft["lines"]) == Decimal(row["price"])


def test_billing_draft_invoice_lines_say_how_each_amount_came(app, billed):
    draft = ok(as_key(app, billed, "a_admin").get("/billing/draft-invoice?month=2026-11"))
    assert draft["plan"]["name"] == "Client growth" and draft["currency"] == "USD"
    lines = {(li["meter"], li["dimension"]): li for li in draft["lines"]}
    assert lines[("base_fee", "")]["amount"] == "19.99"
    runs = lines[("runs_started", "")]
    assert [(t["quantity"], t["unit_price"]) for t in runs["tiers"]] == [("100", "0.01"),
                                                                         ("57", "0.0075")]
    assert runs["amount"] == "1.43" and runs["unit_price"] is None
    gpt = lines[("llm_cost", GPT)]
    assert (gpt["quantity"], gpt["markup_percent"], gpt["amount"]) == ("1.234567", "30", "1.60")
    december = ok(as_key(app, billed, "a_admin").get("/billing/draft-invoice?month=2026-12"))
    assert [li["meter"] for li in december["lines"]] == ["base_fee", "steps"]
    assert december["total"] == "27.49"  # 19.99 + 5000 x 0.0015


def test_billing_an_agency_is_billed_for_its_clients_usage_at_its_wholesale_plan(app, billed):
    nw = as_user(app, billed, "nw_owner", "northwind")
    plan = ok(nw.get("/billing/plan"))["account"]
    assert plan["plan"]["name"] == "Agency wholesale"
    assert plan["billed_by_id"] == str(PLATFORM_TENANT_ID)
    draft = ok(nw.get("/billing/draft-invoice?month=2026-11"))
    steps = next(li for li in draft["lines"] if li["meter"] == "steps")
    assert (steps["quantity"], steps["included"], steps["billable"]) == ("1410", "1000", "410")
    # 99 + 410 x 0.0007 = 0.287 -> 0.29; 157 x 0.0033 -> 0.52; GPT 4.5679 -> 4.57; 0.0049 -> 0
    assert draft["total"] == "104.38"
    assert ok(as_key(app, billed, "a_admin").get("/billing/plan"))["account"]["plan"][
        "name"] == "Client growth"


def test_billing_a_tenant_without_a_plan_is_told_so(app, world):
    api = as_key(app, world, "c_owner")
    assert ok(api.get("/billing/plan")) == {"account": None}
    body = problem(api.get("/billing/draft-invoice"), 404)
    assert "no plan" in body["detail"]
    problem(api.get("/billing/draft-invoice?month=2026-13"), 422, "month")


def test_billing_plans_edits_are_versioned_and_audited(app, billed):
    nw = as_user(app, billed, "nw_owner", "northwind")
    plan_id = billed.plans["retail"]["id"]
    book = {**RETAIL["price_book"], "models": {"mode": "cost_plus", "markup_percent": "40"}}
    changed = ok(nw.patch(f"/plans/{plan_id}", json={"price_book": book}))
    assert changed["version"] == 2 and changed["in_use"] == 2
    assert changed["price_book"]["models"]["markup_percent"] == "40"
    assert ok(nw.patch(f"/plans/{plan_id}", json={"name": "Client growth"}))["version"] == 2
    nw_id = billed.tenants["northwind"].id
    (event,) = audit_events(nw_id, "plan.updated")
    assert event["details"]["before"]["price_book"]["models"]["markup_percent"] == "30"
    assert event["details"]["after"]["price_book"]["models"]["markup_percent"] == "40"
    assert event["actor_id"] == str(billed.users["nw_owner"].id)
    assert len(audit_events(nw_id, "plan.created")) == 1
    assigned = audit_events(billed.tenants["a"].id, "billing_account.assigned")
    assert assigned[0]["details"]["after"] == plan_id
    assert audit_events(PLATFORM_TENANT_ID, "plan.created")[0]["details"]["after"][
        "name"] == "Agency wholesale"


def test_billing_a_plan_in_use_cannot_be_deleted(app, billed):
    nw = as_user(app, billed, "nw_owner", "northwind")
    plan_id = billed.plans["retail"]["id"]
    assert "assigned" in problem(nw.delete(f"/plans/{plan_id}"), 409)["detail"]
    for ws in ("a", "b"):
        assert ok(nw.put(f"/billing/accounts/{billed.tid(ws)}", json={"plan_id": None})) == {
            "account": None}
    assert nw.delete(f"/plans/{plan_id}").status_code == 204
    problem(nw.get(f"/plans/{plan_id}"), 404)
    assert audit_events(billed.tenants["northwind"].id, "plan.deleted")[0]["details"][
        "before"]["name"] == "Client growth"


@pytest.mark.parametrize(("body", "field"), [
    ({"name": ""}, "name"),
    ({"name": "X", "currency": "XYZ"}, "currency"),
    ({"name": "X", "base_fee": "1.234"}, "base_fee"),
    ({"name": "X", "base_fee": "-5"}, "base_fee"),
    ({"name": "X", "price_book": {"meters": {"steps": {"unit_price": "x"}}}},
     "price_book.meters.steps.unit_price"),
    ({"name": "X", "currency": "EUR", "price_book": {"models": {"mode": "cost_plus"}}},
     "price_book.models.mode"),
    ({"name": "X", "colour": "red"}, "colour"),
])
def test_billing_bad_plans_are_refused_naming_the_field(app, world, body, field):
    problem(as_user(app, world, "nw_owner", "northwind").post("/plans", json=body), 422, field)


def test_billing_who_may_define_assign_and_read_plans(app, billed):
    retail_id = billed.plans["retail"]["id"]
    ct = as_key(app, billed, "c_owner", "c")
    problem(ct.get(f"/plans/{retail_id}"), 403)  # a workspace defines no plans
    contoso = as_user(app, billed, "ct_owner", "contoso")
    assert ok(contoso.get("/plans"))["items"] == []
    problem(contoso.get(f"/plans/{retail_id}"), 404)
    problem(contoso.put(f"/billing/accounts/{billed.tid('a')}", json={"plan_id": retail_id}),
            404)  # not its client
    own = ok(contoso.post("/plans", json={"name": "Contoso basic"}), 201)
    problem(contoso.put(f"/billing/accounts/{billed.tid('c')}",
                        json={"plan_id": billed.plans["wholesale"]["id"]}), 404)  # not its plan
    assert ok(contoso.put(f"/billing/accounts/{billed.tid('c')}", json={"plan_id": own["id"]}))[
        "account"]["plan"]["name"] == "Contoso basic"
    admin = as_user(app, billed, "nw_admin", "northwind")  # billing.clients: plans too
    assert [p["name"] for p in ok(admin.get("/plans"))["items"]] == ["Client growth"]
    by_admin = ok(admin.post("/plans", json={"name": "Client starter"}), 201)
    assert ok(admin.put(f"/billing/accounts/{billed.tid('b')}", json={
        "plan_id": by_admin["id"]}))["account"]["plan"]["name"] == "Client starter"
    problem(as_user(app, billed, "nw_viewer", "northwind").post(
        "/plans", json={"name": "Nope"}), 403)
    problem(as_user(app, billed, "a_admin", "a").post("/plans", json={"name": "Nope"}),
            403)  # a workspace defines no plans
    problem(as_key(app, billed, "a_admin").get("/billing/clients"), 422, "X-Overture-Tenant")
    listed = ok(as_user(app, billed, "platform").get("/plans"))
    assert listed["kind"] == "wholesale"
    assert [(p["name"], p["in_use"]) for p in listed["items"]] == [("Agency wholesale", 1)]
    problem(as_user(app, billed, "nw_owner", "northwind").put(
        f"/billing/accounts/{uuid.uuid4()}", json={"plan_id": retail_id}), 404)


def test_billing_plans_and_accounts_stay_in_their_tenants_rows(app, billed):
    """Row-level security as well as the ORM: a client never reads its agency's plans,
    nor another client's account; its own account it reads."""
    a, b = billed.tenants["a"].id, billed.tenants["b"].id
    with scoped_to(a):
        assert db.session.scalars(select(Plan)).all() == []
        raw = db.session.execute(text("SELECT count(*) FROM plans")).scalar()
        accounts = db.session.execute(text("SELECT tenant_id FROM billing_accounts")).all()
        db.session.rollback()
    assert raw == 0
    assert [row[0] for row in accounts] == [a]
    with scoped_to(b):
        assert db.session.execute(text("SELECT count(*) FROM billing_accounts "
                                       f"WHERE tenant_id = '{a}'")).scalar() == 0
        db.session.rollback()


def test_billing_storage_is_priced_on_the_level_at_the_months_end(app, world):
    contoso = as_user(app, world, "ct_owner", "contoso")
    plan = ok(contoso.post("/plans", json={"name": "Storage", "price_book": {"meters": {
        "knowledge_bytes": {"unit_price": "0.000001", "included": "1000"}}}}), 201)
    ok(contoso.put(f"/billing/accounts/{world.tid('c')}", json={"plan_id": plan["id"]}))
    c = world.tenants["c"].id
    put(c, "knowledge_bytes", "5000000", when=datetime(2026, 10, 20, tzinfo=UTC))
    put(c, "knowledge_bytes", "-1000000", when=NOV)
    put(c, "knowledge_bytes", "7000000", when=datetime(2026, 12, 2, tzinfo=UTC))
    draft = ok(as_key(app, world, "c_owner").get("/billing/draft-invoice?month=2026-11"))
    (line,) = draft["lines"]
    assert (line["meter"], line["quantity"], line["billable"]) == ("knowledge_bytes",
                                                                  "4000000", "3999000")
    assert draft["total"] == "4.00"  # 3,999,000 bytes at 0.000001: 3.999
