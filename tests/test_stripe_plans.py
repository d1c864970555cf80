"""Plans in Stripe (`-k stripe`): a plan is a product with a flat price and metered
prices on the account's Billing Meters; each billed tenant at a plan has a subscription
to it, in the account that bills it (the platform's for an agency, the agency's own
Connect account, with `Stripe-Account`, for its clients). Synced from pending rows by
the billing pass, never in the request that changed the plan; an edit makes new prices
and moves the subscriptions at their next period; Stripe down is waited out, nothing
made twice; and what Stripe would charge is the draft invoice to the cent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from sqlalchemy import select

from overture.billing import invoices, meter_outbox, stripe_plans
from overture.billing import meters as m
from overture.billing.periods import month_of
from overture.billing.stripe_models import StripeAccount, StripePlan, StripeSubscription
from overture.billing.usage import Entry, record
from overture.platform.db import PLATFORM_TENANT_ID, db, scoped_to
from tests.engine_api_support import audit_events
from tests.stripe_fake import fake_stripe, use_stripe
from tests.support import as_user
from tests.test_stripe_acceptance import cli

HOUR = timedelta(hours=1)
T0 = datetime(2026, 12, 6, 8, tzinfo=UTC)
NOW = T0 + 3 * HOUR + timedelta(minutes=30)
GPT, HAIKU = "openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"
WHOLESALE = {"name": "Agency wholesale", "base_fee": "49.99", "price_book": {
    "meters": {"steps": {"unit_price": "0.0015", "included": "1000"},
               "runs_started": {"tiers": [{"up_to": "100", "unit_price": "0.01"},
                                          {"up_to": None, "unit_price": "0.0075"}]},
               "action_calls": {"unit_price": "0.00042"}},
    "models": {"mode": "cost_plus", "markup_percent": "30"}}}


@pytest.fixture
def fake(app, monkeypatch):
    with fake_stripe() as server:
        use_stripe(app, monkeypatch, server)
        server.period = (int(datetime(2026, 12, 1, tzinfo=UTC).timestamp()),
                         int(datetime(2027, 1, 1, tzinfo=UTC).timestamp()))
        yield server


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def wholesale(app, world) -> dict[str, Any]:
    """The platform's plan, northwind billed at it."""
    root = as_user(app, world, "platform")
    plan = ok(root.post("/plans", json=WHOLESALE), 201)
    ok(root.put(f"/billing/accounts/{world.tid('northwind')}", json={"plan_id": plan["id"]}))
    return plan


def prices_by_item(fake) -> dict[str, Any]:
    return {p["form"]["metadata[overture_item]"]: p for p in fake.prices.values()}


def meter_id(fake, meter: str, account: str | None = None) -> str:
    return next(i for i, x in fake.meters.items()
                if x["event_name"] == f"overture_{meter}" and x["scope"][0] == account)


def statuses(model, tenant_id) -> list[str]:
    with scoped_to(tenant_id):
        found = [r.status for r in db.session.scalars(select(model))]
        db.session.rollback()
    return found


