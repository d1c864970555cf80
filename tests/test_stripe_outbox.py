"""Usage reported to Stripe (`-k stripe`): each closed hour of each billed meter as one
meter event, from the outbox, under an identifier derived from the roll-up it reports,
with its idempotency key; retried after 500s and timeouts; waiting while Stripe is
down; the agency's own account billed through `Stripe-Account`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from overture.billing import meter_outbox, reconcile
from overture.billing import meters as m
from overture.billing.periods import Period
from overture.billing.stripe_models import MeterEventRow, StripeAccount
from overture.billing.usage import Entry, record
from overture.platform.db import PLATFORM_TENANT_ID, db, scoped_to
from tests.stripe_fake import fake_stripe, use_stripe

HOUR = timedelta(hours=1)
T0 = datetime(2026, 12, 6, 8, tzinfo=UTC)  # the hours used
NOW = T0 + 3 * HOUR + timedelta(minutes=30)  # 08:00 to 10:00 closed and settled


@pytest.fixture
def fake(app, monkeypatch):
    with fake_stripe() as server:
        use_stripe(app, monkeypatch, server)
        yield server


def use(tenant_id, at, *entries):
    with scoped_to(tenant_id):
        record([Entry(meter, Decimal(q), dim) for meter, q, dim in entries], at=at)
        db.session.commit()


def rows(tenant_id):
    with scoped_to(tenant_id):
        found = [r.status for r in db.session.query(MeterEventRow).order_by(
            MeterEventRow.hour, MeterEventRow.meter)]
        db.session.rollback()
    return found


def sent_events(fake):
    return sorted(fake.events.values(), key=lambda e: (e["timestamp"], e["event_name"]))


def test_stripe_each_closed_hour_goes_once_as_one_event_per_meter(world, fake):
    a, northwind = world.tenants["a"].id, world.tenants["northwind"].id
    use(a, T0 + timedelta(minutes=5), (m.STEPS, "3", ""),
        (m.INPUT_TOKENS, "100", "openai:gpt-4o-mini"), (m.INPUT_TOKENS, "50", "anthropic:x"))
    use(a, T0 + timedelta(minutes=50), (m.STEPS, "2", ""))
    use(a, T0 + HOUR + timedelta(minutes=1), (m.MODEL_COST, "0.0125", "openai:gpt-4o-mini"))
    use(a, T0 + 3 * HOUR + timedelta(minutes=1), (m.STEPS, "7", ""))  # still open: waits
    use(a, T0, (m.KNOWLEDGE_BYTES, "4096", ""))  # a level: not reported

    assert meter_outbox.enqueue_all(NOW) == 3
    assert meter_outbox.enqueue_all(NOW) == 0  # an hour is queued once
    report = meter_outbox.send_due(now=NOW)
    assert (report.sent, report.failed) == (3, 0)

    customer = next(iter(fake.customers.values()))
    assert customer["metadata"]["overture_tenant_id"] == str(northwind)  # the agency pays
    posts = fake.event_posts()
    assert [(p.form["event_name"], p.form["payload[value]"], p.form["timestamp"]) for p in posts] \
        == [("overture_llm_input_tokens", "150", str(int(T0.timestamp()))),
            ("overture_steps", "5", str(int(T0.timestamp()))),
            ("overture_llm_cost", "12500", str(int((T0 + HOUR).timestamp())))]  # micro-USD
    first = posts[0]
    ident = f"overture:{a}:llm_input_tokens:2026-12-06T08Z:{PLATFORM_TENANT_ID}"
    assert first.form["identifier"] == ident
    assert first.form["payload[stripe_customer_id]"] == customer["id"]
    assert first.headers["Idempotency-Key"] == meter_outbox.idempotency_key(ident)
    assert first.headers["Authorization"] == "Bearer sk_test_platform_fake"
    assert "Stripe-Account" not in first.headers
    assert {m["event_name"] for m in fake.meters.values()} >= {
        "overture_steps", "overture_llm_cost", "overture_portal_active_users"}
    assert "overture_knowledge_bytes" not in {m["event_name"] for m in fake.meters.values()}

    assert meter_outbox.send_due(now=NOW).sent == 0  # nothing sent twice
    assert len(fake.event_posts()) == 3
    assert rows(a) == ["sent"] * 3


def test_stripe_500s_and_timeouts_are_retried_with_the_same_identifier(world, fake):
    a = world.tenants["a"].id
    use(a, T0, (m.STEPS, "4", ""))
    meter_outbox.enqueue_all(NOW)
    meter_outbox.send_due(now=NOW)  # meters and customer exist; the event went
    use(a, T0 + HOUR, (m.STEPS, "1", ""))
    use(a, T0 + 2 * HOUR, (m.STEPS, "2", ""))
    meter_outbox.enqueue_all(NOW)

    fake.fail_next = 2  # the SDK retries twice: the third try succeeds
    assert meter_outbox.send_due(now=NOW).sent == 2
    hour9 = [p for p in fake.event_posts() if p.form["timestamp"] == str(int((T0 + HOUR)
                                                                           .timestamp()))]
    assert len(hour9) == 3 and len({(p.form["identifier"], p.headers["Idempotency-Key"])
                                    for p in hour9}) == 1

    later = NOW + HOUR
    fake.slow_next, fake.slow_seconds = 1, 3.0  # longer than the 2 s timeout, once
    use(a, T0 + 3 * HOUR, (m.STEPS, "6", ""))
    meter_outbox.enqueue_all(later)
    assert meter_outbox.send_due(now=later).sent == 1
    hour11 = [p for p in fake.event_posts() if p.form["payload[value]"] == "6"]
    assert len(hour11) == 2  # timed out, then retried with the same identifier and key
    assert len({(p.form["identifier"], p.headers["Idempotency-Key"]) for p in hour11}) == 1
    assert sum(1 for e in fake.events.values() if e["payload"]["value"] == "6") == 1


def test_stripe_down_for_hours_keeps_every_row_until_it_answers(world, fake):
    a, b = world.tenants["a"].id, world.tenants["b"].id
    for i in range(3):
        use(a, T0 + i * HOUR, (m.STEPS, str(i + 1), ""))
        use(b, T0 + i * HOUR, (m.RUNS_STARTED, "1", ""))
    meter_outbox.enqueue_all(NOW)
    fake.down = True
    report = meter_outbox.send_due(now=NOW)
    assert report.sent == 0 and report.failed >= 1
    calls = len(fake.requests)
    assert calls <= 2 * 3  # one account down: the rest of the batch does not knock again
    for hours in range(1, 6):
        meter_outbox.send_due(now=NOW + hours * HOUR)
    assert set(rows(a) + rows(b)) == {"pending"}
    assert meter_outbox.backlog().pending == 6
    assert meter_outbox.backlog().oldest_hour == T0

    fake.down = False
    meter_outbox.send_due(now=NOW + 7 * HOUR)
    assert meter_outbox.backlog().pending == 0
    assert len(fake.events) == 6
    result = reconcile.reconcile(Period(T0, T0 + 3 * HOUR))
    assert result.differences == [] and result.compared == 6


def test_stripe_an_agencys_connect_account_bills_its_clients_with_stripe_account(world, fake):
    a, northwind = world.tenants["a"].id, world.tenants["northwind"].id
    with scoped_to(northwind):
        db.session.add(StripeAccount(tenant_id=northwind, mode="connect",
                                     connect_account_id="acct_northwind"))
        db.session.commit()
    use(a, T0, (m.STEPS, "2", ""))
    meter_outbox.enqueue_all(NOW)
    assert meter_outbox.send_due(now=NOW).sent == 2  # to the platform, and to the agency
    by_account = {p.headers.get("Stripe-Account"): p.form for p in fake.event_posts()}
    assert set(by_account) == {None, "acct_northwind"}
    agency_customer = fake.customers[by_account["acct_northwind"]["payload[stripe_customer_id]"]]
    assert agency_customer["metadata"]["overture_tenant_id"] == str(a)  # the client pays it
    assert agency_customer["account"] == "acct_northwind"
    assert by_account["acct_northwind"]["identifier"].endswith(f":{northwind}")


def test_stripe_rows_wait_while_the_tenant_has_no_account(world, fake, app, monkeypatch):
    a = world.tenants["a"].id
    use(a, T0, (m.STEPS, "2", ""))
    use_stripe(app, monkeypatch, fake, stripe_api_key=None)
    assert meter_outbox.enqueue_all(NOW) == 0  # no account bills it: nothing queued
    use_stripe(app, monkeypatch, fake)
    assert meter_outbox.enqueue_all(NOW) == 1


def test_stripe_the_scheduler_reports_closed_hours_each_minute(world, fake, monkeypatch):
    from overture.orchestration import scheduler

    monkeypatch.setattr(scheduler, "STRIPE_USAGE", scheduler.Periodic(interval=60.0))
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - 2 * HOUR
    use(world.tenants["a"].id, hour, (m.RUNS_STARTED, "1", ""))
    report = scheduler.report_usage(now=1000.0)
    assert report is not None and report.sent == 1
    assert scheduler.report_usage(now=1030.0) is None  # not due again within the minute
    assert [e["event_name"] for e in fake.events.values()] == ["overture_runs_started"]


def test_stripe_usage_recorded_late_in_a_sent_hour_goes_as_a_further_event(world, fake):
    a = world.tenants["a"].id
    use(a, T0 + timedelta(minutes=5), (m.STEPS, "3", ""))
    meter_outbox.enqueue_all(NOW)
    meter_outbox.send_due(now=NOW)
    use(a, T0 + timedelta(minutes=59), (m.STEPS, "2", ""))  # committed late, same hour
    assert meter_outbox.enqueue_all(NOW + HOUR) == 1
    assert meter_outbox.enqueue_all(NOW + HOUR) == 0
    meter_outbox.send_due(now=NOW + HOUR)
    base = f"overture:{a}:steps:2026-12-06T08Z:{PLATFORM_TENANT_ID}"
    assert [(e["identifier"], e["payload"]["value"]) for e in sent_events(fake)] == [
        (base, "3"), (f"{base}:2", "2")]
    assert reconcile.reconcile(Period(T0, T0 + HOUR)).differences == []
