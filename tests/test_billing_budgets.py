"""Budgets and caps (`-k billing`): a workspace's hard monthly limits refuse new runs
with a 402 problem and fail a running step with `budget_exceeded` (which its error
route catches), never more than one call over when runs race, on real `overture
worker` processes; soft thresholds mail once; a past-due tenant is refused after its
grace period and a payment lifts it."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from overture.billing import meter_outbox, standing, stripe_prices
from overture.billing.alerts import UsageAlert
from overture.billing.budgets import BudgetLimit
from overture.billing.rollups import hour_of
from overture.orchestration import runs, workflows
from overture.orchestration.llm.prices import set_price
from overture.orchestration.models import StepRun
from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to, utcnow
from overture.platform.errors import QuotaExceeded
from overture.platform.mail import OutboxMessage
from tests.agent_fakes import FakeOpenAI, answer, create_agent
from tests.conftest import REDIS_NAMESPACE, pg_settings
from tests.engine_support import private_app, publish, running_workers, start, wait_for
from tests.stripe_fake import fake_stripe, use_stripe
from tests.support import as_key, as_user

DOLLAR_MODEL = "budget-dollar"  # priced so that 100 input tokens cost $1.00


@pytest.fixture(autouse=True)
def _loopback(monkeypatch):
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.0/8")


@pytest.fixture
def dollar_model(world, httpserver):
    """A scripted OpenAI-compatible model (a real local HTTP server) whose every call
    costs $1.00: 100 input tokens at $10,000 per million."""
    set_price("openai", DOLLAR_MODEL, "10000", "0")
    db.session.commit()
    fake = FakeOpenAI(httpserver)
    create_agent(world, {
        "name": "spender", "role": "assistant", "instructions": "Answer.",
        "model": {"provider": "openai", "model": DOLLAR_MODEL, "max_output_tokens": 20},
        "credential_id": str(fake.credential(world).id)})
    return fake


def say(fake: FakeOpenAI, calls: int, delay: float = 0.0) -> None:
    for _ in range(calls):
        fake.say(answer("done"), tokens=(100, 0), delay=delay)


def owner(app, world):
    return as_user(app, world, "a_owner")


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def set_limits(app, world, **body: Any) -> dict[str, Any]:
    return ok(owner(app, world).put("/budgets", json=body))


def start_via_api(app, world, workflow_id: Any) -> Any:
    return as_key(app, world, "a_admin").post(f"/workflows/{workflow_id}/runs",
                                              json={"input": {}})


def month_usage(app, world) -> dict[str, str]:
    return ok(as_key(app, world, "a_admin").get("/usage"))["totals"]


def agent_step(i: int, **more: Any) -> dict[str, Any]:
    return {"id": f"ask{i}", "type": "agent", "agent": "spender", "task": "Answer.", **more}


def alerts_sent(tenant_id: Any) -> list[tuple[str, int]]:
    with scoped_to(tenant_id):
        rows = db.session.execute(select(UsageAlert.meter, UsageAlert.threshold_percent)
                                  .order_by(UsageAlert.threshold_percent)).all()
        db.session.rollback()
    return [tuple(r) for r in rows]


def budget_mails() -> int:
    found = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.template == "budget_alert"))
    db.session.rollback()
    return int(found or 0)


# --------------------------------------------------------------------------- the API


def test_billing_budgets_are_read_with_billing_read_and_changed_by_owners_audited(app, world):
    a = world.tenants["a"].id
    assert ok(as_key(app, world, "a_admin").get("/budgets")) ["limits"] == []
    assert as_user(app, world, "a_viewer").get("/budgets").status_code == 403
    refused = as_user(app, world, "a_admin").put("/budgets", json={"budget": "5"})
    assert refused.status_code == 403  # billing.manage: the owner's

    bad = owner(app, world).put("/budgets", json={
        "budget": "5.001", "thresholds": [50, 180],
        "caps": [{"meter": "bogus", "limit": 3}, {"meter": "runs_started", "limit": 2.5}]})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.get_json()["errors"]} == {
        "budget", "thresholds", "caps.0.meter", "caps.1.limit"}

    shown = set_limits(app, world, budget="5", thresholds=[80, 50],
                       caps=[{"meter": "runs_started", "limit": "100"}])
    assert (shown["budget"], shown["thresholds"]) == ("5", [50, 80])
    assert [(x["meter"], x["limit"], x["used"], x["percent"]) for x in shown["limits"]] == [
        ("llm_cost", "5", "0", 0), ("runs_started", "100", "0", 0)]
    assert ok(as_key(app, world, "a_admin").get("/billing/standing"))["status"] == "good"
    with scoped_to(a):
        (event,) = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "billing.budget_changed")).all()
        assert event.details["after"]["budget"] == "5"
        db.session.rollback()
    set_limits(app, world, budget=None)
    with scoped_to(a):
        assert db.session.scalar(select(func.count()).select_from(BudgetLimit)) == 0
        db.session.rollback()


def test_billing_an_agency_admin_sets_its_clients_budgets_and_no_one_elses(app, world):
    """An agency's admin sets a client workspace's budget (audited as them); the client's
    own admin and its portal member may not, nor another agency's admin (not found),
    and the agency's own billing stays its owner's."""
    agency_admin = as_user(app, world, "nw_admin", "a")
    shown = ok(agency_admin.put("/budgets", json={"budget": "12.50", "caps": [
        {"meter": "steps", "limit": 1000}]}))
    assert (shown["budget"], [c["meter"] for c in shown["caps"]]) == ("12.5", ["steps"])
    assert ok(as_key(app, world, "a_admin").get("/budgets"))["budget"] == "12.5"
    with scoped_to(world.tenants["a"].id):
        (event,) = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "billing.budget_changed")).all()
        assert event.actor_id == str(world.users["nw_admin"].id)
        db.session.rollback()
    for handle, tenant, status in (("a_admin", "a", 403), ("a_member", "a", 403),
                                   ("ct_owner", "a", 404), ("nw_admin", "northwind", 403),
                                   ("nw_viewer", "a", 403)):
        refused = as_user(app, world, handle, tenant).put("/budgets", json={"budget": "99"})
        assert refused.status_code == status, (handle, refused.get_data(as_text=True))
    assert ok(as_key(app, world, "a_admin").get("/budgets"))["budget"] == "12.5"
    assert ok(as_user(app, world, "nw_owner", "northwind").put(
        "/budgets", json={"budget": "40"}))["budget"] == "40"  # the agency's own: its owner


def test_billing_a_cap_on_runs_holds_when_starts_race(app, world):
    """Ten starts at once against a cap of three: three runs, seven 402s naming it."""
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [{"id": "only", "type": "transform", "output": 1}]})
    set_limits(app, world, caps=[{"meter": "runs_started", "limit": 3}])
    outcomes: list[str] = []
    ready = threading.Barrier(10)

    def one() -> None:
        with app.app_context(), scoped_to(a):
            ready.wait()
            try:
                runs.start_run(workflows.get_workflow(wf), {}, "api")
                db.session.commit()
                outcomes.append("started")
            except QuotaExceeded as refused:
                db.session.rollback()
                outcomes.append(refused.extra["meter"])

    threads = [threading.Thread(target=one) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["runs_started"] * 7 + ["started"] * 3
    refused = start_via_api(app, world, wf)
    assert refused.status_code == 402
    body = refused.get_json()
    assert body["type"] == "urn:overture:problem:quota-exceeded"
    assert (body["meter"], body["limit"], body["used"]) == ("runs_started", "3", "3")


# --------------------------------------------------------------------------- acceptance


def test_billing_a_5_dollar_budget_stops_the_6th_dollar_call_and_the_next_run(
        app_ctx, world, database, dollar_model, monkeypatch):
    a = world.tenants["a"].id
    say(dollar_model, 6)
    set_limits(app_ctx, world, budget="5.00")
    own = pg_settings(database, OVERTURE_REDIS_NAMESPACE=f"{REDIS_NAMESPACE}-budget")
    steps = [agent_step(i, next=f"ask{i + 1}" if i < 6 else None, on_error="caught")
             for i in range(1, 7)]
    with private_app(own), running_workers(own, processes=1, threads=2):
        wf = publish(a, {"steps": [{k: v for k, v in s.items() if v is not None}
                                   for s in steps]
                         + [{"id": "caught", "type": "transform",
                             "output": {"code": "{{ error.code }}", "step": "{{ error.step }}",
                                        "used": "{{ error.used }}"}}]})
        run = wait_for(a, start(a, wf), timeout=90)
    assert run.status == "succeeded", run.error
    assert run.output == {"code": "budget_exceeded", "step": "ask6", "used": "5.00"}
    assert len(dollar_model.requests) == 5  # the 6th call was never made

    refused = start_via_api(app_ctx, world, wf)
    assert refused.status_code == 402
    problem = refused.get_json()
    assert problem["type"] == "urn:overture:problem:budget-exceeded"
    assert (problem["meter"], problem["limit"], problem["used"]) == ("llm_cost", "5.00", "5.00")
    assert Decimal(month_usage(app_ctx, world)["llm_cost"]) == Decimal("5.00")
    # 50, 80 and 100 %: each alert once, to the owner and the admin
    assert alerts_sent(a) == [("budget", 50), ("budget", 80), ("budget", 100)]
    assert budget_mails() == 6

    # Stripe (the fake) gets the hour's meter events once each: $5.00 of model cost.
    with fake_stripe() as stripe:
        use_stripe(app_ctx, monkeypatch, stripe)
        after_the_hour = hour_of(utcnow()) + timedelta(hours=1, minutes=11)
        meter_outbox.enqueue_all(after_the_hour)
        assert meter_outbox.send_due(now=after_the_hour).failed == 0
        assert meter_outbox.send_due(now=after_the_hour).sent == 0  # nothing twice
        posts = stripe.event_posts()
        identifiers = [p.form["identifier"] for p in posts]
        assert len(identifiers) == len(set(identifiers)) > 0
        cost = [Decimal(p.form["payload[value]"]) for p in posts
                if p.form["event_name"] == "overture_llm_cost"]
        # in micro-dollars (Stripe's meter values are whole numbers); two events if the
        # calls straddled an hour
        assert sum(cost) == Decimal("5") * stripe_prices.COST_SCALE


def test_billing_fifty_runs_racing_at_the_budget_never_spend_past_it(
        app_ctx, world, database, dollar_model):
    a = world.tenants["a"].id
    say(dollar_model, 50, delay=0.1)
    set_limits(app_ctx, world, budget="5.00")
    own = pg_settings(database, OVERTURE_REDIS_NAMESPACE=f"{REDIS_NAMESPACE}-budget50")
    with private_app(own):
        wf = publish(a, {"steps": [agent_step(1)]})
        run_ids = [start(a, wf) for _ in range(50)]
        with running_workers(own, processes=2, threads=8):
            done = [wait_for(a, run_id, timeout=180) for run_id in run_ids]
    spent = Decimal(month_usage(app_ctx, world)["llm_cost"])
    calls = len(dollar_model.requests)
    assert spent == calls  # $1 a call
    assert spent <= Decimal("6.00"), "more than one call over the budget"
    assert spent == Decimal("5.00")  # calls held their worst case: none went over
    assert sum(r.status == "succeeded" for r in done) == calls
    stopped = [r.error for r in done if r.status == "failed"]
    assert len(stopped) == 50 - calls
    assert {e["code"] for e in stopped} == {"budget_exceeded"}
    assert start_via_api(app_ctx, world, wf).status_code == 402


# --------------------------------------------------------------------------- standing


def test_billing_a_past_due_tenant_is_refused_after_grace_and_a_payment_lifts_it(app, world):
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [{"id": "only", "type": "transform", "output": 1}]})
    assert start_via_api(app, world, wf).status_code == 202
    standing.payment_failed(a, utcnow() - timedelta(days=3), "in_late")
    db.session.commit()
    assert start_via_api(app, world, wf).status_code == 202  # within the grace period

    standing.payment_failed(a, utcnow() - timedelta(days=8), "in_late")  # older: ignored
    db.session.commit()
    assert start_via_api(app, world, wf).status_code == 202
    with scoped_to(a):  # as if it had failed eight days ago
        row = db.session.scalars(select(standing.BillingStanding)).one()
        row.past_due_since = row.changed_at = utcnow() - timedelta(days=8)
        db.session.commit()
    from overture.billing import policy_cache
    policy_cache.forget(a)

    refused = start_via_api(app, world, wf)
    assert refused.status_code == 402
    assert refused.get_json()["type"] == "urn:overture:problem:past-due"
    shown = ok(as_key(app, world, "a_admin").get("/billing/standing"))
    assert (shown["status"], shown["restricted"]) == ("past_due", True)
    assert len(ok(as_key(app, world, "a_admin").get("/runs"))["items"]) == 3  # data kept

    standing.payment_succeeded(a, utcnow(), "in_late")
    db.session.commit()
    assert start_via_api(app, world, wf).status_code == 202
    assert ok(as_key(app, world, "a_admin").get("/billing/standing"))["restricted"] is False


def test_billing_a_schedule_refused_by_a_limit_skips_its_tick_and_says_why(app, world):
    from overture.orchestration import scheduler
    from overture.orchestration.models import Schedule, ScheduleFire

    a = world.tenants["a"].id
    wf = publish(a, {"steps": [{"id": "only", "type": "transform", "output": 1}]})
    set_limits(app, world, caps=[{"meter": "runs_started", "limit": 1}])
    assert start_via_api(app, world, wf).status_code == 202
    with scoped_to(a):
        schedule = scheduler.create_schedule(workflows.get_workflow(wf), "0 0 1 1 *")
        schedule.next_fire_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
        sid = schedule.id
    with app.app_context():
        assert scheduler.fire_all() == 0  # no 500, no crash: the tick passed
    with scoped_to(a):
        (fire,) = db.session.scalars(select(ScheduleFire)).all()
        assert fire.run_id is None
        assert db.session.get(Schedule, sid, populate_existing=True).next_fire_at > utcnow()
        (event,) = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "schedule.run_refused")).all()
        assert event.details["problem"] == "quota-exceeded"
        db.session.rollback()


def test_billing_an_agency_past_due_stops_its_clients_runs_too(app, world):
    a, agency = world.tenants["a"].id, world.tenants["northwind"].id
    wf = publish(a, {"steps": [{"id": "only", "type": "transform", "output": 1}]})
    standing.payment_failed(agency, utcnow() - timedelta(days=8), "in_agency")
    db.session.commit()
    refused = start_via_api(app, world, wf)
    assert refused.status_code == 402
    assert refused.get_json()["type"] == "urn:overture:problem:past-due"
    with scoped_to(a):
        token = workflows.get_workflow(wf).webhook_token
        db.session.rollback()
    hook = app.test_client().post(f"/hooks/{a}/{token}", json={"order": 1})
    assert hook.status_code == 402  # the sender sees why, and may send it again later
    assert hook.get_json()["type"] == "urn:overture:problem:past-due"
    standing.payment_succeeded(agency, utcnow(), "in_agency")
    db.session.commit()
    assert start_via_api(app, world, wf).status_code == 202


def test_billing_an_agents_cap_stops_that_agent_only(app, world):
    """A cap on one agent's calls: its next call is refused (402 naming the agent), the
    other agents of the workspace go on."""
    from overture.billing import enforce, usage
    from overture.billing.meters import AGENT_CALLS
    from overture.platform.errors import QuotaExceeded as Refused

    a = world.tenants["a"].id
    capped, other = (create_agent(world, {"name": name, "model": {"provider": "scripted",
                                                                   "model": "script"},
                                          "script": []}) for name in ("capped", "free"))
    set_limits(app, world, caps=[{"meter": "agent_invocations", "limit": 2,
                                  "agent_id": str(capped)}])
    with scoped_to(a):
        usage.record([usage.Entry(AGENT_CALLS, Decimal(2), "", capped)])
        db.session.commit()
    with pytest.raises(Refused) as refused:
        enforce.hold(a, AGENT_CALLS, Decimal(1), "s1:invoke", agent_id=capped, certain=True)
    assert (refused.value.extra["agent_id"], refused.value.extra["used"]) == (str(capped), "2")
    assert enforce.hold(a, AGENT_CALLS, Decimal(1), "s2:invoke", agent_id=other,
                        certain=True) is False  # no limit applies to it
    shown = ok(as_key(app, world, "a_admin").get("/budgets"))["limits"]
    assert [(x["agent_id"], x["used"], x["exhausted"]) for x in shown] == [
        (str(capped), "2", True)]


def test_billing_a_cap_on_action_calls_fails_the_step_its_error_route_catches(
        app_ctx, world, monkeypatch):
    """Two connector calls against a cap of one: the first reaches the app, the second
    is never made; its step fails with `budget_exceeded` and the error route runs."""
    from tests.billing_support import Inbox
    from tests.engine_support import Receiver, rows_of, start_unsent

    a = world.tenants["a"].id
    set_limits(app_ctx, world, caps=[{"meter": "action_calls", "limit": 1}])
    inbox = Inbox(app_ctx, monkeypatch)
    with Receiver() as receiver:
        def post(path: str) -> dict[str, Any]:
            return {"type": "action", "action": "http.request",
                    "input": {"method": "POST", "url": receiver.url(path), "json": {}}}

        wf = publish(a, {"steps": [
            {"id": "first", **post("/first"), "next": "second"},
            {"id": "second", **post("/second"), "on_error": "caught"},
            {"id": "caught", "type": "transform",
             "output": {"code": "{{ error.code }}", "meter": "{{ error.meter }}"}}]})
        run_id = start_unsent(a, wf)
        inbox.sent.append((rows_of(a, run_id)[0].id, a, None))
        inbox.drain()
        run = wait_for(a, run_id, timeout=10)
        assert run.status == "succeeded", run.error
        assert run.output == {"code": "budget_exceeded", "meter": "action_calls"}
        assert len(receiver.hits_to("/first")) == 1
        assert receiver.hits_to("/second") == []
    assert month_usage(app_ctx, world)["action_calls"] == "1"


def test_billing_a_cap_on_steps_stops_the_step_past_it_and_its_error_route_runs(
        app_ctx, world, monkeypatch):
    """A cap of 3 steps and a run of 5: steps 1 to 3 run, the 4th fails before it runs
    with `budget_exceeded` naming the cap (not metered: it did nothing), its error route
    runs (let in past the cap, and metered), the 5th never starts; the next run is
    refused with 402."""
    from tests.billing_support import Inbox
    from tests.engine_support import rows_of, start_unsent

    a = world.tenants["a"].id
    set_limits(app_ctx, world, caps=[{"meter": "steps", "limit": 3}])
    wf = publish(a, {"steps": [
        *({"id": f"s{i}", "type": "transform", "output": i, "next": f"s{i + 1}",
           **({"on_error": "caught"} if i == 4 else {})} for i in range(1, 5)),
        {"id": "s5", "type": "transform", "output": 5},
        {"id": "caught", "type": "transform",
         "output": {"code": "{{ error.code }}", "meter": "{{ error.meter }}",
                    "step": "{{ error.step }}", "used": "{{ error.used }}",
                    "limit": "{{ error.limit }}"}}]})
    inbox = Inbox(app_ctx, monkeypatch)
    run_id = start_unsent(a, wf)
    inbox.sent.append((rows_of(a, run_id)[0].id, a, None))
    inbox.drain()
    run = wait_for(a, run_id, timeout=10)
    assert run.status == "succeeded", run.error
    assert run.output == {"code": "budget_exceeded", "meter": "steps", "step": "s4",
                          "used": "3", "limit": "3"}
    steps = {r.step_id: r for r in rows_of(a, run_id)}
    assert [(s, steps[s].status) for s in ("s1", "s2", "s3", "s4", "caught")] == [
        ("s1", "succeeded"), ("s2", "succeeded"), ("s3", "succeeded"), ("s4", "failed"),
        ("caught", "succeeded")]
    assert steps["s4"].error["problem"] == "quota-exceeded" and steps["s4"].output is None
    assert "s5" not in steps
    # 3 steps under the cap, none for the refused one, 1 for the error route
    assert month_usage(app_ctx, world)["steps"] == "4"
    refused = start_via_api(app_ctx, world, wf)
    assert refused.status_code == 402
    assert (refused.get_json()["type"], refused.get_json()["meter"]) == (
        "urn:overture:problem:quota-exceeded", "steps")


def test_billing_a_cap_on_steps_holds_when_runs_race_on_two_worker_processes(
        app_ctx, world, database):
    """Ten runs of five steps at once, on 2 worker processes x 8 threads, against a cap
    of 23 steps: exactly 23 steps run, the others fail before running (the runs fail
    with `budget_exceeded`: no error route), and only the 23 are metered."""
    a = world.tenants["a"].id
    own = pg_settings(database, OVERTURE_REDIS_NAMESPACE=f"{REDIS_NAMESPACE}-stepcap")
    with private_app(own):
        wf = publish(a, {"steps": [
            {"id": f"s{i}", "type": "transform", "output": i,
             **({"next": f"s{i + 1}"} if i < 5 else {})} for i in range(1, 6)]})
        set_limits(app_ctx, world, caps=[{"meter": "steps", "limit": 23}])
        run_ids = [start(a, wf) for _ in range(10)]
        with running_workers(own, processes=2, threads=8):
            done = [wait_for(a, run_id, timeout=90) for run_id in run_ids]
    assert month_usage(app_ctx, world)["steps"] == "23"
    with scoped_to(a):
        ran = db.session.scalar(select(func.count()).select_from(StepRun).where(
            StepRun.status == "succeeded"))
        db.session.rollback()
    assert ran == 23
    assert sum(r.status == "succeeded" for r in done) * 5 <= 23
    assert {r.error["code"] for r in done if r.status == "failed"} == {"budget_exceeded"}


def test_billing_a_cap_on_steps_lowered_counts_what_started_not_what_was_taken(app, world):
    """A process takes steps from a far cap in advance (an allowance); the cap lowered
    to 5, it gives back what it had not used: 4 more steps start, not 199; stopping, it
    gives back the rest, and the counter says what started."""
    from overture.billing import step_caps
    from overture.billing.counters import BudgetCounter
    from overture.platform.errors import QuotaExceeded as Refused

    a = world.tenants["a"].id
    set_limits(app, world, caps=[{"meter": "steps", "limit": 1000000}])
    step_caps.admit(a, step_caps.capped(a, None))  # one step, from an allowance of 200

    def admitted() -> Any:
        with scoped_to(a):
            found = db.session.scalar(select(BudgetCounter.admitted).where(
                BudgetCounter.meter == "steps"))
            db.session.rollback()
        return found

    assert admitted() == 200
    set_limits(app, world, caps=[{"meter": "steps", "limit": 5}])
    started = 0
    with pytest.raises(Refused) as refused:
        for _ in range(10):
            step_caps.admit(a, step_caps.capped(a, None))
            started += 1
    assert started == 4
    assert (refused.value.extra["limit"], refused.value.extra["used"]) == ("5", "5")
    set_limits(app, world, caps=[{"meter": "steps", "limit": 1000}])
    step_caps.admit(a, step_caps.capped(a, None))  # the 6th, from an allowance of 15
    assert admitted() == 6 + 14
    step_caps.give_back()
    assert admitted() == 6


def test_billing_a_worker_that_stops_gives_back_the_steps_it_took_and_did_not_run(
        app_ctx, world, database):
    """A worker process takes 200 steps at once from a far cap; stopped (SIGTERM), it
    gives back all but the 5 it ran."""
    from overture.billing.counters import BudgetCounter

    a = world.tenants["a"].id
    own = pg_settings(database, OVERTURE_REDIS_NAMESPACE=f"{REDIS_NAMESPACE}-giveback")
    set_limits(app_ctx, world, caps=[{"meter": "steps", "limit": 100000}])

    def admitted() -> Any:
        with scoped_to(a):
            found = db.session.scalar(select(BudgetCounter.admitted).where(
                BudgetCounter.meter == "steps"))
            db.session.rollback()
        return found

    with private_app(own):
        wf = publish(a, {"steps": [
            {"id": f"s{i}", "type": "transform", "output": i,
             **({"next": f"s{i + 1}"} if i < 5 else {})} for i in range(1, 6)]})
        run_id = start(a, wf)
        with running_workers(own, processes=1, threads=2) as worker:
            assert wait_for(a, run_id, timeout=60).status == "succeeded"
            assert admitted() == 200
            worker.stop()
    assert admitted() == 5
    assert month_usage(app_ctx, world)["steps"] == "5"