def test_stripe_a_plan_becomes_a_product_with_metered_prices_and_a_subscription(
        app, world, fake):
    plan = wholesale(app, world)
    assert fake.requests == []  # the request that made the plan did not wait for Stripe
    assert statuses(StripePlan, PLATFORM_TENANT_ID) == ["pending"]

    report = stripe_plans.sync_due(NOW)
    assert (report.synced, report.failed) == (2, 0)  # the plan, then the subscription
    (product,) = fake.products.values()
    assert product["form"] == {"name": "Agency wholesale",
                               "metadata[overture_plan_id]": plan["id"]}
    posts = {r.form.get("metadata[overture_item]"): r
             for r in fake.seen("POST", "/v1/prices")}
    key = f"overture-plan-{plan['id']}-v1"
    assert {i: r.headers["Idempotency-Key"] for i, r in posts.items()} == {
        i: f"{key}-{i}" for i in ("base_fee", "meter:steps", "meter:runs_started",
                                  "meter:action_calls", "model:llm_cost")}
    assert all("Stripe-Account" not in r.headers for r in fake.requests)
    common = {"currency": "usd", "product": product["id"], "recurring[interval]": "month",
              "metadata[overture_plan_id]": plan["id"], "metadata[overture_plan_version]": "1"}

    def form(item: str) -> dict[str, str]:
        return {k: v for k, v in posts[item].form.items()
                if k not in common and k != "metadata[overture_item]"}

    assert all(posts[i].form[k] == v for i in posts for k, v in common.items())
    assert form("base_fee") == {"unit_amount": "4999", "recurring[usage_type]": "licensed",
                                "nickname": "Monthly base fee"}
    metered = {"recurring[usage_type]": "metered"}
    assert form("meter:steps") == metered | {
        "recurring[meter]": meter_id(fake, "steps"), "nickname": "steps",
        "billing_scheme": "tiered", "tiers_mode": "graduated",
        "tiers[0][up_to]": "1000", "tiers[0][unit_amount_decimal]": "0",  # included
        "tiers[1][up_to]": "inf", "tiers[1][unit_amount_decimal]": "0.15"}
    assert form("meter:runs_started") == metered | {
        "recurring[meter]": meter_id(fake, "runs_started"), "nickname": "runs_started",
        "billing_scheme": "tiered", "tiers_mode": "graduated",
        "tiers[0][up_to]": "100", "tiers[0][unit_amount_decimal]": "1",
        "tiers[1][up_to]": "inf", "tiers[1][unit_amount_decimal]": "0.75"}
    assert form("meter:action_calls") == metered | {  # a sub-cent price, exact
        "recurring[meter]": meter_id(fake, "action_calls"), "nickname": "action_calls",
        "unit_amount_decimal": "0.042"}
    assert form("model:llm_cost") == metered | {  # per micro-dollar: 1.3 / 10^6 USD
        "recurring[meter]": meter_id(fake, "llm_cost"),
        "nickname": "Model usage at cost + 30 %", "unit_amount_decimal": "0.00013"}

    (sub,) = fake.subscriptions.values()
    (customer,) = fake.customers.values()
    assert customer["metadata"]["overture_tenant_id"] == str(world.tid("northwind"))
    assert sub["form"]["customer"] == customer["id"]
    assert sorted(fake.items_of(sub)) == sorted(p["id"] for p in fake.prices.values())
    assert sub["form"]["collection_method"] == "send_invoice"
    (post,) = fake.seen("POST", "/v1/subscriptions")
    assert post.headers["Idempotency-Key"] == \
        f"overture-subscription-{world.tid('northwind')}-{plan['id']}-v1"

    assert stripe_plans.sync_due(NOW + HOUR).synced == 0  # nothing left to do
    synced = audit_events(PLATFORM_TENANT_ID, "stripe.plan_synced")
    assert synced[0]["details"]["product_id"] == product["id"]
    assert set(synced[0]["details"]["prices"].values()) == set(fake.prices)
    for chain in (PLATFORM_TENANT_ID, world.tid("northwind")):
        (event,) = audit_events(chain, "stripe.subscription_synced")
        assert event["details"]["subscription_id"] == sub["id"]


def test_stripe_an_agencys_retail_plan_goes_to_its_connect_account(app, world, fake):
    northwind = world.tenants["northwind"].id
    with scoped_to(northwind):
        db.session.add(StripeAccount(tenant_id=northwind, mode="connect",
                                     connect_account_id="acct_northwind"))
        db.session.commit()
    nw = as_user(app, world, "nw_owner", "northwind")
    retail = ok(nw.post("/plans", json={"name": "Client", "base_fee": "9", "price_book": {
        "meters": {"steps": {"unit_price": "0.002"}}, "models": {"mode": "none"}}}), 201)
    ok(nw.put(f"/billing/accounts/{world.tid('a')}", json={"plan_id": retail["id"]}))
    assert stripe_plans.sync_due(NOW).synced == 2
    made = [r for r in fake.requests if r.method == "POST"]
    assert made and {r.headers.get("Stripe-Account") for r in made} == {"acct_northwind"}
    assert {p["form"]["metadata[overture_item]"] for p in fake.prices.values()} == {
        "base_fee", "meter:steps"}  # models not charged: no price
    steps = prices_by_item(fake)["meter:steps"]
    assert steps["form"]["recurring[meter]"] == meter_id(fake, "steps", "acct_northwind")
    (sub,) = fake.subscriptions.values()
    customer = fake.customers[sub["form"]["customer"]]
    assert customer["metadata"]["overture_tenant_id"] == str(world.tid("a"))
    assert sub["account"] == customer["account"] == "acct_northwind"


