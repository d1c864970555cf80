"""Each workflow's webhook URL takes the calls a minute its workflow sets (`-k rate`):
past it a caller gets 429 with `Retry-After` and a problem body, and starts nothing,
while other webhooks go on; a number above the installation's ceiling is refused with
a 422 naming the field; raising it takes effect at the next call. Set through the API
and on the console's Triggers page (in a real browser)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

from playwright.sync_api import Browser

from tests.console_support import WAIT_MS, Visit, browse, region
from tests.engine_api_support import audit_events, ok, publish_via_api
from tests.live_server import serve
from tests.support import as_key, as_user
from tests.test_webhook_replay import ECHO, JSON, run_count


def rate_limited(response: Any) -> dict[str, Any]:
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    retry = response.headers.get("Retry-After", "")
    assert retry.isdigit() and 1 <= int(retry) <= 60, retry
    problem = response.get_json()
    assert problem["type"] == "urn:overture:problem:rate-limited", problem
    assert "5 per 1 minute" in problem["detail"], problem
    return problem


def test_a_webhook_past_its_own_limit_gets_429_and_another_webhook_goes_on(app, world):
    admin = as_key(app, world, "a_admin")
    tight = publish_via_api(admin, ECHO, name="tight")
    other = publish_via_api(admin, ECHO, name="other")
    assert tight["webhook_rate_per_minute"] == 15000  # the installation's default
    assert tight["webhook_rate_ceiling"] == 60000
    changed = ok(admin.patch(f"/workflows/{tight['id']}",
                             json={"webhook_rate_per_minute": 5}))
    assert changed["webhook_rate_per_minute"] == 5
    assert ok(admin.get(f"/workflows/{tight['id']}"))["webhook_rate_per_minute"] == 5
    events = audit_events(world.tenants["a"].id, "workflow.webhook_rate")
    assert [e["details"] for e in events] == [{"before": None, "after": 5}]

    hook = urlparse(tight["webhook_url"]).path
    client = app.test_client()
    for n in range(5):
        answer = client.post(hook, json={"n": n})
        assert answer.status_code == 202, answer.get_data(as_text=True)
        assert answer.headers["RateLimit-Policy"].endswith(";q=5;w=60")
        assert answer.headers["RateLimit"].startswith(f'"hooks.webhook";r={4 - n};t=')
    rate_limited(client.post(hook, json={"n": 6}))
    rate_limited(client.post(hook, data=b"plain text"))
    assert run_count(world) == 5  # the refused calls started nothing

    # Another workflow's webhook has its own allowance, the default.
    other_hook = urlparse(other["webhook_url"]).path
    for n in range(7):
        assert client.post(other_hook, json={"n": n}).status_code == 202
    assert run_count(world) == 12


def test_a_limit_above_the_ceiling_or_not_a_positive_number_is_refused(app, world):
    admin = as_key(app, world, "a_admin")
    flow = publish_via_api(admin, ECHO, name="intake")
    for bad in (60001, 0, -3, "many", 2.5, True):
        answer = admin.patch(f"/workflows/{flow['id']}", json={"webhook_rate_per_minute": bad})
        assert answer.status_code == 422, (bad, answer.get_data(as_text=True))
        assert "webhook_rate_per_minute" in answer.get_data(as_text=True), bad
    over = admin.patch(f"/workflows/{flow['id']}", json={"webhook_rate_per_minute": 60001})
    assert "at most 60,000" in over.get_data(as_text=True)
    assert ok(admin.get(f"/workflows/{flow['id']}"))["webhook_rate_per_minute"] == 15000
    # The ceiling itself is allowed; null goes back to the default.
    assert ok(admin.patch(f"/workflows/{flow['id']}", json={
        "webhook_rate_per_minute": 60000}))["webhook_rate_per_minute"] == 60000
    assert ok(admin.patch(f"/workflows/{flow['id']}", json={
        "webhook_rate_per_minute": None}))["webhook_rate_per_minute"] == 15000


def test_raising_the_limit_takes_effect_at_the_next_call(app, world):
    admin = as_key(app, world, "a_admin")
    flow = publish_via_api(admin, ECHO, name="intake")
    ok(admin.patch(f"/workflows/{flow['id']}", json={"webhook_rate_per_minute": 5}))
    hook = urlparse(flow["webhook_url"]).path
    client = app.test_client()
    for n in range(5):
        assert client.post(hook, json={"n": n}).status_code == 202
    rate_limited(client.post(hook, json={"n": 5}))

    ok(admin.patch(f"/workflows/{flow['id']}", json={"webhook_rate_per_minute": 50}))
    answer = client.post(hook, json={"n": 6})
    assert answer.status_code == 202, answer.get_data(as_text=True)
    assert answer.headers["RateLimit-Policy"].endswith(";q=50;w=60")
    assert run_count(world) == 6


def test_the_triggers_page_sets_a_webhooks_rate(app: Any, world: Any, browser: Browser) -> None:
    admin = as_key(app, world, "a_admin")
    flow = publish_via_api(admin, ECHO, name="intake")
    hook = urlparse(flow["webhook_url"]).path
    with serve(app) as base:
        visit = Visit.open(browser, base, "webhook-rate", world.users["a_builder"].email)
        page = visit.page
        page.get_by_role("link", name="Triggers").first.wait_for(timeout=WAIT_MS)
        visit.go("/triggers", "triggers-webhook-rate-default")
        row = page.locator('#webhooks tr[data-webhook="intake"]')
        assert "15,000" in row.locator("[data-rate]").inner_text()

        # Above the ceiling: the form says so and keeps what was typed.
        row.locator("summary", has_text="Change").click()
        page.get_by_label("Calls a minute").fill("70000")
        page.get_by_role("button", name="Save").first.click()
        page.get_by_text("At most 60,000 calls a minute on this installation.").wait_for(
            timeout=WAIT_MS)
        assert page.get_by_label("Calls a minute").input_value() == "70000"
        visit.check("triggers-webhook-rate-refused")

        page.get_by_label("Calls a minute").fill("2")
        page.get_by_role("button", name="Save").first.click()
        page.get_by_text("The webhook of intake takes 2 calls a minute.").wait_for(
            timeout=WAIT_MS)
        assert row.locator("[data-rate]").inner_text().strip() == "2"
        visit.check("triggers-webhook-rate-set")
        for n in range(2):
            assert page.request.post(base + hook, data=json.dumps({"n": n}),
                                     headers=JSON).status == 202
        refused = page.request.post(base + hook, data=json.dumps({"n": 3}), headers=JSON)
        assert refused.status == 429 and refused.headers["retry-after"].isdigit()
        page.close()
    assert visit.foreign == [], visit.foreign
    assert visit.problems == [], visit.problems
    assert len(audit_events(world.tenants["a"].id, "workflow.webhook_rate")) == 1


def test_a_viewer_sees_the_rate_but_cannot_set_it(app, world):
    admin = as_key(app, world, "a_admin")
    flow = publish_via_api(admin, ECHO, name="intake")
    viewer = browse(app, world, "a_viewer")
    hooks = region(viewer.get("/triggers"), "webhooks")
    assert "15,000" in hooks and "Change" not in hooks
    forged = viewer.post(f"/triggers/webhooks/{flow['id']}/rate",
                         data={"webhook_rate_per_minute": "1"})
    assert forged.status_code == 403
    assert ok(admin.get(f"/workflows/{flow['id']}"))["webhook_rate_per_minute"] == 15000


def test_a_vendor_feed_takes_its_workflows_rate(app, world):
    from tests.test_vendor_triggers import feed, post, typeform_event, typeform_headers

    workflow, trigger = feed(app, world, "typeform")
    admin = as_key(app, world, "a_admin")
    ok(admin.patch(f"/workflows/{workflow['id']}", json={"webhook_rate_per_minute": 5}))
    for n in range(5):
        body = typeform_event(f"01HRATE{n}")
        answer = post(app, trigger, body, typeform_headers(body))
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert answer.headers["RateLimit-Policy"].endswith(";q=5;w=60")
    body = typeform_event("01HRATE9")
    rate_limited(post(app, trigger, body, typeform_headers(body)))
    # The workflow's own webhook counts apart from its vendor feed.
    hook = urlparse(workflow["webhook_url"]).path
    assert app.test_client().post(hook, json={"n": 1}).status_code == 202


def test_a_plans_ceiling_holds_its_tenants_webhooks(app, world):
    """An agency's plan caps its clients' webhook rates: a workflow set higher before
    is held to it, a higher setting is refused naming the plan; the ceiling is a limit,
    not a price (no new plan version)."""
    admin = as_key(app, world, "a_admin")
    fast = publish_via_api(admin, ECHO, name="fast")
    ok(admin.patch(f"/workflows/{fast['id']}", json={"webhook_rate_per_minute": 5000}))

    agency = as_user(app, world, "nw_owner", "northwind")
    plan = ok(agency.post("/plans", json={"name": "Starter", "webhook_rate_ceiling": 3,
                                          "price_book": {"meters": {}}}), 201)
    assert plan["webhook_rate_ceiling"] == 3
    ok(agency.put(f"/billing/accounts/{world.tid('a')}", json={"plan_id": plan["id"]}))

    refused = admin.patch(f"/workflows/{fast['id']}", json={"webhook_rate_per_minute": 10})
    assert refused.status_code == 422, refused.get_data(as_text=True)
    assert "at most 3 calls a minute on this workspace's plan" in json.dumps(refused.get_json())
    assert ok(admin.get(f"/workflows/{fast['id']}"))["webhook_rate_ceiling"] == 3

    hook = urlparse(fast["webhook_url"]).path
    client = app.test_client()
    for n in range(3):
        answer = client.post(hook, json={"n": n})
        assert answer.status_code == 202, answer.get_data(as_text=True)
        assert answer.headers["RateLimit-Policy"].endswith(";q=3;w=60")
    assert client.post(hook, json={"n": 4}).status_code == 429

    raised = ok(agency.patch(f"/plans/{plan['id']}", json={"webhook_rate_ceiling": 100}))
    assert (raised["webhook_rate_ceiling"], raised["version"]) == (100, plan["version"])
    events = audit_events(world.tenants["northwind"].id, "plan.webhook_rate_ceiling")
    assert [e["details"] for e in events] == [{"before": 3, "after": 100}]
    bad = agency.patch(f"/plans/{plan['id']}", json={"webhook_rate_ceiling": 0})
    assert bad.status_code == 422 and "webhook_rate_ceiling" in bad.get_data(as_text=True)
