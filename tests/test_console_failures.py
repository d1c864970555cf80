"""Failures in the console: failed runs grouped by workflow, step and reason, retried
from the failed step (one run or a whole group) with each run's outcome said; and a
workflow's page with its error rate and most frequent failure reasons. A real browser
journey over runs that failed on a real worker; test-client checks of who may do what."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from overture.orchestration import workflows
from overture.orchestration.failures import MAX_GROUPS
from overture.orchestration.models import Run, StepRun
from overture.platform.db import db, scoped_to
from overture.web.console.failures import SHOWN
from tests.console_support import (
    WAIT_MS,
    Visit,
    browse,
    page_text,
    region,
    seed_activity,
)
from tests.engine_api_support import publish_via_api, settle, start_via_api, wait_run
from tests.engine_support import Receiver, running_workers
from tests.live_server import serve
from tests.support import World, as_user


def test_a_viewer_reads_failures_but_retries_nothing(app: Any, world: World) -> None:
    seed_activity(world.tenants["a"].id, "Refunds", succeeded=3, failed=1)
    with scoped_to(world.tenants["a"].id):  # a step the platform gave up on
        failed = db.session.scalars(select(Run).where(Run.status == "failed")).one()
        db.session.add(StepRun(run_id=failed.id, step_id="triage", step_type="transform",
                               status="failed", attempt=3, interruptions=3,
                               error={"code": "interrupted", "message": "its worker died"}))
        db.session.commit()
    viewer = browse(app, world, "a_viewer")
    shown = viewer.get("/failures")
    assert shown.status_code == 200
    listed = region(shown, "failures-list")
    assert "Refunds" in listed and "http_5xx" in listed
    assert "Retry" not in listed  # no control the role cannot use
    assert "Gave up" in listed and "its worker died" in listed  # the dead letter
    assert viewer.post("/failures/retry", {"run_id": "x"}).status_code == 403
    assert viewer.get("/failures?workflow=not-a-workflow").status_code == 404

    listing = viewer.text("/workflows")
    workflow_id = re.search(r'href="/workflows/([0-9a-f-]{36})"', listing).group(1)
    text = page_text(viewer.get(f"/workflows/{workflow_id}?days=30"))
    assert "Error rate 25.0%" in text and "http_5xx" in text
    stranger = browse(app, world, "b_owner")  # another workspace's
    assert stranger.get(f"/workflows/{workflow_id}").status_code == 404
    assert "No failures in this period" in page_text(stranger.get("/failures?days=1"))

    operator = browse(app, world, "a_operator")
    refused = operator.post("/failures/retry", {"group_workflow": workflow_id,
                                                "reason": ""})
    assert refused.status_code == 422  # said on the page, not a 500
    assert "Say which failures to retry" in page_text(refused)


def test_a_busy_workspace_shows_its_largest_groups_and_says_there_are_more(
        app: Any, world: World) -> None:
    """More groups than a page shows: the largest first, a note that there are more,
    and every sample run's Retry button sends its own run (through its group's form)."""
    assert SHOWN < MAX_GROUPS  # the API still gives them all
    with scoped_to(world.tenants["a"].id):
        workflow = workflows.create_workflow("Busy", draft={"steps": [
            {"id": "call", "type": "transform", "output": "ok"}]})
        version = workflows.publish(workflow, None)
        for n in range(SHOWN + 1):  # one reason each; "reason-0" twice: the largest
            for _ in range(2 if n == 0 else 1):
                db.session.add(Run(workflow_id=workflow.id, version_id=version.id,
                                   trigger="api", status="failed", input={},
                                   error={"code": f"reason-{n}", "step": "call",
                                          "message": "no"}))
        db.session.commit()
    operator = browse(app, world, "a_operator")
    listed = operator.get("/failures")
    html = listed.get_data(as_text=True)
    groups = re.findall(r'<tr>\s*<td><a class="cell-title"', html)
    assert len(groups) == SHOWN
    text = region(listed, "failures-list")
    assert f"The {SHOWN} largest groups of this period" in text
    assert text.index("reason-0") < text.index("reason-1 ")
    # A sample's button names its run and belongs to its group's form (one per group).
    button = re.search(r'<button type="submit" form="(retry-group-\d+)" name="run_id" '
                       r'value="([0-9a-f-]{36})"', html)
    assert button and html.count(f'id="{button.group(1)}"') == 1
    retried = operator.post("/failures/retry", {"run_id": button.group(2),
                                                "group_workflow": str(workflow.id),
                                                "step": "call", "reason": "reason-0"})
    assert retried.status_code == 200
    assert "Retry: 1 retried" in page_text(retried)  # that run alone, not its group


@pytest.fixture
def workers(settings: Any) -> Any:
    with running_workers(settings, processes=1, threads=4) as worker:
        yield worker


def test_an_operator_sees_a_failure_group_and_retries_it(app: Any, world: World,
                                                        browser: Any, workers: Any) -> None:
    builder = as_user(app, world, "a_builder")
    with Receiver() as receiver:
        orders = publish_via_api(builder, {"steps": [
            {"id": "prepare", "type": "transform", "output": {"n": "{{ input.n }}"},
             "next": "charge"},
            {"id": "charge", "type": "action", "action": "http.request",
             "input": {"method": "POST", "url": receiver.url("/charge"), "json": {}}}]},
            name="Orders")
        receiver.down("/charge", 400)  # a client error: the step does not retry it
        for n in (1, 2):
            assert wait_run(builder, start_via_api(builder, orders["id"],
                                                   {"n": n})["id"])["status"] == "failed"
        receiver.up("/charge")
        with serve(app) as base:
            visit = Visit.open(browser, base, "failures", world.users["a_operator"].email)
            page = visit.page
            page.get_by_role("link", name="Failures").first.click()
            page.get_by_role("heading", name="Failures").wait_for(timeout=WAIT_MS)
            groups = page.locator(".failure-groups tbody tr")
            expect(groups).to_have_count(1)  # two runs, one step, one reason: one group
            expect(groups.first.locator("td.num").first).to_have_text("2")
            expect(groups.first).to_contain_text("http_4xx")
            expect(groups.first.locator(".sample-runs li")).to_have_count(2)
            visit.check("failures")

            # The workflow's page: its error rate and the reason.
            groups.first.get_by_role("link", name="Orders").click()
            page.get_by_role("heading", name="Orders").wait_for(timeout=WAIT_MS)
            perf = page.locator("#performance")
            expect(perf).to_contain_text("100.0%")
            expect(perf.locator("tbody tr")).to_have_count(1)
            expect(perf.locator("tbody tr")).to_contain_text("http_4xx")
            perf.get_by_role("link", name="30 days").click()  # swapped in place
            expect(page.locator('#performance [aria-current="true"]')).to_have_text("30 days")
            visit.check("workflow")

            page.get_by_role("link", name="See and retry these failures").click()
            page.get_by_role("heading", name="Failures").wait_for(timeout=WAIT_MS)
            page.get_by_role("button", name=re.compile("^Retry all")).click()
            results = page.locator(".retry-results")
            expect(results.get_by_role("heading")).to_have_text("Retry: 2 retried",
                                                                timeout=WAIT_MS)
            expect(results.locator(".retry-result")).to_have_count(2)
            expect(results).to_contain_text("from charge")
            expect(page.locator(".failure-groups tbody tr").first).to_contain_text(
                "All retried")
            visit.check("failures-retried")

            # One run again: it was retried already, and the page says so.
            page.get_by_role("button", name=re.compile("^Retry run")).first.click()
            expect(page.locator(".retry-results h2")).to_have_text("Retry: 1 already retried",
                                                                   timeout=WAIT_MS)
            page.close()
    settle([world.tenants["a"].id])
    assert visit.foreign == [] and visit.problems == [], (visit.foreign, visit.problems)