def test_stripe_a_plan_edit_makes_new_prices_and_moves_subscriptions_next_period(
        app, world, fake):
    plan = wholesale(app, world)
    stripe_plans.sync_due(NOW)
    first = {i: p["id"] for i, p in prices_by_item(fake).items()}
    (sub_id,) = fake.subscriptions
    book = dict(WHOLESALE["price_book"], meters={"steps": {"unit_price": "0.002"}})
    ok(as_user(app, world, "platform").patch(f"/plans/{plan['id']}",
                                              json={"price_book": book}))
    assert statuses(StripePlan, PLATFORM_TENANT_ID) == ["pending"]

    assert stripe_plans.sync_due(NOW).synced == 2
    v2 = {r.form["metadata[overture_item]"]: r for r in fake.seen("POST", "/v1/prices")
          if r.form.get("metadata[overture_plan_version]") == "2"}
    assert set(v2) == {"base_fee", "meter:steps", "model:llm_cost"}
    assert v2["meter:steps"].headers["Idempotency-Key"] == \
        f"overture-plan-{plan['id']}-v2-meter:steps"
    assert v2["meter:steps"].form["unit_amount_decimal"] == "0.2"
    archived = {r.path.rsplit("/", 1)[1] for r in fake.requests
                if r.method == "POST" and r.path.startswith("/v1/prices/")}
    assert archived == set(first.values())
    assert all(fake.prices[p]["updates"] == [{"active": "false"}] for p in first.values())
    assert len(fake.subscriptions) == 1  # the same subscription, moved at its next period
    (schedule,) = fake.subscription_schedules.values()
    assert schedule["form"] == {"from_subscription": sub_id}
    (update,) = schedule["updates"]
    start, end = fake.period
    assert update["end_behavior"] == "release" and update["proration_behavior"] == "none"
    assert (update["phases[0][start_date]"], update["phases[0][end_date]"]) == (str(start),
                                                                                str(end))
    kept = {v for k, v in update.items() if k.startswith("phases[0][items]")}
    new = {v for k, v in update.items() if k.startswith("phases[1][items]")}
    assert kept == set(first.values())
    new_ids = {p["id"] for p in fake.prices.values()
               if p["form"]["metadata[overture_plan_version]"] == "2"}
    assert new == new_ids and update["phases[1][iterations]"] == "1"
    with scoped_to(world.tenants["northwind"].id):
        row = db.session.scalars(select(StripeSubscription)).one()
        assert (row.plan_version, set(row.prices.values())) == (2, new_ids)
        db.session.rollback()


def test_stripe_down_then_back_the_pending_sync_is_retried_and_nothing_is_made_twice(
        app, world, fake):
    plan = wholesale(app, world)
    fake.fail_when = lambda seen: seen.path == "/v1/prices" and len(fake.prices) >= 2
    report = stripe_plans.sync_due(NOW)
    assert report.failed == 1 and report.synced == 0
    assert len(fake.prices) == 2  # kept as made
    assert statuses(StripePlan, PLATFORM_TENANT_ID) == ["pending"]
    (failure,) = audit_events(PLATFORM_TENANT_ID, "stripe.plan_sync_failed")
    assert "HTTP 500" in failure["details"]["error"]
    assert stripe_plans.sync_due(NOW).synced == 0  # waits out its delay

    fake.fail_when, fake.down = None, True
    assert stripe_plans.sync_due(NOW + HOUR).failed == 1
    fake.down = False
    assert stripe_plans.sync_due(NOW + 2 * HOUR).synced == 2
    assert len(fake.products) == 1 and len(fake.subscriptions) == 1
    assert len(fake.prices) == 5  # each item once
    assert {p["form"]["metadata[overture_item]"] for p in fake.prices.values()} == {
        "base_fee", "meter:steps", "meter:runs_started", "meter:action_calls",
        "model:llm_cost"}
    assert statuses(StripePlan, PLATFORM_TENANT_ID) == ["synced"]
    (synced,) = audit_events(PLATFORM_TENANT_ID, "stripe.plan_synced")
    assert synced["details"]["version"] == 1 and plan["id"] == synced["target_id"]


def test_stripe_a_rate_card_plan_is_not_faked_in_stripe(app, world, fake):
    root = as_user(app, world, "platform")
    plan = ok(root.post("/plans", json={"name": "Card", "price_book": {"models": {
        "mode": "rate_card", "rates": {GPT: {"input_per_mtok": "0.2",
                                             "output_per_mtok": "0.8"}}}}}), 201)
    ok(root.put(f"/billing/accounts/{world.tid('northwind')}", json={"plan_id": plan["id"]}))
    report = stripe_plans.sync_due(NOW)
    assert report.unsupported == 2 and fake.prices == {} and fake.subscriptions == {}
    (event,) = audit_events(PLATFORM_TENANT_ID, "stripe.plan_unsupported")
    assert "rate card" in event["details"]["reasons"][0]


