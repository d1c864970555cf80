"""Runs in the console: the list (filtered, newest first), the run viewer (timeline,
steps, approvals), live updates while a run goes on, cancel and replay from a step.
A real browser journey runs a small workflow on a real worker; the test-client checks
cover who may do what."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from overture.orchestration.models import StepRun
from overture.platform import audit
from overture.platform.db import db, scoped_to
from tests.console_support import (
    WAIT_MS,
    Visit,
    browse,
    build_ui,
    page_text,
    region,
)
from tests.engine_api_support import publish_via_api, settle, start_via_api
from tests.engine_support import running_workers
from tests.live_server import serve
from tests.support import World, as_user

# Greets, then waits for a person: a run that stays in flight until someone acts.
ASKING = {"steps": [
    {"id": "greet", "type": "transform", "output": "hello {{ input.name }}", "next": "ask"},
    {"id": "ask", "type": "approval", "prompt": "Send the greeting to {{ input.name }}?",
     "assignee": {"role": "admin"}, "next": "send"},
    {"id": "send", "type": "transform", "output": "sent"}]}

TWO_STEPS = {"steps": [
    {"id": "greet", "type": "transform", "output": "hello {{ input.name }}", "next": "wait"},
    {"id": "wait", "type": "delay", "seconds": 3600}]}


def _unworked_run(app: Any, world: World) -> tuple[Any, Any]:
    """A run started through the API with no worker about: it stays in flight."""
    builder = as_user(app, world, "a_builder")
    workflow = publish_via_api(builder, TWO_STEPS, name="Greeter")
    return workflow, start_via_api(builder, workflow["id"], {"name": "Ada"})


def test_the_list_and_the_viewer_follow_permissions(app: Any, world: World) -> None:
    workflow, run = _unworked_run(app, world)
    viewer = browse(app, world, "a_viewer")
    listed = viewer.get("/runs")
    assert listed.status_code == 200
    assert "Greeter" in region(listed, "runs-list")
    assert "No runs match" in page_text(viewer.get("/runs?status=failed"))
    assert viewer.get("/runs?since=yesterday").status_code == 422  # said, not a 500
    assert viewer.get("/runs?cursor=garbage").status_code == 422
    newer = start_via_api(as_user(app, world, "a_builder"), workflow["id"], {"name": "Bo"})
    html = viewer.text("/runs")
    assert html.index(f"/runs/{newer['id']}") < html.index(f"/runs/{run['id']}")  # newest first
    assert "Greeter" in page_text(viewer.get(f"/runs?workflow={workflow['id']}&since=2020-01-01"))

    with scoped_to(world.tenants["a"].id):  # as the engine writes an agent's tool call
        audit.record("agent.tool_called", target_type="agent", target_id="x",
                     details={"agent": "triager", "tool": "crm.lookup", "kind": "action",
                              "run_id": run["id"], "step_id": "talk"})
        db.session.add(StepRun(run_id=run["id"], step_id="talk", step_type="group",
                               status="succeeded", output={"transcript": [
                                   {"turn": 1, "agent": "writer", "status": "ok",
                                    "output": "Dear Ada, welcome aboard."}]}))
        db.session.commit()
    shown = viewer.get(f"/runs/{run['id']}")
    assert shown.status_code == 200
    html = shown.get_data(as_text=True)
    assert "crm.lookup" in html and "triager" in html  # the step's tool calls
    assert "Transcript" in html and "Dear Ada, welcome aboard." in html
    assert 'hx-trigger="every 2s"' in html  # in flight: the page keeps itself current
    assert "Cancel run" not in html and "Replay" not in html  # a viewer acts on nothing
    assert viewer.post(f"/runs/{run['id']}/cancel").status_code == 403
    assert viewer.post(f"/runs/{run['id']}/replay", {"from_step": "greet"}).status_code == 403
    assert viewer.get("/runs/not-a-run").status_code == 404

    other = browse(app, world, "b_owner")
    assert other.get(f"/runs/{run['id']}").status_code == 404  # another workspace's run

    operator = browse(app, world, "a_operator")
    text = operator.text(f"/runs/{run['id']}")
    assert "Cancel run" in text and "Replay from a step" in text
    cancelled = operator.post(f"/runs/{run['id']}/cancel", follow_redirects=True)
    assert "The run is cancelled" in page_text(cancelled)
    live = operator.get(f"/runs/{run['id']}/live").get_data(as_text=True)
    assert "hx-trigger" not in live and "Cancelled" in live  # ended: polling stops
    again = operator.post(f"/runs/{run['id']}/cancel", follow_redirects=True)
    assert "already ended" in page_text(again)
    refused = operator.post(f"/runs/{run['id']}/replay", {"from_step": "nope"},
                            follow_redirects=True)
    assert "in this version" in page_text(refused)  # the service's reason


@pytest.fixture
def workers(settings: Any) -> Any:
    with running_workers(settings, processes=1, threads=4) as worker:
        yield worker


def _step(page: Page, step_id: str) -> Any:
    return page.locator(".run-graph li", has=page.locator(".mono", has_text=step_id))


def test_an_operator_follows_cancels_and_replays_a_run(app: Any, world: World,
                                                       browser: Any,
                                                       workers: Any) -> None:
    build_ui()  # the graph is the builder's island, read only
    operator = as_user(app, world, "a_operator")
    workflow = publish_via_api(as_user(app, world, "a_builder"), ASKING, name="Greeter")
    run = start_via_api(operator, workflow["id"], {"name": "Ada"})
    with serve(app) as base:
        visit = Visit.open(browser, base, "runs", world.users["a_operator"].email)
        page = visit.page
        page.get_by_role("link", name="Runs").first.click()
        page.get_by_role("heading", name="Runs").wait_for(timeout=WAIT_MS)
        rows = page.locator("#runs-list tbody tr")
        expect(rows).to_have_count(1)
        visit.check("runs")

        # A filter narrows the list in place; the address follows.
        page.get_by_label("Status").select_option("failed")
        page.wait_for_url("**status=failed**", timeout=WAIT_MS)
        expect(page.get_by_text("No runs match these filters")).to_be_visible()
        visit.check("runs-empty")
        page.get_by_label("Status").select_option("running")
        expect(rows).to_have_count(1)

        # The viewer fills in by itself: the greeting succeeds, the approval waits.
        rows.first.get_by_role("link").click()
        expect(_step(page, "greet").locator(".badge")).to_have_text("Succeeded",
                                                                     timeout=WAIT_MS)
        expect(_step(page, "ask").locator(".badge")).to_have_text("Waiting", timeout=WAIT_MS)
        expect(page.locator(".gantt-row")).to_have_count(2)
        graph = page.locator("#overture-run-graph")
        expect(graph.locator('.react-flow__node[data-id="greet"]')).to_have_class(
            re.compile("ovb-run--succeeded"), timeout=WAIT_MS)
        expect(graph.locator('.react-flow__node[data-id="ask"]')).to_have_class(
            re.compile("ovb-run--waiting"), timeout=WAIT_MS)
        expect(graph.locator('.react-flow__node[data-id="send"]')).to_have_class(
            re.compile("ovb-run--pending"))
        expect(page.locator("#run-live .badge").first).to_have_text("Running")
        greet = page.locator("#step-" + _row_id(app, world, run["id"], "greet"))
        greet.locator("summary").click()  # open a step: its output is there, and stays open
        expect(greet.locator("pre").last).to_have_text('"hello Ada"')
        with page.expect_response(lambda r: r.url.endswith("/live"), timeout=WAIT_MS):
            pass  # the live part is read again and replaced...
        page.wait_for_load_state("networkidle", timeout=WAIT_MS)
        expect(greet.locator("pre").last).to_be_visible()  # ...and the step is still open
        visit.check("run-waiting")

        page.get_by_role("button", name="Cancel run").click()
        expect(page.get_by_text("The run is cancelled")).to_be_visible(timeout=WAIT_MS)
        expect(page.locator("#run-live")).not_to_have_attribute("hx-trigger", "every 2s")
        expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)

        # Replay from the approval: the greeting is reused, the approval asks again.
        page.get_by_label("Start again at").select_option("ask")
        page.get_by_role("button", name="Replay").click()
        expect(page.get_by_text("Replaying from ask")).to_be_visible(timeout=WAIT_MS)
        expect(_step(page, "greet").locator(".badge")).to_have_text("Skipped",
                                                                     timeout=WAIT_MS)
        expect(_step(page, "ask").locator(".badge")).to_have_text("Waiting", timeout=WAIT_MS)
        expect(graph.locator('.react-flow__node[data-id="ask"]')).to_have_class(
            re.compile("ovb-run--waiting"), timeout=WAIT_MS)
        visit.check("run-replayed")
        page.get_by_role("button", name="Cancel run").click()
        expect(page.get_by_text("The run is cancelled")).to_be_visible(timeout=WAIT_MS)
        page.close()
    settle([world.tenants["a"].id])
    assert visit.foreign == [] and visit.problems == [], (visit.foreign, visit.problems)


def _row_id(app: Any, world: World, run_id: str, step_id: str) -> str:
    run = as_user(app, world, "a_operator").get(f"/runs/{run_id}").get_json()
    return next(s["id"] for s in run["steps"] if s["step_id"] == step_id)
