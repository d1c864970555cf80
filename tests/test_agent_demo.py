"""The seeded demo's support-triage workflow in "Acme Support" (`overture.demo_support`),
offline end to end: seeded as `make up` seeds it, started and approved through the API
by the demo's own people, run by real `overture worker` processes on PostgreSQL
(`pytest -k agent`). No model server, no key, no outside service is involved."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from overture.demo import DEMO_PASSWORD, seed_demo
from overture.demo_support import (
    DRAFTER,
    OUTBOX_CONNECTION,
    REFUND_LIMIT,
    REVIEWER,
    SAMPLE_TICKETS,
    TECH_CHANNEL,
    WORKFLOW_NAME,
)
from overture.orchestration.agents import service
from overture.orchestration.agents.models import Agent
from overture.platform.db import db, scoped_to
from overture.tenants.models import Tenant
from tests.engine_api_support import ok, settle, start_via_api, wait_approval, wait_run
from tests.engine_support import running_workers
from tests.support import Api, login

RUN_TIMEOUT = 90.0  # the first run on a fresh worker process loads the embedding model


@pytest.fixture(scope="module")
def workers(settings):
    with running_workers(settings, processes=2, threads=4) as worker:
        yield worker


def as_demo_user(app: Any, email: str) -> Api:
    client = app.test_client()
    return Api(client, csrf=login(client, email, DEMO_PASSWORD), tenant="acme-support")


@pytest.fixture
def demo(app_ctx, workers):
    """The demo, seeded into the empty test database, and its people's API clients."""
    seed_demo()
    acme = db.session.scalars(select(Tenant).where(Tenant.slug == "acme-support")).one()
    db.session.rollback()
    operator = as_demo_user(app_ctx, "operator@acme.example.com")
    admin = as_demo_user(app_ctx, "admin@acme.example.com")
    workflows = ok(operator.get("/workflows"))["items"]
    (workflow,) = [w for w in workflows if w["name"] == WORKFLOW_NAME]
    yield SimpleNamespace(app=app_ctx, tenant_id=acme.id, workflow=workflow, operator=operator,
                          admin=admin)
    settle([acme.id])


def start(demo: SimpleNamespace, ticket: str, **changes: Any) -> str:
    """A run of the demo workflow with a sample ticket, started by the operator."""
    return start_via_api(demo.operator, demo.workflow["id"],
                         {**SAMPLE_TICKETS[ticket], **changes})["id"]


def outbox(demo: SimpleNamespace) -> list[dict[str, Any]]:
    """What the demo outbox holds, as the connections API shows it."""
    (connection,) = ok(demo.operator.get(
        "/connections", query_string={"connector_key": "demo_outbox"}))["items"]
    assert connection["name"] == OUTBOX_CONNECTION
    return connection["settings"]["messages"]


def step(run: dict[str, Any], step_id: str) -> dict[str, Any]:
    (found,) = [s for s in run["steps"] if s["step_id"] == step_id]
    return found


def approvals_of(demo: SimpleNamespace, run_id: str) -> list[dict[str, Any]]:
    """The run's approvals, whatever their status."""
    found = []
    for status in ("pending", "approved", "rejected", "timed_out", "escalated"):
        page = ok(demo.admin.get("/approvals", query_string={"status": status,
                                                             "limit": 200}))
        found += [a for a in page["items"] if a["run_id"] == run_id]
    return found


def test_agent_demo_is_seeded_published_and_names_its_offline_parts(demo):
    assert demo.workflow["current_version"] == 1
    agents = {a["name"]: a for a in ok(demo.operator.get("/agents"))["items"]}
    assert {"Ticket triager", "Reply drafter", "Reply reviewer"} <= set(agents)
    connectors = {c["connector_key"]: c["name"]
                  for c in ok(demo.operator.get("/connections"))["items"]}
    assert connectors == {"demo_crm": "Demo CRM", "demo_outbox": "Demo outbox"}
    catalogue = {c["key"]: c for c in ok(demo.operator.get("/connectors"))["items"]}
    assert "delivers nothing" in catalogue["demo_outbox"]["name"]
    assert "Calls no outside service" in catalogue["demo_crm"]["description"]
    faq = ok(demo.operator.get("/knowledge"))["items"]
    assert [c["name"] for c in faq] == ["Support FAQ"]


