"""Usage through the API (`-k billing`): a tenant's usage over a period per meter, agent,
workflow, dimension and day; bad periods refused with a 422 problem; the raw events
exported as JSON Lines and CSV; an agency's clients and their sum; who may read it."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from overture.billing import export, usage
from overture.billing.meters import CATALOGUE
from overture.platform.db import db, scoped_to
from tests.support import as_key, as_user

TRIAGER, WRITER = uuid.UUID(int=101), uuid.UUID(int=102)
REFUNDS = uuid.UUID(int=201)
GPT = "openai:gpt-4o-mini"


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def put(tenant_id: Any, meter: str, quantity: str, when: datetime, dimension: str = "",
        agent: uuid.UUID | None = None, workflow: uuid.UUID | None = None) -> None:
    with scoped_to(tenant_id):
        usage.record([usage.Entry(meter, Decimal(quantity), dimension, agent)],
                     attribution=usage.Attribution(workflow_id=workflow), at=when)
        db.session.commit()


@pytest.fixture
def seeded(world):
    a, b = world.tenants["a"].id, world.tenants["b"].id
    put(a, "llm_cost", "1.25", at(3, 5, 10), GPT, TRIAGER, REFUNDS)
    put(a, "llm_cost", "0.50", at(3, 23, 59), GPT, WRITER, REFUNDS)
    put(a, "llm_cost", "2.00", at(4, 1), "anthropic:claude-haiku-4-5", TRIAGER)
    put(a, "steps", "3", at(4, 2), workflow=REFUNDS)
    put(a, "knowledge_bytes", "5000", at(2, 9))
    put(a, "knowledge_bytes", "-1200", at(20, 9))
    put(a, "action_calls", "1", at(30, 23, 59), "=cmd", workflow=REFUNDS)
    put(a, "steps", "100", at(1, 0, month=12), workflow=REFUNDS)  # the next month
    put(b, "steps", "7", at(10, 12))
    put(b, "llm_cost", "0.10", at(10, 12), GPT)
    return world


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def problem(response: Any, field: str, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    body = response.get_json()
    assert field in {e["field"] for e in body.get("errors", [])}, body
    return body


def test_billing_usage_of_a_month_per_meter_agent_workflow_and_day(app, seeded):
    api = as_key(app, seeded, "a_admin")
    month = ok(api.get("/usage?month=2026-11"))
    assert (month["since"], month["until"]) == ("2026-11-01T00:00:00+00:00",
                                                "2026-12-01T00:00:00+00:00")
    assert month["totals"] == {"action_calls": "1", "knowledge_bytes": "3800",
                               "llm_cost": "3.75", "steps": "3"}
    assert month["levels"] == {"knowledge_bytes": "3800"}
    by = ok(api.get("/usage?month=2026-11&group_by=day,agent"))
    assert by["group_by"] == ["agent", "day"]
    cost = {(i["agent_id"], i["day"]): i["quantity"] for i in by["items"]
            if i["meter"] == "llm_cost"}
    assert cost == {(str(TRIAGER), "2026-11-03"): "1.25", (str(WRITER), "2026-11-03"): "0.5",
                    (str(TRIAGER), "2026-11-04"): "2"}
    by = ok(api.get("/usage?month=2026-11&group_by=workflow,dimension"))
    lines = {(i["meter"], i["workflow_id"], i["dimension"]): (i["quantity"], i["events"])
             for i in by["items"]}
    assert lines[("llm_cost", str(REFUNDS), GPT)] == ("1.75", 2)
    assert lines[("llm_cost", None, "anthropic:claude-haiku-4-5")] == ("2", 1)
    assert lines[("action_calls", str(REFUNDS), "=cmd")] == ("1", 1)


def test_billing_usage_of_any_period_of_whole_hours(app, seeded):
    api = as_key(app, seeded, "a_admin")
    # from 05:00 on the 3rd (the 05:10 call in) to 01:00 on the 4th (the 01:00 one out)
    got = ok(api.get("/usage?since=2026-11-03T05:00:00Z&until=2026-11-04T01:00:00Z"))
    assert got["totals"] == {"llm_cost": "1.75"}
    got = ok(api.get("/usage?since=2026-11-03T06:00&until=2026-11-04T02:00"))  # UTC
    assert got["totals"] == {"llm_cost": "2.5"}
    got = ok(api.get("/usage?since=2026-11-04&until=2026-11-04"))  # one whole day
    assert got["totals"] == {"llm_cost": "2", "steps": "3"}
    assert got["levels"] == {"knowledge_bytes": "5000"}  # stored at the end of the 4th
    got = ok(api.get("/usage?since=2026-11-30&until=2026-12-01"))  # across a month's end
    assert got["totals"] == {"action_calls": "1", "steps": "100"}
    assert ok(api.get("/usage?month=2026-10"))["totals"] == {}


@pytest.mark.parametrize(("query", "field"), [
    ("since=2026-11-03T05:30:00Z", "since"),
    ("since=2026-11-04&until=2026-11-03", "until"),
    ("since=2026-11-03T05:00&until=2026-11-03T05:00", "until"),
    ("month=2026-13", "month"),
    ("month=November", "month"),
    ("month=2026-11&since=2026-11-01", "month"),
    ("since=yesterday", "since"),
    ("since=0001-01-01", "since"),
    ("until=9999-12-31", "until"),
    ("since=2024-01-01&until=2026-01-01", "until"),
    ("group_by=agent,colour", "group_by"),
    ("format=xml", "format"),
])
def test_billing_bad_periods_are_422_problems(app, seeded, query, field):
    api = as_key(app, seeded, "a_admin")
    path = "/usage/events" if field == "format" else "/usage"
    problem(api.get(f"{path}?{query}"), field)
    if field not in ("format", "group_by"):  # the same periods, the same answers
        problem(api.get(f"/usage/events?{query}"), field)


def test_billing_usage_is_read_with_billing_read_in_its_own_tenant(app, seeded):
    assert ok(as_user(app, seeded, "a_auditor").get("/usage?month=2026-11"))["totals"]
    assert as_user(app, seeded, "a_viewer").get("/usage").status_code == 403
    assert as_user(app, seeded, "a_builder").get("/usage/events").status_code == 403
    assert as_key(app, seeded, "a_readonly").get("/usage").status_code == 403
    b = ok(as_key(app, seeded, "b_admin").get("/usage?month=2026-11"))
    assert b["totals"] == {"llm_cost": "0.1", "steps": "7"}
    meters = ok(as_key(app, seeded, "b_admin").get("/usage/meters"))["items"]
    assert [m["name"] for m in meters] == [m.name for m in CATALOGUE]


def test_billing_raw_events_export_as_json_lines_and_csv(app, seeded, monkeypatch):
    monkeypatch.setattr(export, "BATCH", 2)  # several batches of one meter, merged by time
    put(seeded.tenants["a"].id, "llm_cost", "0.25", at(4, 1))  # with another: then by id
    api = as_key(app, seeded, "a_admin")
    response = api.get("/usage/events?month=2026-11")
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    assert 'filename="usage-2026110100-2026120100.jsonl"' in \
        response.headers["Content-Disposition"]
    rows = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    ids = {r["quantity"]: uuid.UUID(r["id"]) for r in rows if r["meter"] == "llm_cost"}
    assert [(r["occurred_at"][:16], r["meter"], r["quantity"]) for r in rows] == [
        ("2026-11-02T09:00", "knowledge_bytes", "5000.000000"),
        ("2026-11-03T05:10", "llm_cost", "1.250000"),
        ("2026-11-03T23:59", "llm_cost", "0.500000"),
        *sorted([("2026-11-04T01:00", "llm_cost", "2.000000"),
                 ("2026-11-04T01:00", "llm_cost", "0.250000")],
                key=lambda r: ids[r[2]]),
        ("2026-11-04T02:00", "steps", "3.000000"),
        ("2026-11-20T09:00", "knowledge_bytes", "-1200.000000"),
        ("2026-11-30T23:59", "action_calls", "1.000000")]
    assert rows[1]["agent_id"] == str(TRIAGER) and rows[1]["workflow_id"] == str(REFUNDS)
    assert rows[1]["unit"] == "USD" and rows[1]["dimension"] == GPT

    response = api.get("/usage/events?since=2026-11-03&until=2026-11-20&format=csv")
    assert response.mimetype == "text/csv"
    table = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["meter"], r["quantity"]) for r in table] == [
        ("llm_cost", "1.250000"), ("llm_cost", "0.500000"),
        *[("llm_cost", q) for q in sorted(["2.000000", "0.250000"], key=ids.__getitem__)],
        ("steps", "3.000000"), ("knowledge_bytes", "-1200.000000")]
    assert table[0]["run_id"] == "" and table[0]["agent_id"] == str(TRIAGER)
    everything = api.get("/usage/events?since=2026-11-30&format=csv").get_data(as_text=True)
    assert "'=cmd" in everything  # defused for spreadsheets
    assert ok(as_key(app, seeded, "b_admin").get("/usage?month=2026-11"))  # b's are its own
    b_rows = as_key(app, seeded, "b_admin").get("/usage/events?month=2026-11")
    assert len(b_rows.get_data(as_text=True).splitlines()) == 2


def test_billing_an_agency_sees_each_client_and_the_sum(app, seeded):
    a, b = seeded.tenants["a"], seeded.tenants["b"]
    put(seeded.tenants["c"].id, "steps", "1000", at(10, 12))  # another agency's client
    agency = ok(as_user(app, seeded, "nw_admin").get("/usage/clients?month=2026-11"))
    per = {i["tenant"]["slug"]: i["totals"] for i in agency["items"]}
    assert per == {a.slug: {"action_calls": "1", "knowledge_bytes": "3800",
                            "llm_cost": "3.75", "steps": "3"},
                   b.slug: {"llm_cost": "0.1", "steps": "7"}}
    assert agency["total"] == {"action_calls": "1", "knowledge_bytes": "3800",
                               "llm_cost": "3.85", "steps": "10"}
    by_key = ok(as_key(app, seeded, "nw_admin").get("/usage/clients?since=2026-11-10"
                                                    "&until=2026-11-10"))
    assert by_key["total"] == {"llm_cost": "0.1", "steps": "7"}
    contoso = ok(as_user(app, seeded, "ct_owner").get("/usage/clients?month=2026-11"))
    assert [(i["tenant"]["slug"], i["totals"]) for i in contoso["items"]] == [
        (seeded.tenants["c"].slug, {"steps": "1000"})]
    platform = ok(as_user(app, seeded, "platform").get("/usage/clients?month=2026-11"))
    assert platform["total"]["steps"] == "1010"
    assert as_user(app, seeded, "nw_viewer").get("/usage/clients").status_code == 403
    problem(as_key(app, seeded, "a_admin").get("/usage/clients"), "X-Overture-Tenant")
    problem(as_user(app, seeded, "nw_admin").get("/usage/clients?month=26-11"), "month")


def test_billing_usage_is_in_the_openapi_document(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    for path in ("/api/v1/usage", "/api/v1/usage/clients", "/api/v1/usage/events",
                 "/api/v1/usage/meters"):
        operation = spec["paths"][path]["get"]
        assert operation["tags"] == ["Usage"] and operation["summary"], path
    parameters = {p["name"] for p in spec["paths"]["/api/v1/usage"]["get"]["parameters"]}
    assert {"month", "since", "until", "group_by"} <= parameters
