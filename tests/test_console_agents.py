"""The console's Agents and Knowledge pages. In a real browser (Debian's Chromium driven by
Playwright, against the real app): a builder creates a knowledge collection, uploads a
small text file, searches it and sees the chunk; creates an agent with the offline
`local` provider that reads that collection, chats with it and sees the reply; and
sees its performance. Through the test client: what a viewer may see and what the
server refuses, and field errors beside their fields. Axe finds no serious or critical
violation on any page, nothing loads from another host, no CSP rule is broken.

Screenshots, 1400 and 390 pixels wide, go to build/screenshots/agents/.
"""

from __future__ import annotations

import io
from typing import Any

from overture.orchestration.agents import knowledge, service
from overture.platform.db import db, scoped_to
from tests.console_support import HTML, WAIT_MS, Visit, browse, page_text
from tests.live_server import serve

FAQ = ("Refunds are issued within 14 days of the return reaching our warehouse. "
       "Shipping to Norway takes three to five working days. "
       "Our support desk answers by email from 8 to 18 on weekdays.\n")


def _seed(world: Any) -> tuple[str, str]:
    """An agent and a collection with one document in workspace A."""
    with scoped_to(world.tenants["a"].id):
        collection = knowledge.create_collection("faq")
        knowledge.add_document(collection, "Returns", FAQ)
        agent = service.create_agent("desk", {"model": {"provider": "local",
                                                        "model": "wordllama"}})
        db.session.commit()
        return str(agent.id), str(collection.id)


def _seed_calls(tenant_id: Any, agent_name: str, succeeded: int, failed: int) -> None:
    """Workflow steps that called the agent, as the engine records them (without running
    it): what the performance section counts."""
    from datetime import timedelta
    from decimal import Decimal

    from overture.billing.usage import UsageEvent, record_usage
    from overture.orchestration import workflows
    from overture.orchestration.agents.runtime import INVOCATIONS
    from overture.orchestration.models import Run, StepRun
    from overture.platform.db import utcnow

    now = utcnow()
    with scoped_to(tenant_id):
        agent_id = service.load_current(agent_name).agent_id
        workflow = workflows.create_workflow("Support inbox", draft={"steps": [
            {"id": "answer", "type": "transform", "output": "ok"}]})
        version = workflows.publish(workflow, None)
        for i in range(succeeded + failed):
            ok = i < succeeded
            run = Run(workflow_id=workflow.id, version_id=version.id, trigger="api",
                      status="succeeded" if ok else "failed", input={}, started_at=now,
                      finished_at=now)
            db.session.add(run)
            db.session.flush()
            db.session.add(StepRun(
                run_id=run.id, step_id="answer", step_type="agent",
                status="succeeded" if ok else "failed",
                output={"status": "ok", "confidence": 0.9} if ok else None,
                started_at=now - timedelta(seconds=i + 1), finished_at=now))
            db.session.add(UsageEvent(metric=INVOCATIONS, quantity=Decimal(1), run_id=run.id,
                                      step_id="answer", agent_id=agent_id))
        record_usage("llm_input_tokens", 5200, agent_id=agent_id)
        record_usage("llm_cost", Decimal("0.0312"), agent_id=agent_id)
        db.session.commit()


def test_a_viewer_reads_but_cannot_change_and_a_forged_post_is_refused(app, world):
    agent_id, collection_id = _seed(world)
    viewer = browse(app, world, "a_viewer")
    listing = page_text(viewer.get("/agents"))
    assert "desk" in listing and "local" in listing and "New agent" not in listing
    detail = viewer.text(f"/agents/{agent_id}")
    assert "Edit" not in page_text_of_actions(detail) and 'name="content"' not in detail
    collections = page_text(viewer.get("/knowledge"))
    assert "faq" in collections and "Create collection" not in collections
    page = viewer.text(f"/knowledge/{collection_id}")
    assert "Returns" in page and "Upload" not in page and "Delete" not in page
    for path, data in [("/agents", {"name": "x", "provider": "local", "model": "m"}),
                       (f"/agents/{agent_id}", {"name": "desk2"}),
                       (f"/agents/{agent_id}/archive", {}),
                       (f"/agents/{agent_id}/chat", {"content": "hello"}),
                       ("/knowledge", {"name": "mine"}),
                       (f"/knowledge/{collection_id}/delete", {})]:
        assert viewer.post(path, data).status_code == 403, path
    # Still there, unchanged.
    assert "desk" in page_text(viewer.get("/agents"))
    assert "faq" in page_text(viewer.get("/knowledge"))
    # Search is reading: the viewer may search and sees the ranked chunk.
    found = viewer.client.get(f"/knowledge/{collection_id}/search?q=refund+days",
                              headers={**HTML, "HX-Request": "true"})
    assert "Refunds are issued within 14 days" in page_text(found) and "score" in page_text(found)


def page_text_of_actions(html: str) -> str:
    start = html.index('class="page-actions"')
    return html[start:start + 800]