def test_agent_demo_technical_ticket_is_answered_by_email_and_posted_to_slack(demo):
    run_id = start(demo, "technical")
    run = wait_run(demo.operator, run_id, RUN_TIMEOUT)
    assert run["status"] == "succeeded", run["error"]
    output = run["output"]
    assert output["category"] == "technical"
    assert output["customer"] == "Priya Natarajan"  # from the Demo CRM
    assert (output["reply_status"], output["delivered"]) == ("sent_to_outbox", False)
    assert output["refund_approval"] == "not needed"
    triage = step(run, "triage")["output"]
    assert triage["route"] == "technical" and triage["confidence"] > 0.5
    assert triage["agent"]["provider"] == "local"
    assert step(run, "account")["output"]["account"]["company"] == "Orbit Analytics"
    written = step(run, "write")["output"]
    assert written["approved"] is True and written["rounds"] <= 2
    reply = output["reply"]
    assert reply.startswith("Hello Priya,")
    assert "status page" in reply  # the FAQ's outage answer
    assert "Our technical team has been told" in reply
    assert (run["tokens"], Decimal(run["cost"])) == (0, 0)  # no model was paid for
    assert run["agent_calls"] >= 3  # triager, drafter, reviewer

    email, post = outbox(demo)
    assert email["kind"] == "email" and email["to"] == ["priya@orbit-analytics.example"]
    assert email["subject"] == "Re: Dashboard shows error 500"
    assert email["text"] == reply
    assert email["message_id"] == output["email_message_id"]
    assert post["kind"] == "chat" and post["channel"] == TECH_CHANNEL
    assert post["message_id"] == output["slack_message_id"]
    assert "Priya Natarajan" in post["text"] and "Dashboard shows error 500" in post["text"]
    assert approvals_of(demo, run_id) == []


def test_agent_demo_refund_above_the_limit_waits_for_an_admin_then_sends(demo):
    run_id = start(demo, "refund_above_limit")
    approval = wait_approval(demo.admin, run_id, RUN_TIMEOUT)
    run = ok(demo.operator.get(f"/runs/{run_id}"))
    assert run["status"] == "running"
    assert step(run, "approve_refund")["status"] == "waiting"
    assert step(run, "triage")["output"]["route"] == "billing"
    assert approval["assignee_role"] == "admin" and approval["editable_fields"] == ["reply"]
    data = approval["data"]
    assert (data["refund_amount"], data["refund_limit"]) == (348, REFUND_LIMIT)
    assert (data["customer"], data["plan"]) == ("Maria Garcia", "Business")
    assert "We are refunding $348" in data["reply"]
    assert "$348" in approval["prompt"] and f"${REFUND_LIMIT}" in approval["prompt"]
    assert outbox(demo) == []  # nothing leaves before the decision

    # an operator may not decide a refund assigned to admins
    denied = demo.operator.post(f"/approvals/{approval['id']}/decision",
                                json={"decision": "approve"})
    assert denied.status_code == 403
    edited = data["reply"].replace("Kind regards,", "Sorry for the trouble.\n\nKind regards,")
    ok(demo.admin.post(f"/approvals/{approval['id']}/decision",
                       json={"decision": "approve", "edits": {"reply": edited}}))

    run = wait_run(demo.operator, run_id, RUN_TIMEOUT)
    assert run["status"] == "succeeded", run["error"]
    assert run["output"]["refund_approval"] == "approved"
    assert run["output"]["reply"] == edited
    assert run["output"]["slack_message_id"] is None  # billing: no post
    (email,) = outbox(demo)
    assert email["to"] == ["maria@brightlane.example"] and email["text"] == edited


