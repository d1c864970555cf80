"""The usage page in a real browser (Debian's Chromium, driven by Playwright), as an
agency owner: each client workspace and their sum, last month by day in bars, another
meter, the numbers behind the bars, an export downloaded, dates in the wrong order said
beside the field. axe-core finds no serious or critical violation, nothing is loaded
from another host, the CSP holds. Screenshots at 1400 and 390 pixels wide go to
build/screenshots/usage/*.png."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from playwright.sync_api import Browser

from overture.billing import meters as m
from overture.billing import periods, usage
from overture.orchestration import workflows
from overture.platform.db import db, scoped_to, utcnow
from tests.agent_fakes import answer, create_agent, scripted
from tests.console_support import WAIT_MS, Visit
from tests.live_server import serve


def seed(world: Any) -> str:
    """A month of usage in workspace A (last month, a different amount each day) and a
    little this month, in A and B; last month as YYYY-MM."""
    a, b = world.tenants["a"].id, world.tenants["b"].id
    last = periods.month_of(periods.month_of(utcnow()).since - timedelta(days=1))
    agents = [create_agent(world, scripted(name, {"answer": answer("ok")}))
              for name in ("Triager", "Refund writer")]
    with scoped_to(a):
        flows = [workflows.create_workflow(name, draft={"steps": [
            {"id": "t", "type": "transform", "output": 1}]}).id for name in ("Refunds",
                                                                              "Invoices")]
        for day in range(28):
            at = last.since + timedelta(days=day, hours=9)
            n = 3 + (day * 7) % 11
            for agent, flow in zip(agents, flows, strict=True):
                usage.record([usage.Entry(m.AGENT_CALLS, Decimal(n), "", agent),
                              usage.Entry(m.INPUT_TOKENS, Decimal(900 * n), "openai:gpt-4o",
                                          agent),
                              usage.Entry(m.MODEL_COST, Decimal(n) * Decimal("0.0375"),
                                          "openai:gpt-4o", agent)],
                             attribution=usage.Attribution(workflow_id=flow), at=at)
            usage.record([usage.Entry(m.RUNS_STARTED, Decimal(n)),
                          usage.Entry(m.STEPS, Decimal(4 * n))],
                         attribution=usage.Attribution(workflow_id=flows[0]), at=at)
        usage.record([usage.Entry(m.STEPS, Decimal(40))],
                     attribution=usage.Attribution(workflow_id=flows[0]))
        db.session.commit()
    with scoped_to(b):
        usage.record([usage.Entry(m.STEPS, Decimal(9)), usage.Entry(m.MODEL_COST,
                                                                    Decimal("0.81"))])
        db.session.commit()
    return f"{last.since:%Y-%m}"


def test_an_agency_owner_reads_usage_in_the_console(app: Any, world: Any,
                                                    browser: Browser) -> None:
    last_month = seed(world)
    with serve(app) as base:
        visit = Visit.open(browser, base, "usage", world.users["nw_owner"].email)
        page = visit.page
        page.get_by_role("heading", name="Client workspaces").wait_for(timeout=WAIT_MS)

        page.get_by_role("link", name="Usage").click()
        page.get_by_role("heading", name="Usage", exact=True).wait_for(timeout=WAIT_MS)
        page.get_by_label("Month", exact=True).select_option(last_month)
        page.get_by_role("button", name="Show month").click()
        page.wait_for_url(f"**month={last_month}**", timeout=WAIT_MS)
        clients = page.locator("#usage-clients")
        assert "Workspace A" in clients.inner_text()
        assert page.locator("#usage-clients tfoot").inner_text().startswith("All 2 workspaces")
        visit.check("usage-agency")

        page.goto(base + "/")
        page.get_by_role("button", name="Open Workspace A").click()
        page.get_by_role("heading", name="Recent runs").wait_for(timeout=WAIT_MS)
        page.goto(f"{base}/usage?month={last_month}")
        bars = page.locator(".bars li")
        assert bars.count() == len(periods.parse(month=last_month).days)
        assert "Model cost per day" in page.locator(".usage-chart h2").inner_text()
        agents = page.locator("#usage-agents tbody tr")
        assert agents.count() == 2
        calls = sum(3 + (day * 7) % 11 for day in range(28))  # the month's, per agent
        assert agents.first.inner_text().split("\t")[:2] == ["Refund writer", str(calls)]
        visit.check("usage-workspace")

        page.get_by_role("link", name="Steps executed").click()
        page.get_by_role("heading", name="Steps executed per day").wait_for(timeout=WAIT_MS)
        page.get_by_text("The numbers, day by day").click()
        first_day = page.locator(".usage-days tbody tr").first.inner_text()
        assert first_day.endswith("12")  # 4 steps x 3 on the first day
        visit.check("usage-steps")

        with page.expect_download(timeout=WAIT_MS) as download:
            page.get_by_role("link", name="Export CSV").click()
        assert download.value.suggested_filename.startswith("usage-ws-a-")
        assert download.value.suggested_filename.endswith(".csv")

        page.get_by_label("From", exact=True).fill(f"{last_month}-20")
        page.get_by_label("To", exact=True).fill(f"{last_month}-10")
        page.get_by_role("button", name="Show dates").click()
        page.get_by_text("Must be after since.").wait_for(timeout=WAIT_MS)
        visit.check("usage-bad-dates")
        page.close()
    assert visit.foreign == [], visit.foreign
    assert visit.problems == [], visit.problems
