"""The console's Connections and Triggers pages (`-k console_connections`).

In a real browser a workspace admin connects GitHub from the catalogue (the form is
generated from the connector's auth schema; the token field is write-only), sees the
token masked and absent from the page, tests the connection against a local server,
adds a schedule and reads its next five times, copies a webhook URL and rotates its
signing secret (shown once). Axe finds nothing serious, nothing loads from another
host; screenshots go to build/screenshots/connections/. Then, through the test client:
what a viewer and an operator may not do (the server refuses forged posts), a template
placeholder filled in, and OAuth2 coming back to the connection's page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser

from overture.connectors import connections
from overture.orchestration import workflows
from overture.platform.db import db, scoped_to
from overture.tenants.access import Principal, access_to
from tests.console_support import WAIT_MS, WIDTHS, Visit, browse, page_text, sign_in
from tests.console_support import Browser as Client
from tests.support import as_user

TOKEN = "ghp_browser_journey_secret_7Q"


@pytest.fixture
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


def seed_workflow(world: Any, name: str = "Weekly report") -> Any:
    with scoped_to(world.tenants["a"].id):
        workflow = workflows.create_workflow(name, draft={"steps": [
            {"id": "report", "type": "transform", "output": "ok"}]})
        db.session.commit()
        return workflow.id


def test_console_connections_journey(app: Any, world: Any, browser: Browser, httpserver: Any,
                                     allow_loopback: None) -> None:
    from tests.live_server import serve

    httpserver.expect_request("/user", headers={"Authorization": f"Bearer {TOKEN}"}) \
        .respond_with_json({"login": "octocat"})
    seed_workflow(world)
    tenant, user = world.tenants["a"], world.users["a_admin"]
    with scoped_to(tenant.id, user_id=user.id):  # as a template leaves it
        connections.create_placeholder(
            access_to(Principal(user), tenant), connector_key="http", name="Billing API",
            base_url="https://billing.example.com")
        db.session.commit()
    with serve(app) as base:
        context = browser.new_context(viewport={"width": WIDTHS[0], "height": 900},
                                      permissions=["clipboard-read", "clipboard-write"])
        page = context.new_page()
        visit = Visit(page, base, "connections")
        sign_in(page, base, world.users["a_admin"].email)
        page.wait_for_url(base + "/", timeout=WAIT_MS)

        page.goto(base + "/connections")
        page.get_by_text("Placeholder: credentials to fill in").wait_for(timeout=WAIT_MS)
        page.get_by_role("link", name="New connection").click()
        visit.check("catalogue")
        page.get_by_role("link", name="GitHub").first.click()
        page.get_by_label("Name").fill("GitHub (acme)")
        secret = page.get_by_label("API key")
        assert secret.get_attribute("type") == "password"
        secret.fill(TOKEN)
        page.get_by_label("Base URL").fill(httpserver.url_for("/"))
        visit.check("connection-new")
        page.get_by_role("button", name="Save connection").click()

        page.get_by_text("GitHub (acme) is connected.").wait_for(timeout=WAIT_MS)
        assert "••••••••" in page.locator("#credential-fields").inner_text()
        assert TOKEN not in page.content()
        page.get_by_role("button", name="Test connection").click()
        page.get_by_text("Signed in to GitHub as octocat").wait_for(timeout=WAIT_MS)
        visit.check("connection")

        page.goto(base + "/connections")
        row = page.locator("#connections tbody tr", has_text="GitHub (acme)")
        assert "passed" in row.inner_text()
        assert TOKEN not in page.content()
        visit.check("connections")

        page.get_by_role("link", name="Billing API").click()
        page.get_by_text("This connection was made from a template").wait_for(timeout=WAIT_MS)
        assert page.get_by_label("Bearer token (optional)").get_attribute("type") == "password"
        visit.check("connection-placeholder")

        page.get_by_role("link", name="Triggers").click()
        page.get_by_label("Cron (minute hour day month weekday)").fill("30 8 * * 1-5")
        page.get_by_label("Time zone").fill("Europe/Paris")
        page.get_by_role("button", name="Add schedule").click()
        page.get_by_text("Weekly report now runs on").wait_for(timeout=WAIT_MS)
        ticks = page.locator("#schedules ol.ticks li")
        assert ticks.count() == 5 and "08:30" in ticks.first.inner_text()

        url = page.get_by_label("Webhook URL of Weekly report").input_value()
        page.get_by_role("button", name="Copy the webhook URL of Weekly report").click()
        page.get_by_role("button", name="Copied").wait_for(timeout=WAIT_MS)
        assert page.evaluate("navigator.clipboard.readText()") == url
        visit.check("triggers")

        page.get_by_role("button", name="Require signatures for Weekly report").click()
        shown = page.get_by_label("New signing secret", exact=True).input_value()
        assert shown.startswith("whsec_")
        visit.check("webhook-secret")
        page.goto(base + "/triggers")
        assert shown not in page.content()
        assert page.get_by_role("button", name="Rotate secret for Weekly report").count() == 1
        context.close()
    assert visit.foreign == [], visit.foreign
    assert visit.problems == [], visit.problems


def test_console_connections_refuse_what_the_role_may_not_do(app: Any, world: Any) -> None:
    workflow_id = seed_workflow(world)
    viewer = browse(app, world, "a_viewer")
    assert viewer.get("/connections").status_code == 403
    triggers = viewer.text("/triggers")
    assert "Add schedule" not in triggers and "Require signatures" not in triggers
    for path in ("/triggers/schedules", f"/triggers/webhooks/{workflow_id}/rotate"):
        assert viewer.post(path, {"workflow_id": str(workflow_id), "cron": "* * * * *"}) \
            .status_code == 403

    operator = browse(app, world, "a_operator")  # reads credentials, manages none
    listing = operator.text("/connections")
    assert "New connection" not in listing
    forged = operator.post("/connections/new?connector=github",
                           {"name": "x", "f_api_key": "ghp_forged"})
    assert forged.status_code == 403 and "ghp_forged" not in forged.get_data(as_text=True)

    admin = browse(app, world, "a_admin")
    bad = admin.post("/connections/new?connector=github",
                     {"name": "GH", "f_api_key": "ghp_kept_out", "base_url": "ftp://nope"})
    assert bad.status_code == 422 and "ghp_kept_out" not in bad.get_data(as_text=True)
    assert "Must be an http(s) URL with a host" in page_text(bad)
    bad = admin.post("/triggers/schedules", {"workflow_id": str(workflow_id),
                                             "cron": "every day", "timezone": "Mars/Base"})
    assert bad.status_code == 422 and "Not a cron expression" in page_text(bad)


def test_console_connections_placeholder_is_filled_in_and_oauth_comes_back(
        app: Any, world: Any, httpserver: Any, allow_loopback: None) -> None:
    tenant, user = world.tenants["a"], world.users["a_admin"]
    with scoped_to(tenant.id, user_id=user.id):
        access = access_to(Principal(user), tenant)
        placeholder = connections.create_placeholder(access, connector_key="github",
                                                     name="GitHub from template")
        oauth = connections.create(
            access, connector_key="slack", name="Slack", base_url=httpserver.url_for("/api"),
            credential_fields={"client_id": "cid", "client_secret": "slack-client-secret"},
            settings={"authorize_url": httpserver.url_for("/authorize"),
                      "token_url": httpserver.url_for("/api/oauth.v2.access")})
        db.session.commit()
        placeholder_id, oauth_id = placeholder.id, oauth.id
    api = as_user(app, world, "a_admin")
    admin = Client(api.client, api.csrf)

    listing = admin.text("/connections")
    assert "Placeholder: credentials to fill in" in listing
    path = f"/connections/{placeholder_id}"
    untested = admin.post(f"{path}/test")  # nothing to test with yet: said, not a 500
    assert untested.status_code == 200 and "The test failed." in page_text(untested)
    assert admin.post(f"{path}/credentials", {"f_api_key": ""}).status_code == 422
    filled = admin.post(f"{path}/credentials", {"f_api_key": "ghp_filled_in"})
    assert filled.status_code == 302
    shown = admin.text(path)
    assert "ghp_filled_in" not in shown and "••••••••" in shown and "Active" in shown

    httpserver.expect_request("/api/oauth.v2.access", method="POST").respond_with_json(
        {"ok": True, "access_token": "xoxb-1", "token_type": "bot", "expires_in": 43200,
         "refresh_token": "xoxe-1", "team": {"id": "T1"}})
    page = admin.text(f"/connections/{oauth_id}")
    assert "Pending" in page and "slack-client-secret" not in page
    started = admin.post(f"/connections/{oauth_id}/authorize")
    assert started.status_code == 302
    state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    back = api.client.get(f"/oauth/callback?code=the-code&state={state}")
    assert back.status_code == 302 and back.headers["Location"] == f"/connections/{oauth_id}"
    assert "Active" in admin.text(f"/connections/{oauth_id}")


def test_console_triggers_polling_is_added_paused_and_a_bad_edit_is_explained(
        app: Any, world: Any) -> None:
    workflow_id = seed_workflow(world, "Inbox triage")
    admin = browse(app, world, "a_admin")
    made = admin.post("/connections/new?connector=imap", {
        "name": "Support inbox", "f_host": "imap.example.com", "f_username": "support",
        "f_password": "imap-secret-value"})
    assert made.status_code == 302, page_text(made)
    conn_id = made.headers["Location"].rsplit("/", 1)[1]

    page = admin.text("/triggers")
    assert "Support inbox: " in page and "imap-secret-value" not in page
    source = f"{conn_id}:new_email"
    bad = admin.post("/triggers/polling", {"workflow_id": str(workflow_id), "source": source,
                                           "interval": "5"})
    assert bad.status_code == 422 and "Whole seconds from 15" in page_text(bad)
    added = admin.post("/triggers/polling", {"workflow_id": str(workflow_id),
                                             "source": source, "interval": "600"})
    assert added.status_code == 302
    listing = admin.get("/triggers")
    assert "new_email" in page_text(listing) and "10 min" in page_text(listing)

    created = admin.post("/triggers/schedules", {"workflow_id": str(workflow_id),
                                                 "cron": "0 7 * * *", "timezone": "UTC"})
    assert created.status_code == 302
    html = admin.text("/triggers")
    schedule_id = html.split("/triggers/schedules/")[1].split("/")[0].split('"')[0]
    edit = admin.post(f"/triggers/schedules/{schedule_id}", {"cron": "0 7 * *",
                                                              "timezone": "UTC"})
    assert edit.status_code == 422 and "Not a cron expression" in page_text(edit)
    paused = admin.post(f"/triggers/schedules/{schedule_id}/toggle")
    assert paused.status_code == 302 and "Paused" in admin.text("/triggers")
