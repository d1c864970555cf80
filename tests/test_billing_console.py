"""The console's usage page (`-k billing`): this month by meter, agent, workflow and day,
another month or dates, the export, an agency's clients; who may see it, and bad dates
said beside the fields."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from overture.billing import meters as m
from overture.billing import usage
from overture.orchestration import workflows
from overture.platform.db import db, scoped_to, utcnow
from tests.agent_fakes import answer, create_agent, scripted
from tests.console_support import browse, page_text, region
from tests.support import World

GPT = "openai:gpt-4o-mini"


def put(tenant_id: Any, meter: str, quantity: str, when: datetime | None = None,
        agent: Any = None, workflow: Any = None, dimension: str = "") -> None:
    with scoped_to(tenant_id):
        usage.record([usage.Entry(meter, Decimal(quantity), dimension, agent)],
                     attribution=usage.Attribution(workflow_id=workflow), at=when)
        db.session.commit()


@pytest.fixture
def seeded(world: World) -> dict[str, Any]:
    a, b = world.tenants["a"].id, world.tenants["b"].id
    triager = create_agent(world, scripted("Triager", {"answer": answer("ok")}))
    with scoped_to(a):
        refunds = workflows.create_workflow("Refunds", draft={"steps": [
            {"id": "t", "type": "transform", "output": 1}]}).id
        db.session.commit()
    put(a, m.RUNS_STARTED, "12", workflow=refunds)
    put(a, m.STEPS, "48", workflow=refunds)
    put(a, m.AGENT_CALLS, "12", agent=triager, workflow=refunds)
    put(a, m.INPUT_TOKENS, "36000", agent=triager, workflow=refunds, dimension=GPT)
    put(a, m.MODEL_COST, "3.42", agent=triager, workflow=refunds, dimension=GPT)
    put(a, m.KNOWLEDGE_BYTES, "2097152")
    put(a, m.STEPS, "5", when=datetime(2026, 10, 14, 9, tzinfo=UTC))  # October
    put(b, m.STEPS, "7")
    put(b, m.MODEL_COST, "0.81")
    return {"refunds": refunds, "triager": triager}


def test_billing_usage_page_shows_this_month_by_meter_agent_workflow_and_day(
        app, world, seeded):
    owner = browse(app, world, "a_owner")
    response = owner.get("/usage")
    assert response.status_code == 200
    text = page_text(response)
    assert "Runs started 12" in text and "Steps executed 48" in text
    assert "Model cost $3.42" in text and "Model input tokens 36k" in text
    assert "Knowledge stored 2.0 MB" in text
    assert "Model cost per day" in text  # the chart shows cost when there is any
    assert ("Usage per agent Agent Agent calls Model input tokens Model output tokens Model "
            "cost Triager 12 36k 0 $3.42") in region(response, "usage-agents")
    assert "Refunds 12 48 12 0 $3.42" in region(response, "usage-workflows")
    day = f"{utcnow():%Y-%m-%d}: $3.42"
    assert day in response.get_data(as_text=True)  # the bar's title
    assert "usage-clients" not in response.get_data(as_text=True)  # a workspace has none

    steps = page_text(owner.get("/usage?chart=steps"))
    assert "Steps executed per day" in steps
    october = page_text(owner.get("/usage?month=2026-10"))
    assert "Steps executed 5" in october and "Model cost $0.00" in october
    dates = page_text(owner.get("/usage?since=2026-10-14&until=2026-10-14"))
    assert "14 October 2026 (UTC)" in dates and "Steps executed 5" in dates


def test_billing_usage_page_exports_the_raw_events(app, world, seeded):
    owner = browse(app, world, "a_owner")
    page = owner.get("/usage").get_data(as_text=True)
    assert "/usage/export?format=csv" in page and "/usage/export?format=jsonl" in page
    response = owner.get("/usage/export?format=csv&month=2026-10")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert f'filename="usage-{world.tenants["a"].slug}-' in \
        response.headers["Content-Disposition"]
    (row,) = csv.DictReader(io.StringIO(response.get_data(as_text=True)))
    assert (row["meter"], row["quantity"]) == ("steps", "5.000000")


def test_billing_usage_page_says_what_is_wrong_with_dates(app, world, seeded):
    owner = browse(app, world, "a_owner")
    response = owner.get("/usage?since=2026-11-10&until=2026-11-01")
    assert response.status_code == 422
    assert "Must be after since." in page_text(response)
    assert 'aria-invalid="true"' in response.get_data(as_text=True)
    assert owner.get("/usage?month=2026-13").status_code == 422
    assert owner.get("/usage/export?since=tomorrow").status_code == 422


def test_billing_usage_page_is_for_billing_read_only(app, world, seeded):
    viewer = browse(app, world, "a_viewer")
    assert viewer.get("/usage").status_code == 403
    assert viewer.get("/usage/export").status_code == 403
    assert 'href="/usage"' not in viewer.get("/").get_data(as_text=True)
    owner_home = browse(app, world, "a_owner").get("/").get_data(as_text=True)
    assert 'href="/usage"' in owner_home
    auditor = browse(app, world, "a_auditor")  # an auditor reads usage, and names
    assert "Refunds 12 48" in page_text(auditor.get("/usage"))


def test_billing_an_agency_sees_each_client_and_the_sum(app, world, seeded):
    agency = browse(app, world, "nw_owner")
    response = agency.get("/usage")
    assert response.status_code == 200
    table = region(response, "usage-clients")
    assert "Workspace A ws-a 12 48 12 36k 0 $3.42" in table
    assert "Workspace B ws-b 0 7 0 0 0 $0.81" in table
    assert "All 2 workspaces 12 55 12 36k 0 $4.23" in table
    home = page_text(agency.get("/"))  # the agency home reads the same roll-ups
    assert "$4.23" in home
