"""The console's Events pages in a real browser (Debian's Chromium, the real app on a
real server): A's admin finds the empty state, is told beside the field that a URL the
platform may not reach is refused, adds an endpoint (its secret shown once), sends a
test ping that a local receiver checks with the `standardwebhooks` verifier, reads the
delivery log, redelivers, and rotates the secret. Each page is checked with axe-core
and photographed at 1400 and 390 pixels wide (build/screenshots/events/)."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from tests.console_support import WAIT_MS, Visit
from tests.events_support import Receiver
from tests.live_server import serve
from tests.support import World


def test_an_admin_subscribes_tests_redelivers_and_rotates(
        app: Any, world: World, browser: Any, httpserver: HTTPServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = Receiver(httpserver)
    with serve(app) as base:
        visit = Visit.open(browser, base, "events", world.users["a_admin"].email)
        page = visit.page
        page.get_by_role("link", name="Events").click()
        page.get_by_role("heading", name="Events", exact=True).wait_for(timeout=WAIT_MS)
        assert "No endpoints yet" in page.locator("main").inner_text()
        visit.check("events-empty")

        page.get_by_label("Endpoint URL").fill("http://169.254.169.254/latest/meta-data")
        page.get_by_label("run.failed").check()
        page.get_by_role("button", name="Add endpoint").click()
        error = page.locator("#url-error")
        error.wait_for(timeout=WAIT_MS)
        assert "may not send there" in error.inner_text()
        visit.check("events-refused-url")

        monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.0/8")
        page.get_by_label("Endpoint URL").fill(receiver.url)
        page.get_by_label("Description").fill("Our CRM")
        page.get_by_role("button", name="Add endpoint").click()
        secret = page.locator("#new-secret")
        secret.wait_for(timeout=WAIT_MS)
        receiver.secrets = [secret.input_value()]
        assert receiver.secrets[0].startswith("whsec_")
        visit.check("events-created")

        page.get_by_role("link", name="Open the subscription").click()
        page.get_by_role("button", name="Send a test ping").click()
        page.get_by_text("The test ping was received").wait_for(timeout=WAIT_MS)
        (ping,) = receiver.of_type("ping")
        assert ping.verified_with == receiver.secrets
        assert ping.webhook_id in page.locator("main").inner_text()
        visit.check("events-log")

        page.get_by_role("button", name=f"Redeliver {ping.webhook_id}").click()
        page.get_by_text("The redelivery was received").wait_for(timeout=WAIT_MS)
        assert [r.webhook_id for r in receiver.of_type("ping")] == [ping.webhook_id] * 2

        page.get_by_role("button", name="Rotate the secret").click()
        rotated = page.locator("#new-secret")
        rotated.wait_for(timeout=WAIT_MS)
        assert rotated.input_value() not in ("", receiver.secrets[0])
        visit.check("events-rotated")
