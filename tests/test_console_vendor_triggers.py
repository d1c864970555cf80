"""The Triggers page's app events (`-k console_vendor`): in a real browser an admin adds
a Slack trigger with its signing secret and a channel, copies the URL, and a message
Slack signs for that URL starts a run the Runs page shows as started by Slack. Axe
finds nothing serious; screenshots go to build/screenshots/vendor-triggers/. Through
the test client: a refused form keeps its message beside the field and never echoes
the secret; a viewer sees no form and a forged post is refused."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

from playwright.sync_api import Browser

from overture.orchestration import workflows
from overture.platform.db import db, scoped_to
from tests.console_support import WAIT_MS, WIDTHS, Visit, browse, page_text, sign_in
from tests.test_vendor_triggers import JSON, SECRET, slack_event, slack_headers


def seed_published(world: Any, name: str) -> Any:
    with scoped_to(world.tenants["a"].id, user_id=world.users["a_admin"].id):
        workflow = workflows.create_workflow(name, draft={"steps": [
            {"id": "echo", "type": "transform", "output": "ok"}]})
        workflows.publish(workflow, world.users["a_admin"].id)
        db.session.commit()
        return workflow.id


def test_console_vendor_slack_trigger_journey(app: Any, world: Any, browser: Browser) -> None:
    from tests.live_server import serve

    seed_published(world, "Helpdesk intake")
    with serve(app) as base:
        context = browser.new_context(viewport={"width": WIDTHS[0], "height": 900},
                                      permissions=["clipboard-read", "clipboard-write"])
        page = context.new_page()
        visit = Visit(page, base, "vendor-triggers")
        sign_in(page, base, world.users["a_admin"].email)
        page.wait_for_url(base + "/", timeout=WAIT_MS)
        page.goto(base + "/triggers#apps")
        page.get_by_text("No app events yet").wait_for(timeout=WAIT_MS)
        visit.check("empty")
        page.get_by_label("App", exact=True).select_option("slack")
        page.get_by_label("Signing secret").fill(SECRET)
        page.get_by_label("Slack channels (optional, Slack only)").fill("C1")
        page.get_by_role("button", name="Add app trigger").click()
        page.get_by_text("Helpdesk intake now runs on each Slack event").wait_for(timeout=WAIT_MS)
        assert SECRET not in page.content()
        url = page.get_by_label("Slack URL of Helpdesk intake").input_value()
        page.get_by_role("button", name="Copy the Slack URL").click()
        page.get_by_role("button", name="Copied").wait_for(timeout=WAIT_MS)
        visit.check("added")

        body = slack_event({"type": "message", "channel": "C1", "user": "U1",
                            "text": "my laptop is on fire", "ts": "1.0"})
        sent = app.test_client().post(urlparse(url).path, data=body,
                                      headers={**JSON, **slack_headers(body)})
        assert sent.status_code == 200 and sent.get_json()["started"] == 1
        page.goto(base + "/runs")
        page.locator("td", has_text="Slack").first.wait_for(timeout=WAIT_MS)
        visit.check("runs")
        context.close()
    assert visit.foreign == [], visit.foreign
    assert visit.problems == [], visit.problems


def test_console_vendor_form_errors_and_roles(app: Any, world: Any) -> None:
    workflow_id = seed_published(world, "Leads")
    admin = browse(app, world, "a_admin")
    short = admin.post("/triggers/apps", {"workflow_id": str(workflow_id), "source": "hubspot",
                                          "secret": "short"})
    assert short.status_code == 422
    assert "8 to 500 characters" in page_text(short)
    bad = admin.post("/triggers/apps", {"workflow_id": str(workflow_id), "source": "slack",
                                        "secret": SECRET, "channels": "x" * 60})
    assert bad.status_code == 422 and "Slack channel ids" in page_text(bad)
    assert SECRET not in bad.get_data(as_text=True)

    added = admin.post("/triggers/apps", {"workflow_id": str(workflow_id), "source": "jira",
                                          "secret": SECRET})
    assert added.status_code == 302
    html = admin.text("/triggers")
    trigger_id = html.split("/triggers/apps/")[1].split("/")[0]
    assert "issue.created, issue.updated" in html and SECRET not in html

    viewer = browse(app, world, "a_viewer")
    seen = viewer.text("/triggers")
    assert "Add app trigger" not in seen and "issue.created" in seen
    assert viewer.post("/triggers/apps", {"workflow_id": str(workflow_id), "source": "jira",
                                          "secret": SECRET}).status_code == 403
    assert viewer.post(f"/triggers/apps/{trigger_id}/delete").status_code == 403

    off = admin.post(f"/triggers/apps/{trigger_id}/toggle")
    assert off.status_code == 302 and "Turn on" in admin.text("/triggers")
    gone = admin.post(f"/triggers/apps/{trigger_id}/delete")
    assert gone.status_code == 302 and "No app events yet" in admin.text("/triggers")
    assert json.dumps(SECRET) not in admin.text("/triggers")
