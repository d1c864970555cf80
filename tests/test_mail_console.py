"""The console's mail pages (`-k mail`): the Mail server page (where mail leaves, the
form, a test message followed until it leaves) and a workflow's failure alerts. A viewer
sees the state but no controls, and a forged post is refused."""

from __future__ import annotations

import re
import uuid
from html import unescape
from typing import Any

import pytest

from overture.platform import mail, mail_delivery
from tests.console_support import browse, page_text, region
from tests.engine_api_support import ok
from tests.mail_support import smtp_server
from tests.support import as_user

HTMX = {"HX-Request": "true", "Accept": "text/html"}


@pytest.fixture
def handed(app_ctx, monkeypatch) -> list[uuid.UUID]:
    found: list[uuid.UUID] = []
    monkeypatch.setitem(app_ctx.extensions, mail.SENDER,
                        lambda message_id, delay_ms: found.append(message_id))
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.0/8")
    return found


def test_mail_server_page_sets_a_server_and_follows_a_test_message(app, world, handed,
                                                                   monkeypatch):
    admin = browse(app, world, "a_admin")
    first = admin.get("/mail-server")
    assert first.status_code == 200
    assert "Through this service's own mail server" in unescape(region(first, "mail-route"))
    assert "Save mail server" in page_text(first)

    refused = admin.post("/mail-server", {"host": "smtp example", "from_address": "nobody",
                                          "username": "mailer", "password": ""})
    assert refused.status_code == 422
    words = unescape(page_text(refused))
    assert "Nothing was saved" in words and "Enter the server's host name" in words
    assert 'value="smtp example"' in refused.get_data(as_text=True), "the form is kept"

    with smtp_server() as (port, box):
        saved = admin.post("/mail-server", {
            "host": "127.0.0.1", "port": str(port), "security": "none",
            "from_address": "hello@ws-a.example", "username": "", "password": ""})
        assert saved.status_code == 302
        page = admin.get("/mail-server")
        assert f"Through your own server, 127.0.0.1:{port}" in region(page, "mail-route")
        assert "Mail server saved" in page_text(page)

        # Without script: the test message's page, pending until the worker sends it.
        sent = admin.post("/mail-server/test")
        assert sent.status_code == 302 and "?test=" in sent.headers["Location"]
        waiting = admin.get(sent.headers["Location"])
        assert "Sending…" in region(waiting, "mail-test")
        assert 'hx-trigger="every 2s"' in waiting.get_data(as_text=True)
        app.extensions[mail_delivery.EXTENSION].fn(str(handed[-1]))
        done = admin.client.get(f"/mail-server/test/{handed[-1]}", headers=HTMX)
        assert done.status_code == 200 and "Sent." in page_text(done)
        assert "hx-trigger" not in done.get_data(as_text=True), "no more polling"
        (received,) = box.messages(world.users["a_admin"].email)
        assert received["From"].endswith("<hello@ws-a.example>")

        # With htmx: the answer replaces the slot.
        partial = admin.client.post("/mail-server/test", data={"csrf_token": admin.csrf},
                                    headers=HTMX)
        assert partial.status_code == 200 and "Sending…" in page_text(partial)

    removed = admin.post("/mail-server/remove")
    assert removed.status_code == 302
    assert "Through this service's own mail server" in unescape(
        region(admin.get("/mail-server"), "mail-route"))


def test_mail_server_page_shows_a_viewer_no_controls_and_refuses_forged_posts(app, world,
                                                                               handed):
    viewer = browse(app, world, "a_viewer")
    page = viewer.get("/mail-server")
    assert page.status_code == 200 and "Where mail leaves now" in page_text(page)
    html = page.get_data(as_text=True)
    assert "Save mail server" not in html and "Send a test message" not in html
    for path in ("/mail-server", "/mail-server/test", "/mail-server/remove"):
        assert viewer.post(path, {"host": "127.0.0.1", "from_address": "x@ws-a.example"}
                           ).status_code == 403, path
    assert handed == []


def alerts_form(response: Any) -> str:
    return region(response, "alerts")


def test_workflow_page_turns_failure_alerts_on_for_the_staff_named(app, world):
    builder_api = as_user(app, world, "a_builder")
    made = ok(builder_api.post("/workflows", json={"name": "Charges", "definition": {
        "steps": [{"id": "t", "type": "transform", "output": "ok"}]}}), 201)
    path = f"/workflows/{made['id']}"
    builder = browse(app, world, "a_builder")
    page = builder.get(path)
    assert "Off: failed runs are not mailed" in alerts_form(page)
    assert "Save alerts" in page.get_data(as_text=True)

    refused = builder.post(f"{path}/alerts", {"failure_alerts": "on", "failure_recipients":
                                              "a.admin@people.example.com\n"
                                              "stranger@else.example.com"})
    assert refused.status_code == 422
    assert ("Failure alerts go to this workspace's staff only, and this is not a member: "
            "stranger@else.example.com.") in unescape(alerts_form(refused))
    assert "stranger@else.example.com" in refused.get_data(as_text=True), "kept in the form"
    assert ok(builder_api.get(f"/workflows/{made['id']}"))["failure_alerts"] is False

    saved = builder.post(f"{path}/alerts", {"failure_alerts": "on", "failure_recipients":
                                            "a.admin@people.example.com, "
                                            "A.Operator@people.example.com"})
    assert saved.status_code == 302 and saved.headers["Location"].endswith("#alerts")
    state = alerts_form(builder.get(path))
    assert re.search(r"On: each run that fails or times out is mailed to "
                     r"a\.admin@people\.example\.com, a\.operator@people\.example\.com", state)

    viewer = browse(app, world, "a_viewer")
    seen = viewer.get(path)
    assert "On: each run" in alerts_form(seen) and "Save alerts" not in seen.get_data(
        as_text=True)
    assert viewer.post(f"{path}/alerts", {"failure_alerts": ""}).status_code == 403
    assert ok(builder_api.get(f"/workflows/{made['id']}"))["failure_alerts"] is True
