"""The operator's and the agency's numbers through API v1, over runs made by real workers
(`-k ops`): failures grouped and retried in bulk, agent and workflow performance, and an
agency's overview of its client workspaces (and nobody else's)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from overture.billing.usage import UsageEvent
from overture.orchestration.agents.runtime import INVOCATIONS
from overture.orchestration.models import StepRun
from overture.orchestration.performance import percentile
from overture.platform.db import db, scoped_to, utcnow
from tests.agent_fakes import answer, create_agent, scripted
from tests.engine_api_support import (
    ok,
    publish_via_api,
    settle,
    start_via_api,
    wait_approval,
    wait_run,
)
from tests.engine_support import Receiver, running_workers
from tests.support import as_key, as_user


@pytest.fixture(scope="module")
def workers(settings):
    with running_workers(settings, processes=1, threads=4) as worker:
        yield worker


@pytest.fixture(autouse=True)
def _settled(world):
    yield
    settle([world.tenants[t].id for t in ("a", "b", "c")])


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    return response.get_json()


def period() -> dict[str, str]:
    now = utcnow()
    return {"since": (now - timedelta(hours=1)).isoformat(),
            "until": (now + timedelta(hours=1)).isoformat()}


# --------------------------------------------------------------------------- failures


def test_ops_failures_grouped_by_step_and_reason_then_retried_in_bulk(app, world, workers):
    operator = as_user(app, world, "a_operator", "a")
    builder = as_user(app, world, "a_builder", "a")
    with Receiver() as receiver:
        orders = publish_via_api(builder, {"steps": [
            {"id": "prepare", "type": "transform", "output": {"n": "{{ input.n }}"},
             "next": "charge"},
            {"id": "charge", "type": "action", "action": "http.request",
             "input": {"method": "POST", "url": receiver.url("/charge"), "json": {}}}]},
            name="orders")
        broken = publish_via_api(builder, {"steps": [
            {"id": "boom", "type": "transform", "output": "{{ input.nope.x }}"}]}, name="broken")
        receiver.down("/charge", 400)  # a client error: never retried by the step itself
        failed = [wait_run(builder, start_via_api(builder, orders["id"], {"n": n})["id"])
                  for n in (1, 2)]
        other = wait_run(builder, start_via_api(builder, broken["id"])["id"])
        assert [r["status"] for r in [*failed, other]] == ["failed"] * 3

        report = ok(operator.get("/failures"))
        groups = {(g["workflow_name"], g["step_id"]): g for g in report["groups"]}
        assert set(groups) == {("orders", "charge"), ("broken", "boom")}
        charge = groups[("orders", "charge")]
        assert (charge["reason"], charge["count"], charge["retried"]) == ("http_4xx", 2, 0)
        assert sorted(charge["sample_run_ids"]) == sorted(r["id"] for r in failed)
        assert charge["first_seen"] <= charge["last_seen"]
        assert groups[("broken", "boom")]["count"] == 1
        assert report["dead_letters"] == []  # the platform processed every step
        only = ok(operator.get("/failures", query_string={"workflow_id": orders["id"]}))
        assert [g["step_id"] for g in only["groups"]] == ["charge"]

        # Retrying is for operators; a viewer reads but cannot.
        viewer = as_user(app, world, "a_viewer", "a")
        assert ok(viewer.get("/failures"))["groups"]
        ids = [r["id"] for r in failed]
        problem(viewer.post("/failures/retry", json={"run_ids": ids}), 403)

        receiver.up("/charge")
        succeeded = wait_run(builder, start_via_api(builder, orders["id"], {"n": 3})["id"])
        results = ok(operator.post("/failures/retry", json={
            "run_ids": [*ids, succeeded["id"], "not-a-run"]}))["results"]
        assert [(r["outcome"], r["from_step"]) for r in results] == [
            ("retried", "charge"), ("retried", "charge"), ("not_failed", None),
            ("not_found", None)]
        for result in results[:2]:
            again = wait_run(builder, result["new_run_id"])
            assert again["status"] == "succeeded", again["error"]
            # It ran again from the failed step, reusing what succeeded before it.
            assert {s["step_id"]: s["status"] for s in again["steps"]} == {
                "prepare": "skipped", "charge": "succeeded"}
        assert len(receiver.hits_to("/charge")) == 2 + 1 + 2

    # A second click retries nothing twice, and the group says what was retried.
    twice = ok(operator.post("/failures/retry", json={"run_ids": ids[:1]}))["results"]
    assert (twice[0]["outcome"], twice[0]["new_run_id"]) == ("already_retried",
                                                             results[0]["new_run_id"])
    charge = next(g for g in ok(operator.get("/failures"))["groups"] if g["step_id"] == "charge")
    assert (charge["count"], charge["retried"]) == (2, 2)

    numbers = ok(operator.get(f"/workflows/{orders['id']}/performance",
                              query_string=period()))
    assert (numbers["runs"], numbers["succeeded"], numbers["failed"]) == (5, 3, 2)
    assert numbers["error_rate"] == 0.4
    assert numbers["top_reasons"] == [{"reason": "http_4xx", "step_id": "charge", "count": 2}]

    # Bad input is a problem, never a 500; another tenant's workflow is not found.
    assert problem(operator.get("/failures", query_string={"since": "yesterday"}), 422)
    problem(operator.post("/failures/retry", json={"run_ids": []}), 422)
    problem(operator.get(f"/workflows/{orders['id']}/performance", query_string={
        "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}), 422)
    stranger = as_user(app, world, "b_admin", "b")
    problem(stranger.get(f"/workflows/{orders['id']}/performance"), 404)
    problem(stranger.get("/failures", query_string={"workflow_id": orders["id"]}), 404)
    assert ok(stranger.get("/failures"))["groups"] == []


# --------------------------------------------------------------------------- agents, overview


TRIAGE = {"steps": [
    {"id": "triage", "type": "agent", "agent": "triage", "min_confidence": 0.7,
     "low_confidence": "review", "routes": [{"status": "needs_human", "next": "approve"}],
     "next": "done"},
    {"id": "review", "type": "transform", "output": "reviewed"},
    {"id": "approve", "type": "approval", "prompt": "A person decides", "next": None},
    {"id": "done", "type": "transform", "output": "done"}]}
TOKENS = {"input_tokens": 100, "output_tokens": 20}


def test_ops_agent_performance_and_the_agency_overview_of_its_workspaces(app, world,
                                                                           workers):
    agent_id = create_agent(world, scripted(
        "triage",
        {"when": "zz-high", "answer": answer("refund", confidence=0.9), **TOKENS},
        {"when": "zz-low", "answer": answer("refund", confidence=0.4), **TOKENS},
        {"when": "zz-human", "answer": answer("?", status="needs_human", confidence=0.8),
         **TOKENS},
        {"when": "zz-broken", "answer": answer("no", status="failed", confidence=0.1),
         **TOKENS}))
    builder = as_user(app, world, "a_builder", "a")
    workflow = publish_via_api(builder, TRIAGE, name="triage")
    runs = {}
    for case in ("high", "low", "human", "broken"):
        runs[case] = start_via_api(builder, workflow["id"], {"ticket": f"zz-{case}"})
    wait_approval(builder, runs["human"]["id"])  # the human case waits for a person
    for case, status in (("high", "succeeded"), ("low", "succeeded"), ("broken", "failed")):
        runs[case] = wait_run(builder, runs[case]["id"])
        assert runs[case]["status"] == status, runs[case]["error"]
    assert [s["step_id"] for s in runs["low"]["steps"]] == ["triage", "review"]

    # Known latencies (1 to 4 s) in place of the few milliseconds the steps took.
    a = world.tenants["a"].id
    with scoped_to(a):
        for seconds, case in enumerate(("high", "low", "human", "broken"), start=1):
            row = db.session.scalars(select(StepRun).where(
                StepRun.run_id == runs[case]["id"], StepRun.step_id == "triage")).one()
            row.started_at = row.finished_at - timedelta(seconds=seconds)
        db.session.commit()

    numbers = ok(builder.get(f"/agents/{agent_id}/performance", query_string=period()))
    assert {k: numbers[k] for k in ("calls", "succeeded", "failed", "success_rate",
                                    "failure_rate", "asked_human", "below_threshold")} == {
        "calls": 4, "succeeded": 3, "failed": 1, "success_rate": 0.75, "failure_rate": 0.25,
        "asked_human": 1, "below_threshold": 1}
    assert numbers["mean_confidence"] == 0.7  # of the answers that succeeded: .9, .4, .8
    # percentile_cont over 1, 2, 3, 4 s; the Python twin (SQLite) agrees.
    assert (numbers["latency_p50"], numbers["latency_p95"]) == (2.5, 3.85)
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.95) == 3.85
    assert (numbers["tokens"], numbers["cost"]) == (4 * 120, "0.000000")  # scripted: free
    before = {"since": "2020-01-01T00:00:00", "until": "2020-02-01T00:00:00"}  # no zone: UTC
    assert ok(builder.get(f"/agents/{agent_id}/performance", query_string=before))["calls"] == 0
    problem(builder.get("/agents/00000000-0000-0000-0000-000000000000/performance"), 404)
    problem(as_user(app, world, "b_admin", "b").get(f"/agents/{agent_id}/performance"), 404)

    # Workspace B ran once; Contoso's workspace C failed once.
    other = as_key(app, world, "b_admin")
    done = publish_via_api(other, {"steps": [{"id": "x", "type": "transform", "output": 1}]})
    wait_run(other, start_via_api(other, done["id"])["id"])
    contoso = as_key(app, world, "c_owner")
    bad = publish_via_api(contoso, {"steps": [
        {"id": "boom", "type": "transform", "output": "{{ input.nope.x }}"}]})
    wait_run(contoso, start_via_api(contoso, bad["id"])["id"])

    agency = ok(as_user(app, world, "nw_owner", "northwind").get("/overview"))
    seen = {item["tenant"]["slug"]: item for item in agency["items"]}
    assert set(seen) == {"ws-a", "ws-b"}  # its own workspaces, not Contoso's
    ws_a = {k: v for k, v in seen["ws-a"].items() if k not in ("tenant", "last_failure_at")}
    assert ws_a == {"runs_succeeded_7d": 2, "runs_failed_7d": 1, "runs_waiting": 1,
                    "open_approvals": 1, "cost_month": "0.000000", "tokens_month": 480,
                    "last_failure_reason": "agent_failed in triage"}
    assert seen["ws-a"]["last_failure_at"] is not None
    assert (seen["ws-b"]["runs_succeeded_7d"], seen["ws-b"]["runs_failed_7d"],
            seen["ws-b"]["last_failure_reason"]) == (1, 0, None)
    theirs = ok(as_user(app, world, "ct_owner", "contoso").get("/overview"))["items"]
    assert [(i["tenant"]["slug"], i["runs_failed_7d"]) for i in theirs] == [("ws-c", 1)]

    # A workspace's member cannot read another agency's overview, nor its own as one.
    problem(as_user(app, world, "c_owner", "northwind").get("/overview"), 404)
    problem(as_user(app, world, "a_owner", "a").get("/overview"), 422)
    problem(as_user(app, world, "nw_viewer", "northwind").get("/overview"), 403)


# --------------------------------------------------------------------------- SQLite


def test_ops_numbers_on_sqlite_the_embedded_mode(tmp_path):
    """The same services over SQLite (`overture up`): no RLS, no pipeline and no
    percentile_cont there, so the overview reads workspace by workspace and the
    percentiles come from Python."""
    from flask import Flask

    from overture.orchestration import failures, overview, performance
    from overture.orchestration.models import Run, Workflow, WorkflowVersion
    from overture.platform import migrate
    from overture.platform.config import load_settings
    from overture.tenants.lifecycle import create_tenant
    from overture.tenants.models import TenantKind

    settings = load_settings({"OVERTURE_INSTANCE_PATH": str(tmp_path), "OVERTURE_ENV": "test"})
    migrate.upgrade(settings)
    app = Flask("sqlite-ops")
    app.config["SQLALCHEMY_DATABASE_URI"] = settings.database_url
    db.init_app(app)
    with app.app_context():
        agency = create_tenant("Agency", TenantKind.AGENCY, None, slug="agency")
        mine, other = (create_tenant(n, TenantKind.WORKSPACE, None, parent=agency, slug=n)
                       for n in ("mine", "other"))
        db.session.commit()
        now, agent_id, workflow_ids = utcnow(), uuid.uuid4(), {}
        for tenant, failed in ((mine, 4), (other, 1)):
            with scoped_to(tenant.id):
                workflow = Workflow(name="w", webhook_token="t")
                db.session.add(workflow)
                db.session.flush()
                version = WorkflowVersion(workflow_id=workflow.id, number=1, definition={
                    "steps": [{"id": "ask", "type": "agent", "agent": "a"}]})
                db.session.add(version)
                db.session.flush()
                for n in range(failed):
                    run = Run(workflow_id=workflow.id, version_id=version.id, status="failed",
                              trigger="api", started_at=now, finished_at=now,
                              error={"code": "agent_failed", "step": "ask", "message": f"#{n}"})
                    db.session.add(run)
                    db.session.flush()
                    db.session.add(StepRun(run_id=run.id, step_id="ask", step_type="agent",
                                           status="failed", started_at=now - timedelta(
                                               seconds=n + 1), finished_at=now))
                    db.session.add(UsageEvent(metric=INVOCATIONS, quantity=Decimal(1),
                                              run_id=run.id, step_id="ask", agent_id=agent_id))
                db.session.commit()
                workflow_ids[tenant.id] = workflow.id

        numbers = overview.workspace_overview([mine.id, other.id], now + timedelta(seconds=1))
        assert (numbers[mine.id].runs_failed_7d, numbers[other.id].runs_failed_7d) == (4, 1)
        assert numbers[mine.id].last_failure_reason == "agent_failed in ask"
        with scoped_to(mine.id):
            period = (now - timedelta(hours=1), now + timedelta(hours=1))
            agent = performance.agent_performance(agent_id, *period)
            assert (agent.calls, agent.failed) == (4, 4)
            assert (agent.latency_p50, agent.latency_p95) == (2.5, 3.85)
            (group,) = failures.failure_groups(period[0])
            assert (group.reason, group.count, group.retried) == ("agent_failed", 4, 0)
            retried = failures.retry_runs([str(i) for i in group.sample_run_ids], None)
            db.session.commit()
            assert [r.outcome for r in retried] == ["retried"] * 4
            assert failures.failure_groups(period[0])[0].retried == 4
            flow = performance.workflow_performance(workflow_ids[mine.id], *period)
            assert (flow.runs, flow.failed, flow.in_flight) == (8, 4, 4)  # the retries run
        db.session.remove()