def test_errors_show_beside_their_fields_and_bad_input_is_no_500(app, world):
    agent_id, collection_id = _seed(world)
    builder = browse(app, world, "a_builder")
    taken = builder.post("/agents", {"name": "desk", "provider": "local", "model": "wordllama",
                                     "temperature": "hot", "tool_rows": "2"})
    assert taken.status_code == 422
    assert 'id="temperature-error"' in taken.get_data(as_text=True)
    no_model = builder.post("/agents", {"name": "triage", "provider": "local", "model": ""})
    assert no_model.status_code == 422 and 'id="model-error"' in no_model.get_data(as_text=True)
    bad = builder.post("/agents", {"name": "triage", "provider": "local", "model": "m",
                                   "tool_rows": "1", "tool-0-kind": "agent",
                                   "tool-0-ref": "nobody"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert 'id="tool-0-ref-error"' in html and "No agent named" in html
    # An upload that is not text is refused beside the file field.
    upload = builder.client.post(
        f"/knowledge/{collection_id}/documents",
        data={"csrf_token": builder.csrf, "file": (io.BytesIO(b"\xff\xfe\x00"), "x.bin")},
        content_type="multipart/form-data", headers={"Accept": "text/html"})
    assert upload.status_code == 422 and "Must be UTF-8 text" in page_text(upload)
    assert builder.get("/agents/not-an-id").status_code == 404
    empty = builder.post(f"/agents/{agent_id}/chat", {"content": "  "})
    assert empty.status_code == 422 and "Write a message first" in page_text(empty)
    # An edit keeps what the form does not show and makes a new version.
    saved = builder.post(f"/agents/{agent_id}", {"name": "desk", "provider": "local",
                                                 "model": "wordllama", "tool_rows": "0",
                                                 "knowledge": "faq", "instructions": "Hi"})
    assert saved.status_code == 302
    assert "v2" in page_text(builder.get(f"/agents/{agent_id}"))


def test_a_builder_builds_knowledge_and_an_agent_and_chats_with_it(app, world, browser,
                                                                  tmp_path):
    faq = tmp_path / "returns-faq.txt"
    faq.write_text(FAQ)
    with serve(app) as base:
        visit = Visit.open(browser, base, "agents", world.users["a_builder"].email)
        page = visit.page
        page.get_by_role("link", name="Agents").wait_for(timeout=WAIT_MS)

        visit.go("/knowledge", "knowledge-empty")
        page.get_by_label("Name").fill("support-faq")
        page.get_by_label("Description").fill("Returns, shipping and opening hours")
        page.get_by_role("button", name="Create collection").click()
        page.get_by_role("heading", name="support-faq").wait_for(timeout=WAIT_MS)
        visit.check("collection-empty")
        page.get_by_label("Text file").set_input_files(str(faq))
        page.get_by_role("button", name="Upload").click()
        page.get_by_text("returns-faq added").wait_for(timeout=WAIT_MS)
        page.get_by_label("Search support-faq").fill("how long until my refund")
        result = page.locator("#search-results .result").first
        result.wait_for(timeout=WAIT_MS)
        assert "Refunds are issued within 14 days" in result.inner_text()
        assert "score" in result.inner_text()
        visit.check("collection")
        page.locator("#documents").get_by_role("link", name="returns-faq").click()
        page.get_by_role("heading", name="Chunks").wait_for(timeout=WAIT_MS)
        visit.check("document")

        visit.go("/agents", "agents-empty")
        page.get_by_role("link", name="New agent").click()
        page.get_by_label("Name", exact=True).fill("support-desk")
        page.get_by_label("Role", exact=True).fill("answers customers from the FAQ")
        page.get_by_label("Provider", exact=True).select_option("local")
        page.get_by_label("Model", exact=True).fill("wordllama")
        page.get_by_label("support-faq").check()
        visit.check("agent-new")
        page.get_by_role("button", name="Create agent").click()
        page.get_by_text("Agent support-desk created").wait_for(timeout=WAIT_MS)

        page.get_by_label("Message").fill("When do I get my refund?")
        page.get_by_role("button", name="Send").click()
        reply = page.locator("#chat .msg-assistant").first
        reply.wait_for(timeout=WAIT_MS)
        assert "Refunds are issued within 14 days" in reply.inner_text()
        assert page.locator("#chat .msg-user").first.inner_text().endswith(
            "When do I get my refund?")
        _seed_calls(world.tenants["a"].id, "support-desk", succeeded=9, failed=1)
        page.get_by_role("link", name="30 days").click()
        page.locator('#performance [aria-current="true"]', has_text="30 days").wait_for(
            timeout=WAIT_MS)
        numbers = page.locator("#performance").inner_text()
        assert "90.0%" in numbers and "5,200" in numbers and "$0.0312" in numbers
        visit.check("agent")
        visit.go("/agents", "agents")
        assert page.locator("#agents tbody tr").count() == 1
        page.close()
    assert visit.foreign == [], visit.foreign
    assert visit.problems == [], visit.problems
