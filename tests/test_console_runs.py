"""Runs in the console: the list (filtered, newest first), the run viewer (timeline,
steps, approvals), live updates while a run goes on, cancel and replay from a step.
A real browser journey runs a small workflow on a real worker; the test-client checks
cover who may do what."""

from __future__ import annotations

from typing import Any

from tests.console_support import browse, page_text, region
from tests.engine_api_support import publish_via_api, start_via_api
from tests.support import World, as_user

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
    assert "Greeter" in page_text(viewer.get(f"/runs?workflow={workflow['id']}&since=2020-01-01"))

    shown = viewer.get(f"/runs/{run['id']}")
    assert shown.status_code == 200
    html = shown.get_data(as_text=True)
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