def test_stripe_a_plan_edited_into_a_rate_card_ends_its_subscriptions(app, world, fake):
    plan = wholesale(app, world)
    stripe_plans.sync_due(NOW)
    (sub_id,) = fake.subscriptions
    card = {"models": {"mode": "rate_card", "rates": {GPT: {"input_per_mtok": "0.2",
                                                            "output_per_mtok": "0.8"}}}}
    ok(as_user(app, world, "platform").patch(f"/plans/{plan['id']}",
                                              json={"price_book": card}))
    assert stripe_plans.sync_due(NOW).unsupported == 2
    assert fake.subscriptions[sub_id]["updates"] == [{"cancel_at_period_end": "true"}]
    assert len(fake.prices) == 5  # no price made for the rate card
    assert statuses(StripeSubscription, world.tenants["northwind"].id) == ["unsupported"]


def stripe_charge(fake, customer: str) -> Decimal:
    """What Stripe would charge the customer for the period: each price of its
    subscription over the events kept for its meter, each line rounded once."""
    (sub,) = [s for s in fake.subscriptions.values() if s["form"]["customer"] == customer]
    total = Decimal(0)
    for price_id in fake.items_of(sub):
        form = fake.prices[price_id]["form"]
        if form["recurring[usage_type]"] == "licensed":
            total += Decimal(form["unit_amount"])
            continue
        name = fake.meters[form["recurring[meter]"]]["event_name"]
        quantity = sum((Decimal(e["payload"]["value"]) for e in fake.events.values()
                        if e["event_name"] == name
                        and e["payload"]["stripe_customer_id"] == customer), Decimal(0))
        total += graduated(form, quantity).quantize(Decimal(1), ROUND_HALF_UP)
    return total / 100


def graduated(form: dict[str, str], quantity: Decimal) -> Decimal:
    if form.get("billing_scheme") != "tiered":
        return quantity * Decimal(form["unit_amount_decimal"])
    amount, since, i = Decimal(0), Decimal(0), 0
    while f"tiers[{i}][up_to]" in form:
        up_to = form[f"tiers[{i}][up_to]"]
        end = quantity if up_to == "inf" else min(quantity, Decimal(up_to))
        amount += max(end - since, Decimal(0)) * Decimal(form[f"tiers[{i}][unit_amount_decimal]"])
        since, i = (end if up_to == "inf" else Decimal(up_to)), i + 1
    return amount


def test_stripe_charges_what_the_draft_invoice_says(app, world, fake):
    wholesale(app, world)
    a, northwind = world.tid("a"), world.tid("northwind")
    for tenant_id, entries in ((a, [(m.STEPS, "1333", ""), (m.RUNS_STARTED, "157", ""),
                                    (m.ACTION_CALLS, "1001", "slack"),
                                    (m.MODEL_COST, "1.234567", GPT),
                                    (m.MODEL_COST, "0.0049", HAIKU)]),
                               (northwind, [(m.STEPS, "10", "")])):
        with scoped_to(tenant_id):
            record([Entry(meter, Decimal(q), dim) for meter, q, dim in entries], at=T0)
            db.session.commit()
    stripe_plans.sync_due(NOW)
    meter_outbox.enqueue_all(NOW)
    assert meter_outbox.send_due(now=NOW).failed == 0
    cost = [e for e in fake.events.values() if e["event_name"] == "overture_llm_cost"]
    assert [e["payload"]["value"] for e in cost] == ["1239467"]  # micro-dollars, all models

    tenant = world.tenants["northwind"]
    draft = invoices.draft_invoice(tenant, month_of(T0))
    assert draft.invoice.total == Decimal("53.96")
    (customer,) = fake.customers
    assert stripe_charge(fake, customer) == draft.invoice.total


def test_stripe_the_scheduler_and_the_cli_sync_pending_plans(app, world, fake, settings,
                                                            monkeypatch):
    from overture.orchestration import scheduler

    wholesale(app, world)
    monkeypatch.setattr(scheduler, "STRIPE_PLANS", scheduler.Periodic(interval=60.0))
    fake.down = True
    report = scheduler.sync_plans(now=1000.0)
    assert report is not None and report.failed == 1
    assert scheduler.sync_plans(now=1030.0) is None  # not due again within the minute
    fake.down = False
    done = cli(settings, fake, "sync-plans")  # does what waits out a failure now
    assert done.returncode == 0, done.stderr
    assert "synced 2, failed 0" in done.stdout
    assert len(fake.products) == 1 and len(fake.subscriptions) == 1


