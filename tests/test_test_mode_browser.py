"""Test mode in the console, in a real browser: a replay's "Compare with source run"
panel (the changed agent step with its line diff, the other steps unchanged), the test
marks in the run list, the agent's A/B form and its table. Each page passes axe and the
CSP; screenshots go to build/screenshots/testmode/."""

from __future__ import annotations

from typing import Any

import pytest

from tests.billing_support import Inbox
from tests.console_support import WAIT_MS, Visit
from tests.engine_api_support import ok
from tests.engine_support import Receiver
from tests.live_server import serve
from tests.test_replay import recorded

pytestmark = pytest.mark.usefixtures("loopback_allowed")  # the receiver is on loopback


def test_test_mode_browser_compare_panel_and_ab_table(app: Any, world: Any, inbox: Inbox,
                                                       receiver: Receiver,
                                                       browser: Any) -> None:
    api, _wf, agent_id, sources = recorded(app, world, inbox, receiver, runs=3)
    replay = ok(api.post(f"/runs/{sources[0]}/replay", json={
        "agent_versions": [{"agent_id": str(agent_id), "version": 2}]}), 202)
    inbox.drain()
    with serve(app) as base:
        visit = Visit.open(browser, base, "testmode", email=world.users["a_admin"].email)
        page = visit.page

        visit.go(f"/runs/{replay['id']}", "replay-compare")
        panel = page.locator(".run-compare")
        assert "Test run" in page.locator(".run-head").inner_text()
        assert "2 changed · 2 unchanged" in panel.inner_text()
        write = page.locator(".compare-step", has_text="write")
        assert "Changed" in write.inner_text()
        assert write.locator(".diff-add", has_text="+your refund was sent today.").count() == 1
        assert write.locator(".diff-del", has_text="-your refund is on its way.").count() == 1
        assert "Unchanged" in page.locator(".compare-step", has_text="notify").inner_text()

        visit.go("/runs", "runs-with-test")
        assert page.locator("#runs-list .badge-test").count() == 1
        visit.go("/runs?mode=test", "runs-test-only")
        assert page.locator("#runs-list tbody tr").count() == 1

        visit.go(f"/agents/{agent_id}", "agent-compare-form")
        page.get_by_label("Last runs").fill("3")
        page.get_by_role("button", name="Compare").click()
        page.get_by_role("heading", name="Version 1 vs version 2").wait_for(timeout=WAIT_MS)
        assert page.get_by_text("Replays still running").count() == 1
        visit.photograph("ab-table-running")
        inbox.drain()  # the replays run here
        page.reload()
        page.get_by_text("Differ").first.wait_for(timeout=WAIT_MS)
        visit.check("ab-table")
        assert page.locator("tbody tr").count() == 3
        assert page.locator(".ab-differ").count() == 3
    assert len(receiver.hits_to("/notify")) == 3  # nothing sent by any test run
    assert visit.foreign == [] and visit.problems == []
