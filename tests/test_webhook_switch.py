"""A workflow's webhook can be turned off and on again (`-k webhook`): through the API and
on the console's Triggers page, in a real browser. While off it refuses every call with
a 409 problem that says so, signed or not, and starts nothing; its URL and signing
secret stay. Each switch is audited once; a viewer sees no switch and a forged post
gets 403."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

from playwright.sync_api import Browser

from tests.console_support import WAIT_MS, Visit, browse, page_text, region
from tests.engine_api_support import audit_events, ok, publish_via_api
from tests.live_server import serve
from tests.support import as_key, as_user
from tests.test_webhook_replay import (
    ECHO,
    JSON,
    STANDARD_SECRET,
    run_count,
    signed_workflow,
    standard,
)


def refused_as_off(response: Any) -> dict[str, Any]:
    assert response.status_code == 409, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["type"] == "urn:overture:problem:webhook-disabled", problem
    assert problem["title"] == "Webhook turned off"
    assert "turned off" in problem["detail"] and "nothing was started" in problem["detail"]
    return problem


def test_webhook_turned_off_refuses_calls_with_409_and_on_again_takes_them(app, world):
    admin = as_key(app, world, "a_admin")
    flow = publish_via_api(admin, ECHO, name="intake")
    assert flow["webhook_enabled"] is True
    hook = urlparse(flow["webhook_url"]).path
    assert app.test_client().post(hook, json={"n": 1}).status_code == 202
    assert run_count(world) == 1

    # A viewer may not switch it; a bad value is a 422 naming the field.
    viewer = as_user(app, world, "a_viewer")
    assert viewer.patch(f"/workflows/{flow['id']}",
                        json={"webhook_enabled": False}).status_code == 403
    bad = admin.patch(f"/workflows/{flow['id']}", json={"webhook_enabled": "nope"})
    assert bad.status_code == 422 and "webhook_enabled" in bad.get_data(as_text=True)

    person = as_user(app, world, "a_admin")
    off = ok(person.patch(f"/workflows/{flow['id']}", json={"webhook_enabled": False}))
    assert off["webhook_enabled"] is False and off["webhook_url"] == flow["webhook_url"]
    refused_as_off(app.test_client().post(hook, json={"n": 2}))
    refused_as_off(app.test_client().post(hook + "?wait=5", data=b"plain text"))
    assert run_count(world) == 1  # nothing started
    # A wrong token is still "no such webhook", not a hint that it exists.
    assert app.test_client().post(hook[:-3] + "xyz", json={}).status_code == 404

    # Switching it off twice is one act; each real switch is audited once, by whom.
    ok(person.patch(f"/workflows/{flow['id']}", json={"webhook_enabled": False}))
    tenant = world.tenants["a"].id
    disabled = audit_events(tenant, "workflow.webhook_disabled")
    assert [e["target_id"] for e in disabled] == [flow["id"]]
    assert disabled[0]["actor_id"] == str(world.users["a_admin"].id)

    on = ok(admin.patch(f"/workflows/{flow['id']}", json={"webhook_enabled": True}))
    assert on["webhook_enabled"] is True
    assert app.test_client().post(hook, json={"n": 3}).status_code == 202
    assert run_count(world) == 2
    assert len(audit_events(tenant, "workflow.webhook_enabled")) == 1


def test_a_signed_webhook_turned_off_refuses_before_any_signature_is_checked(app, world):
    path = signed_workflow(app, world, STANDARD_SECRET)
    admin = as_key(app, world, "a_admin")
    flow = next(w for w in ok(admin.get("/workflows"))["items"]
                if urlparse(w["webhook_url"]).path == path)
    ok(admin.patch(f"/workflows/{flow['id']}", json={"webhook_enabled": False}))
    body = json.dumps({"n": 1}).encode()
    signed = standard(body, secret=STANDARD_SECRET)
    refused_as_off(app.test_client().post(path, data=body, headers=signed))
    refused_as_off(app.test_client().post(path, data=body, headers=JSON))  # unsigned too
    # Nothing secret was touched for a call that could not be honoured.
    assert audit_events(world.tenants["a"].id, "credential.used") == []
    ok(admin.patch(f"/workflows/{flow['id']}", json={"webhook_enabled": True}))
    assert app.test_client().post(path, data=body, headers=signed).status_code == 202
    # The secret stayed what it was while the webhook was off.
    assert app.test_client().post(path, data=body, headers=JSON).status_code == 401


def test_the_triggers_page_switches_a_webhook_off_and_on(
        app: Any, world: Any, browser: Browser) -> None:
    admin = as_key(app, world, "a_admin")
    flow = publish_via_api(admin, ECHO, name="intake")
    hook = urlparse(flow["webhook_url"]).path
    with serve(app) as base:
        visit = Visit.open(browser, base, "webhooks", world.users["a_builder"].email)
        page = visit.page
        page.get_by_role("link", name="Triggers").first.wait_for(timeout=WAIT_MS)
        visit.go("/triggers", "triggers-webhook-on")
        row = page.locator('#webhooks tr[data-webhook="intake"]')
        assert "On" in row.inner_text()

        page.get_by_role("button", name="Turn off the webhook of intake").click()
        page.get_by_text("The webhook of intake is off: calls to it are refused.").wait_for(
            timeout=WAIT_MS)
        assert "Off" in row.inner_text()
        visit.check("triggers-webhook-off")
        call = page.request.post(base + hook, data=json.dumps({"n": 1}), headers=JSON)
        assert call.status == 409 and call.json()["type"].endswith("webhook-disabled")

        page.get_by_role("button", name="Turn on the webhook of intake").click()
        page.get_by_text("The webhook of intake is on.").wait_for(timeout=WAIT_MS)
        assert "On" in row.inner_text()
        assert page.request.post(base + hook, data=json.dumps({"n": 2}),
                                 headers=JSON).status == 202
        page.close()
    assert visit.foreign == [], visit.foreign
    assert visit.problems == [], visit.problems
    assert len(audit_events(world.tenants["a"].id, "workflow.webhook_disabled")) == 1
    assert len(audit_events(world.tenants["a"].id, "workflow.webhook_enabled")) == 1


def test_a_viewer_sees_no_switch_and_a_forged_one_is_refused(app, world):
    admin = as_key(app, world, "a_admin")
    flow = publish_via_api(admin, ECHO, name="intake")
    viewer = browse(app, world, "a_viewer")
    hooks = region(viewer.get("/triggers"), "webhooks")
    assert "intake" in hooks and "On" in hooks and "Turn off" not in hooks
    forged = viewer.post(f"/triggers/webhooks/{flow['id']}/toggle")
    assert forged.status_code == 403
    assert ok(admin.get(f"/workflows/{flow['id']}"))["webhook_enabled"] is True
    # An unknown workflow is a 404 page, not a 500.
    builder = browse(app, world, "a_builder")
    missing = builder.post("/triggers/webhooks/00000000-0000-0000-0000-000000000000/toggle")
    assert missing.status_code == 404 and "not found" in page_text(missing).lower()
