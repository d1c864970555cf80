"""The ready-made use-case templates, end to end offline: the agency adds each to its
templates through the API, provisions a client workspace from it as it would for a
client, points the workspace's CRM / accounting / issue-tracker connections at local
servers, starts the workflow with a sample input, answers its approvals and gets the
outcome a user expects. Real `overture worker` processes run every step; every agent is
the `local` provider (no model, no key, no network)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from overture.demo_support import OUTBOX_CONNECTION, SAMPLE_TICKETS, seed_support
from overture.demo_template import TEMPLATE_NAME
from overture.orchestration.templates.catalogue import (
    content,
    feedback,
    helpdesk,
    invoices,
    sales,
    use_cases,
)
from overture.platform.db import db
from tests.engine_api_support import ok, settle, start_via_api, wait_approval, wait_run
from tests.engine_support import running_workers
from tests.support import Api, as_key

RUN_TIMEOUT = 90.0  # the first run on a fresh worker process loads the embedding model


@pytest.fixture(autouse=True)
def _loopback(monkeypatch):
    """The local servers listen on loopback, which the outbound guard refuses."""
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


@pytest.fixture(scope="module")
def workers(settings):
    with running_workers(settings, processes=2, threads=4) as worker:
        yield worker


def provisioned(app: Any, world: Any, key: str, client: str) -> SimpleNamespace:
    """A client workspace provisioned from use case `key`, and its API."""
    agency = as_key(app, world, "nw_admin", tenant="northwind")
    template = ok(agency.post("/templates/use-cases", json={"use_case": key}), 201)
    made = ok(agency.post(f"/templates/{template['id']}/provision", json={"name": client}), 201)
    ws = made["workspace"]["id"]
    api = Api(agency.client, token=agency.token, tenant=ws)
    (flow,) = ok(api.get("/workflows"))["items"]
    connections = {c["name"]: c for c in ok(api.get("/connections"))["items"]}
    return SimpleNamespace(api=api, ws=ws, workflow=flow, connections=connections,
                           template=template, placeholders=made)


def point_at(ws: SimpleNamespace, connection: str, server: HTTPServer) -> None:
    """The workspace fills in its connection: the base URL of its (local) service."""
    ok(ws.api.patch(f"/connections/{ws.connections[connection]['id']}",
                    json={"base_url": server.url_for("/api")}))


def run(ws: SimpleNamespace, sample: dict[str, Any]) -> dict[str, Any]:
    started = start_via_api(ws.api, ws.workflow["id"], sample)
    return wait_run(ws.api, started["id"], RUN_TIMEOUT)


def outbox(ws: SimpleNamespace, name: str) -> list[dict[str, Any]]:
    found = ok(ws.api.get(f"/connections/{ws.connections[name]['id']}"))
    return found["settings"]["messages"]


def test_every_use_case_is_offered_with_its_patterns(app, world):
    agency = as_key(app, world, "nw_admin", tenant="northwind")
    listed = ok(agency.get("/templates/use-cases"))["items"]
    assert [u["key"] for u in listed] == list(use_cases())
    assert all(u["patterns"] and u["samples"] for u in listed)
    refused = agency.post("/templates/use-cases", json={"use_case": "nope"})
    assert refused.status_code == 422


def test_support_triage_template_provisions_a_desk_that_answers_tickets(app_ctx, world,
                                                                        workers):
    """The sixth template, the demo's: Acme's support triage snapshotted as an agency's
    template, a client workspace provisioned from it, a ticket answered there."""
    seed_support(world.tenants["a"], world.users["a_admin"])
    db.session.commit()
    agency = as_key(app_ctx, world, "nw_admin", tenant="northwind")
    template = ok(agency.post("/templates", json={"workspace_id": world.tid("a"),
                                                  "name": TEMPLATE_NAME}), 201)
    made = ok(agency.post(f"/templates/{template['id']}/provision",
                          json={"name": "Initech Support"}), 201)
    ws = SimpleNamespace(api=Api(agency.client, token=agency.token,
                                 tenant=made["workspace"]["id"]))
    (flow,) = ok(ws.api.get("/workflows"))["items"]
    ws.workflow = flow
    ws.connections = {c["name"]: c for c in ok(ws.api.get("/connections"))["items"]}
    done = run(ws, SAMPLE_TICKETS["technical"])
    assert done["status"] == "succeeded", done["error"]
    assert (done["output"]["category"], done["output"]["customer"]) == (
        "technical", "Priya Natarajan")
    assert done["output"]["reply"].startswith("Hello Priya,")
    email, post = outbox(ws, OUTBOX_CONNECTION)
    assert email["to"] == ["priya@orbit-analytics.example"] and post["kind"] == "chat"
    settle([UUID(made["workspace"]["id"])])


def test_sales_leads_are_scored_routed_and_followed_up(app, world, workers, httpserver):
    ws = provisioned(app, world, "sales-leads", "Helix Sales")
    assert ws.workflow["current_version"] == 1
    httpserver.expect_request("/api/companies", query_string="email=jana%40helix-bank.example") \
        .respond_with_json({"industry": "Finance", "employees": 3200, "country": "DE"})
    httpserver.expect_request("/api/companies").respond_with_json({"error": "not found"},
                                                                  status=404)
    httpserver.expect_request("/api/tasks", method="POST").respond_with_json({"id": "T-77"},
                                                                            status=201)
    point_at(ws, sales.CRM, httpserver)

    hot = run(ws, sales.USE_CASE.samples["enterprise"])
    assert hot["status"] == "succeeded", hot["error"]
    out = hot["output"]
    assert out["score"] == 100 and out["segment"] == "enterprise"
    assert (out["rep"], out["industry"], out["crm_task"]) == ("Elena Fischer", "Finance", "T-77")
    assert out["email"].startswith("Hi Jana,") and "Elena Fischer" in out["email"]
    assert "discovery call" in out["email"]  # the playbook's enterprise advice

    cold = run(ws, sales.USE_CASE.samples["nurture"])
    assert cold["status"] == "succeeded", cold["error"]
    assert (cold["output"]["segment"], cold["output"]["rep"]) == ("nurture", "Growth team")
    assert cold["output"]["industry"] == "unknown"  # the CRM did not know the company

    tasks = [r.get_json() for r, _ in httpserver.log if r.path == "/api/tasks"]
    assert [t["owner"] for t in tasks] == ["elena@sales.example.com", "growth@sales.example.com"]
    assert tasks[0]["score"] == 100 and tasks[0]["draft"] == out["email"]
    sent = outbox(ws, sales.OUTBOX)
    assert [m["to"] for m in sent] == [["jana@helix-bank.example"], ["sam@tinycafe.example"]]
    settle([UUID(ws.ws)])


def posted(server: HTTPServer, path: str) -> list[dict[str, Any]]:
    return [r.get_json() for r, _ in server.log if r.path == path]


def test_it_helpdesk_fixes_after_approval_and_escalates_the_rest(app, world, workers,
                                                                 httpserver):
    ws = provisioned(app, world, "it-helpdesk", "Corp IT")
    httpserver.expect_request("/api/fixes", method="POST").respond_with_json({"job": "J-9"})
    httpserver.expect_request("/api/escalations", method="POST").respond_with_json(
        {"id": "ESC-5"}, status=201)
    point_at(ws, helpdesk.AUTOMATION, httpserver)
    point_at(ws, helpdesk.SERVICE_DESK, httpserver)

    started = start_via_api(ws.api, ws.workflow["id"], helpdesk.USE_CASE.samples["locked_out"])
    approval = wait_approval(ws.api, started["id"], RUN_TIMEOUT)
    assert approval["data"]["fix"] == "unlock-account"
    assert approval["data"]["runbook"].startswith("access:")
    assert posted(httpserver, "/api/fixes") == []  # nothing runs before the decision
    ok(ws.api.post(f"/approvals/{approval['id']}/decision", json={"decision": "approve"}))
    fixed = wait_run(ws.api, started["id"], RUN_TIMEOUT)
    assert fixed["status"] == "succeeded", fixed["error"]
    assert fixed["output"]["resolution"] == "automated_fix"
    assert (fixed["output"]["category"], fixed["output"]["fix_job"]) == ("access", "J-9")
    assert posted(httpserver, "/api/fixes") == [
        {"fix": "unlock-account", "user": "omar@corp.example", "ticket": "IT-2041"}]
    (email,) = outbox(ws, helpdesk.OUTBOX)
    assert email["to"] == ["omar@corp.example"] and "password reset link" in email["text"]

    broken = run(ws, helpdesk.USE_CASE.samples["broken_laptop"])
    assert broken["status"] == "succeeded", broken["error"]
    assert broken["output"]["resolution"] == "escalated"
    assert (broken["output"]["category"], broken["output"]["escalation"]) == \
        ("hardware", "ESC-5")
    assert broken["output"]["fix_refused"] is False  # no fix was offered: not automatable
    (escalation,) = posted(httpserver, "/api/escalations")
    assert escalation["group"] == "hardware" and escalation["ticket"] == "IT-2042"
    settle([UUID(ws.ws)])


def test_invoices_are_matched_approved_above_the_threshold_and_posted(app, world, workers,
                                                                      httpserver):
    ws = provisioned(app, world, "invoice-processing", "Contoso Finance")
    for po, amount in (("PO-3100", "12400.00"), ("PO-3105", "480.00")):
        httpserver.expect_request(f"/api/purchase-orders/{po}").respond_with_json(
            {"supplier": "Northwind Traders", "amount": amount})
    httpserver.expect_request("/api/purchase-orders/PO-9999").respond_with_json(
        {"error": "no such purchase order"}, status=404)
    httpserver.expect_request("/api/bills", method="POST").respond_with_json(
        {"id": "BILL-1"}, status=201)
    point_at(ws, invoices.ACCOUNTING, httpserver)

    big = start_via_api(ws.api, ws.workflow["id"],
                        invoices.USE_CASE.samples["above_threshold"])
    approval = wait_approval(ws.api, big["id"], RUN_TIMEOUT)
    assert (approval["data"]["invoice"], approval["data"]["total"]) == ("NT-7781", "12400.00")
    assert posted(httpserver, "/api/bills") == []  # waits for the finance admin
    ok(ws.api.post(f"/approvals/{approval['id']}/decision",
                   json={"decision": "approve", "edits": {"due_date": "2027-01-31"}}))
    done = wait_run(ws.api, big["id"], RUN_TIMEOUT)
    assert done["status"] == "succeeded", done["error"]
    assert done["output"] == {"status": "posted", "bill": "BILL-1", "invoice": "NT-7781",
                              "total": "12400.00", "approval": "approved"}
    (bill,) = posted(httpserver, "/api/bills")
    assert (bill["po_number"], bill["due_date"]) == ("PO-3100", "2027-01-31")

    small = run(ws, invoices.USE_CASE.samples["below_threshold"])
    assert small["status"] == "succeeded", small["error"]
    assert small["output"]["approval"] == "not needed"
    assert [b["invoice_number"] for b in posted(httpserver, "/api/bills")] == \
        ["NT-7781", "NT-7790"]

    held = run(ws, invoices.USE_CASE.samples["no_match"])
    assert held["status"] == "succeeded", held["error"]
    assert held["output"]["status"] == "on_hold"
    assert held["output"]["reason"] == "no such purchase order"
    (email,) = outbox(ws, invoices.OUTBOX)
    assert email["to"] == [invoices.AP_TEAM] and "NT-7795" in email["subject"]
    assert len(posted(httpserver, "/api/bills")) == 2  # nothing posted for it
    settle([UUID(ws.ws)])


def test_content_is_researched_reviewed_approved_and_published(app, world, workers,
                                                              httpserver):
    ws = provisioned(app, world, "content-production", "Fabrikam Content")
    httpserver.expect_request("/api/posts", method="POST").respond_with_json(
        {"id": 42, "url": "https://blog.example.com/workflow-automation"}, status=201)
    point_at(ws, content.CMS, httpserver)

    started = start_via_api(ws.api, ws.workflow["id"], content.USE_CASE.samples["article"])
    approval = wait_approval(ws.api, started["id"], RUN_TIMEOUT)
    body = approval["data"]["body"]
    assert body.startswith("# Workflow automation for operations teams")
    assert "operations managers" in body  # the brief
    assert "focus keyword" in body  # the SEO researcher's findings, through the lead
    assert approval["editable_fields"] == ["title", "body"]
    assert posted(httpserver, "/api/posts") == []  # nothing published before the editor
    ok(ws.api.post(f"/approvals/{approval['id']}/decision", json={
        "decision": "approve", "edits": {"title": "Cut approval delays with automation"}}))
    done = wait_run(ws.api, started["id"], RUN_TIMEOUT)
    assert done["status"] == "succeeded", done["error"]
    out = done["output"]
    assert out["url"] == "https://blog.example.com/workflow-automation"
    assert out["title"] == "Cut approval delays with automation"
    assert 1 <= out["rounds"] <= 2  # the SEO review loop is bounded
    assert sorted(out["researchers"]) == [content.AUDIENCE, content.SEO_RESEARCHER]
    (post,) = posted(httpserver, "/api/posts")
    assert (post["title"], post["body"], post["status"]) == (
        "Cut approval delays with automation", body, "published")
    settle([UUID(ws.ws)])


def test_feedback_is_collected_clustered_and_turned_into_issues(app, world, workers,
                                                               httpserver):
    ws = provisioned(app, world, "feedback-triage", "Tailspin Product")
    feeds = {
        "/api/app-reviews": ["The export to CSV fails every time", "Love it, but slow on "
                             "big dashboards", "Please add a mobile widget"],
        "/api/support-tickets": ["PDF export times out after a minute",
                                 "Dashboards are slow since the update"],
        "/api/survey-responses": ["Export of large reports never finishes",
                                  "Pricing is fair"],
    }
    for path, texts in feeds.items():
        httpserver.expect_request(path).respond_with_json(
            {"items": [{"text": t} for t in texts]})
    numbers = iter(range(101, 110))
    httpserver.expect_request("/api/issues", method="POST").respond_with_handler(
        lambda request: Response(json.dumps({"number": next(numbers)}), status=201,
                                 content_type="application/json"))
    point_at(ws, feedback.SOURCES, httpserver)
    point_at(ws, feedback.TRACKER, httpserver)

    done = run(ws, feedback.USE_CASE.samples["this_week"])
    assert done["status"] == "succeeded", done["error"]
    out = done["output"]
    assert out["feedback"] == 7
    assert out["themes"] == [{"title": "Exports fail or time out", "count": 3},
                             {"title": "Dashboards load slowly", "count": 2},
                             {"title": "Mobile app requests", "count": 1}]
    assert sorted(out["issues"]) == [101, 102]  # the single mention gets no issue
    assert out["act_on"] == ["Exports fail or time out", "Dashboards load slowly"]
    issues = posted(httpserver, "/api/issues")
    assert sorted(i["title"] for i in issues) == ["Dashboards load slowly",
                                                  "Exports fail or time out"]
    exports = next(i for i in issues if i["labels"][0] == "exports")
    assert exports["labels"] == ["exports", "customer-feedback"]
    assert "support: PDF export times out after a minute" in exports["quotes"]
    (post,) = outbox(ws, feedback.OUTBOX)
    assert post["channel"] == feedback.CHANNEL and "Issues opened: 2." in post["text"]
    settle([UUID(ws.ws)])