def test_agent_demo_refund_below_the_limit_needs_no_approval(demo):
    run_id = start(demo, "refund_below_limit")
    run = wait_run(demo.operator, run_id, RUN_TIMEOUT)
    assert run["status"] == "succeeded", run["error"]
    assert run["output"]["category"] == "billing"
    assert run["output"]["refund_approval"] == "not needed"
    assert "approve_refund" not in {s["step_id"] for s in run["steps"]}
    assert approvals_of(demo, run_id) == []
    (email,) = outbox(demo)
    assert email["to"] == ["tom@beckerlogistics.example"]
    assert "We are refunding $36" in email["text"]
    assert "within 30 days" in email["text"]  # the FAQ's refund policy


def test_agent_demo_rejected_refund_sends_nothing(demo):
    run_id = start(demo, "refund_above_limit", refund_amount=120)
    approval = wait_approval(demo.admin, run_id, RUN_TIMEOUT)
    assert approval["data"]["refund_amount"] == 120
    ok(demo.admin.post(f"/approvals/{approval['id']}/decision",
                       json={"decision": "reject", "note": "not a duplicate"}))
    run = wait_run(demo.operator, run_id, RUN_TIMEOUT)
    assert run["status"] == "succeeded", run["error"]
    assert run["output"]["reply_status"] == "not_sent"
    assert "rejected the refund" in run["output"]["reason"]
    assert outbox(demo) == []


def test_agent_demo_runs_the_agent_versions_it_was_published_with(demo):
    with scoped_to(demo.tenant_id):
        drafter = db.session.scalars(select(Agent).where(Agent.name == DRAFTER)).one()
        service.update_agent(drafter, config={**service.load_current(DRAFTER).spec.to_json(),
                                              "instructions": "EDITED AFTER PUBLISHING"})
        db.session.commit()
    run = wait_run(demo.operator, start(demo, "sales"), RUN_TIMEOUT)
    assert run["status"] == "succeeded", run["error"]
    assert run["output"]["category"] == "sales"
    assert run["output"]["reply"].startswith("Hello Lucas,")
    assert "EDITED" not in run["output"]["reply"]


def test_agent_demo_reply_the_reviewer_never_approves_goes_to_an_operator(demo):
    """Were the reviewer never satisfied, an operator edits the reply before it goes."""
    with scoped_to(demo.tenant_id):
        reviewer = db.session.scalars(select(Agent).where(Agent.name == REVIEWER)).one()
        service.update_agent(reviewer, config={
            "name": REVIEWER, "model": {"provider": "scripted", "model": "strict"},
            "script": [{"when": "review the draft", "answer": {
                "status": "ok", "confidence": 0.9,
                "output": {"approved": False, "feedback": "too generic"}}}]})
        db.session.commit()
    builder = as_demo_user(demo.app, "builder@acme.example.com")
    ok(builder.post(f"/workflows/{demo.workflow['id']}/publish"), 201)
    run_id = start(demo, "sales")
    approval = wait_approval(demo.operator, run_id, RUN_TIMEOUT)
    assert approval["assignee_role"] == "operator"
    assert approval["data"]["reviewer_feedback"] == "too generic"
    assert approval["data"]["reply"].startswith("Hello Lucas,")
    assert outbox(demo) == []
    ok(demo.operator.post(f"/approvals/{approval['id']}/decision", json={
        "decision": "approve", "edits": {"reply": "Hello Lucas, a quote is on its way."}}))
    run = wait_run(demo.operator, run_id, RUN_TIMEOUT)
    assert run["status"] == "succeeded", run["error"]
    assert step(run, "write")["output"]["rounds"] == 2
    (email,) = outbox(demo)
    assert email["text"] == "Hello Lucas, a quote is on its way."
