"""The audit viewer: the workspace's events filtered and paged, each one's details, the
chain verified on demand (and the seq where it breaks), exports as JSON Lines and CSV;
in a real browser and through HTTP. An auditor reads and exports; a viewer gets 403."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser

from overture.platform import audit
from overture.platform.db import db, scoped_to
from overture.web.console import audit as audit_page
from tests.console_support import HTML, WAIT_MS, Visit, browse, page_text, region
from tests.live_server import serve
from tests.test_audit_chain import tamper


def seed_events(tenant_id: Any) -> None:
    with scoped_to(tenant_id):
        for n in range(3):
            audit.record("workflow.published", target_type="workflow", target_id=f"wf-{n}",
                         details={"version": n + 1},
                         actor=audit.Actor("user", "u-1", "ada@example.com"))
        audit.record("member.invited", target_type="invitation", target_id="inv-1",
                     details={"email": "bob@example.com", "role": "operator"},
                     actor=audit.Actor("user", "u-2", "grace@example.com"))
        db.session.commit()


def break_chain(database: str, tenant_id: Any, seq: int) -> None:
    """Alter one event behind the app's back, as the table's owner could."""
    tamper(database, str(tenant_id), "UPDATE audit_events SET action = 'member.removed' "
           "WHERE seq = %s AND tenant_id = %s", seq)


def test_an_auditor_filters_verifies_and_exports(app: Any, world: Any, database: str,
                                                  browser: Browser) -> None:
    seed_events(world.tenants["a"].id)
    with serve(app) as base:
        visit = Visit.open(browser, base, "audit", world.users["a_auditor"].email,
                           accept_downloads=True)
        page = visit.page
        page.get_by_role("heading", name="Workspace A").wait_for(timeout=WAIT_MS)

        visit.go("/audit", "audit")
        rows = page.locator(".audit-table tbody tr")
        assert rows.count() >= 4
        # Newest first: the invitation, recorded last, heads the list.
        assert "member.invited" in rows.first.inner_text()
        seqs = [int(s) for s in page.locator(".audit-table tbody td.num").all_inner_texts()]
        assert seqs == sorted(seqs, reverse=True)
        page.get_by_label("Action").fill("workflow.")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**action=workflow.**", timeout=WAIT_MS)
        page.locator(".audit-table tbody tr").nth(2).wait_for(timeout=WAIT_MS)
        assert rows.count() == 3
        page.get_by_text("Show details of event").first.click()
        assert '"version": 3' in page.locator("pre.json").first.inner_text()

        page.get_by_role("link", name="Verify chain").click()
        page.get_by_text("verified up to seq").wait_for(timeout=WAIT_MS)
        visit.check("audit-verified")

        with page.expect_download(timeout=WAIT_MS) as got:
            page.get_by_role("link", name="CSV").click()
        csv = Path(got.value.path()).read_text().splitlines()
        assert csv[0].startswith("seq,occurred_at") and len(csv) == 4
        with page.expect_download(timeout=WAIT_MS) as got:
            page.get_by_role("link", name="JSON Lines").click()
        lines = [json.loads(x) for x in Path(got.value.path()).read_text().splitlines()]
        assert {e["action"] for e in lines} == {"workflow.published"}

        break_chain(database, world.tenants["a"].id, 2)
        page.goto(base + "/audit")
        page.get_by_role("link", name="Verify chain").click()
        page.get_by_text("Chain broken at seq 2").wait_for(timeout=WAIT_MS)
        visit.check("audit-broken")
        page.close()
    assert visit.foreign == [], visit.foreign
    assert visit.problems == [], visit.problems


SEQ_CELL = re.compile(r'<td class="num mono">(\d+)</td>')
EARLIER = re.compile(r'href="([^"]+)">Earlier events')


def walk_pages(auditor: Any, path: str) -> list[list[int]]:
    """Each page's seqs, following "Earlier events" to the end as a reader would."""
    pages: list[list[int]] = []
    while path:
        html_text = auditor.text(path)
        pages.append([int(s) for s in SEQ_CELL.findall(html_text)])
        link = EARLIER.search(html_text)
        path = html.unescape(link.group(1)) if link else ""
        assert len(pages) < 50, "the pager does not end"
    return pages


def test_events_are_newest_first_and_pages_continue_without_gap_or_repeat(
        app: Any, world: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(audit_page, "PER_PAGE", 3)
    seed_events(world.tenants["a"].id)
    seed_events(world.tenants["a"].id)
    auditor = browse(app, world, "a_auditor")
    auditor.post("/switch", {"tenant": world.tid("a")})
    with scoped_to(world.tenants["a"].id):
        every = [e.seq for e in audit.iter_events(audit.EventFilter())]

    pages = walk_pages(auditor, "/audit")
    assert all(len(p) == 3 for p in pages[:-1]) and 1 <= len(pages[-1]) <= 3
    assert [seq for p in pages for seq in p] == sorted(every, reverse=True)
    assert "newest first" in auditor.text("/audit")

    # A filter holds across pages: the six publications, three to a page, newest first.
    pages = walk_pages(auditor, "/audit?action=workflow.")
    published = [s for p in pages for s in p]
    assert len(pages) == 2 and len(published) == 6 and published == sorted(published)[::-1]
    last = auditor.text(f"/audit?action=workflow.&cursor={pages[0][-1]}")
    assert "Earlier events" not in last and "First page" in last


def test_filters_pages_and_permissions_through_http(app: Any, world: Any) -> None:
    seed_events(world.tenants["a"].id)
    auditor = browse(app, world, "a_auditor")
    auditor.post("/switch", {"tenant": world.tid("a")})
    text = region(auditor.get("/audit?actor=u-2"), "audit-results")
    assert "member.invited" in text and "workflow.published" not in text
    assert "No events match" in page_text(auditor.get("/audit?since=2000-01-01&until=2000-01-02"))
    bad = auditor.get("/audit?since=yesterday&until=2000-01-01")
    assert bad.status_code == 422 and "Enter a date as YYYY-MM-DD" in page_text(bad)
    # htmx asks for the results only; the verify button for the report only.
    part = auditor.client.get("/audit?action=member.", headers={
        **HTML, "HX-Request": "true", "HX-Target": "audit-results"}).get_data(as_text=True)
    assert "member.invited" in part and "<nav" not in part.split("audit-table")[0]
    report = auditor.client.get("/audit/verify", headers={**HTML, "HX-Request": "true"})
    assert "verified up to seq" in page_text(report)
    export = auditor.get("/audit/export?format=jsonl&target_type=invitation")
    assert export.status_code == 200 and export.mimetype == "application/x-ndjson"
    assert [json.loads(x)["target_id"] for x in export.get_data(as_text=True).splitlines()] \
        == ["inv-1"]

    viewer = browse(app, world, "a_viewer")
    viewer.post("/switch", {"tenant": world.tid("a")})
    assert viewer.get("/audit").status_code == 403
    assert viewer.get("/audit/export?format=csv").status_code == 403