def test_stripe_a_tenant_billed_at_no_plan_any_more_is_cancelled_at_period_end(
        app, world, fake):
    wholesale(app, world)
    stripe_plans.sync_due(NOW)
    (sub_id,) = fake.subscriptions
    ok(as_user(app, world, "platform").put(f"/billing/accounts/{world.tid('northwind')}",
                                           json={"plan_id": None}))
    assert stripe_plans.sync_due(NOW).synced == 1
    assert fake.subscriptions[sub_id]["updates"] == [{"cancel_at_period_end": "true"}]
    (event,) = audit_events(PLATFORM_TENANT_ID, "stripe.subscription_cancelled")
    assert event["details"]["cancelled"] == sub_id


def test_stripe_an_agency_moving_to_another_account_gets_its_plans_made_there(
        app, world, fake):
    nw = as_user(app, world, "nw_owner", "northwind")
    ok(nw.put("/billing/stripe-account", json={"mode": "connect", "account_id": "acct_first1"}))
    retail = ok(nw.post("/plans", json={"name": "Client", "base_fee": "9"}), 201)
    ok(nw.put(f"/billing/accounts/{world.tid('a')}", json={"plan_id": retail["id"]}))
    assert stripe_plans.sync_due(NOW).synced == 2
    ok(nw.put("/billing/stripe-account", json={"mode": "connect",
                                              "account_id": "acct_second"}))
    assert stripe_plans.sync_due(NOW).synced == 3  # the plan, A's and B's (none) states
    by_account = sorted((p["account"], s["account"]) for p, s in zip(
        fake.products.values(), fake.subscriptions.values(), strict=True))
    assert by_account == [("acct_first1", "acct_first1"), ("acct_second", "acct_second")]


def test_stripe_a_free_plan_is_a_product_without_a_subscription(app, world, fake):
    root = as_user(app, world, "platform")
    plan = ok(root.post("/plans", json={"name": "Free", "price_book": {
        "models": {"mode": "none"}}}), 201)
    ok(root.put(f"/billing/accounts/{world.tid('northwind')}", json={"plan_id": plan["id"]}))
    report = stripe_plans.sync_due(NOW)
    assert (report.synced, report.failed) == (2, 0)
    assert len(fake.products) == 1 and fake.prices == {} and fake.subscriptions == {}


def test_stripe_a_deleted_plan_is_archived_in_stripe_not_left_for_sale(app, world, fake):
    root = as_user(app, world, "platform")
    plan = ok(root.post("/plans", json=WHOLESALE), 201)
    assert stripe_plans.sync_due(NOW).synced == 1  # no tenant billed at it: no subscription
    (product_id,) = fake.products
    made = set(fake.prices)
    assert root.delete(f"/plans/{plan['id']}").status_code == 204
    assert fake.products[product_id]["updates"] == []  # not in the request: in the pass
    assert statuses(StripePlan, PLATFORM_TENANT_ID) == ["pending"]

    fake.down = True
    assert stripe_plans.sync_due(NOW).failed == 1  # Stripe down: kept, tried again later
    fake.down = False
    assert stripe_plans.sync_due(NOW + HOUR).synced == 1
    assert fake.products[product_id]["updates"] == [{"active": "false"}]
    assert all(fake.prices[p]["updates"] == [{"active": "false"}] for p in made)
    assert statuses(StripePlan, PLATFORM_TENANT_ID) == []  # forgotten once archived
    (retired,) = audit_events(PLATFORM_TENANT_ID, "stripe.plan_retired")
    assert retired["details"]["product_id"] == product_id
    assert set(retired["details"]["archived"]) == made
    assert stripe_plans.sync_due(NOW + 2 * HOUR).synced == 0


def test_stripe_a_plan_deleted_before_its_first_sync_makes_nothing(app, world, fake):
    root = as_user(app, world, "platform")
    plan = ok(root.post("/plans", json=WHOLESALE), 201)
    assert root.delete(f"/plans/{plan['id']}").status_code == 204
    assert statuses(StripePlan, PLATFORM_TENANT_ID) == []
    assert stripe_plans.sync_due(NOW).synced == 0 and fake.requests == []
