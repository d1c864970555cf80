"""Templates in the console: an agency snapshots a client workspace as a template,
provisions new client workspaces from it (from its page and from the new-workspace
form) and sees the connections and the signed webhook left to fill in, snapshots v2,
rolls it out to three workspaces with a canary (one client's unpublished draft is kept
and the page says so) and rolls it back; in a real browser. Through HTTP: a viewer
gets 403 (a forged post too) and a client workspace is told templates are the agency's."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser

from overture.orchestration.templates.catalogue import use_cases
from tests.console_support import WAIT_MS, Visit, browse, page_text
from tests.engine_api_support import ok
from tests.live_server import serve
from tests.support import as_key
from tests.test_templates_rollout import agent_config, build_source, definition


def test_an_agency_makes_provisions_rolls_out_and_rolls_back(
        app: Any, world: Any, browser: Browser) -> None:
    api = as_key(app, world, "nw_admin", tenant="northwind")
    a = world.tid("a")
    source = build_source(api, a)
    signing = ok(api.post("/credentials", tenant=a, json={
        "name": "signing", "kind": "custom", "fields": {"secret": "whsec_source_only"},
        "secret_fields": ["secret"]}), 201)
    ok(api.patch(f"/workflows/{source['workflow']['id']}", tenant=a,
                 json={"webhook_credential_id": signing["id"]}))
    with serve(app) as base:
        visit = Visit.open(browser, base, "templates", world.users["nw_owner"].email)
        page = visit.page
        page.get_by_role("heading", name="Client workspaces").wait_for(timeout=WAIT_MS)

        visit.go("/templates", "templates-empty")
        page.get_by_label("Name").fill("Support desk")
        page.get_by_label("Snapshot of").select_option(label="Workspace A")
        page.get_by_role("button", name="Create template").click()
        page.get_by_text("Template Support desk created").wait_for(timeout=WAIT_MS)
        template_url = page.url

        # Provisioned from the template's page: the connections left to fill in.
        page.get_by_label("Workspace name").fill("Client One")
        page.get_by_role("button", name="Provision").click()
        page.get_by_role("heading", name="Workspace Client One created").wait_for(
            timeout=WAIT_MS)
        todo = page.locator("#still-to-fill").inner_text()
        assert "gh" in todo and "mail" in todo and "imap" in todo
        assert "intake" in todo and "Webhook · signed" in todo
        visit.check("provisioned")
        # And from the new-workspace form, choosing the template.
        for name in ("Client Two", "Client Three"):
            visit.go("/workspaces/new", "workspace-new-from-template")
            page.get_by_label("Name", exact=True).fill(name)
            page.get_by_label("A template").check()
            page.get_by_label("Template", exact=True).select_option(label="Support desk (v1)")
            page.get_by_role("button", name="Create workspace").click()
            page.get_by_role("heading", name=f"Workspace {name} created").wait_for(
                timeout=WAIT_MS)

        # Client One is half way through an edit of its own, not published.
        clients = {t["name"]: t["id"] for t in ok(api.get("/tenants"))["items"]}
        mine = ok(api.get("/workflows", tenant=clients["Client One"]))["items"][0]
        edited = {"steps": [{**step, "input": {**step["input"], "title": "ours"}}
                            if step["id"] == "file" else step
                            for step in mine["definition"]["steps"]]}
        ok(api.patch(f"/workflows/{mine['id']}", tenant=clients["Client One"],
                     json={"definition": edited}))

        # Workspace A changes; the agency snapshots it as v2.
        ok(api.patch(f"/workflows/{source['workflow']['id']}", tenant=a, json={
            "definition": definition(source["connection"]["id"], extra=True)}))
        ok(api.post(f"/workflows/{source['workflow']['id']}/publish", tenant=a), 201)
        ok(api.patch(f"/agents/{source['agent']['id']}", tenant=a,
                     json={"config": agent_config("Sort, then file.")}))
        page.goto(template_url)
        page.get_by_label("New version from").select_option(label="Workspace A")
        page.get_by_role("button", name="Snapshot as v2").click()
        page.get_by_text("Version 2 of Support desk snapshotted.").wait_for(timeout=WAIT_MS)
        visit.check("template")

        page.get_by_label("Version", exact=True).select_option("2")
        for name in ("Client One", "Client Two", "Client Three"):
            page.get_by_role("checkbox", name=name, exact=True).check()
        page.get_by_role("checkbox", name="Canary Client Two").check()
        page.get_by_label("Stop on the first failure").check()
        page.get_by_role("button", name="Start roll-out").click()
        page.get_by_role("heading", name="Roll-out of Support desk v2").wait_for(
            timeout=WAIT_MS)
        rows = page.locator("#rollout-workspaces tbody tr")
        first = rows.first.inner_text()
        assert "Client Two" in first and "canary" in first  # the canary goes first
        assert [r.get_attribute("data-status") for r in rows.all()] == ["applied"] * 3
        kept = rows.filter(has_text="Client One").inner_text()
        assert "intake: the workspace's unpublished draft was kept" in kept
        visit.check("rollout-completed")

        page.get_by_role("button", name="Roll back").click()
        page.get_by_text("Rolled back: every workspace").wait_for(timeout=WAIT_MS)
        assert [r.get_attribute("data-status") for r in rows.all()] == ["rolled_back"] * 3
        assert page.locator("#rollout-workspaces").inner_text().count("Rolled back") == 3
        assert page.get_by_role("button", name="Roll back").count() == 0
        visit.check("rollout-rolled-back")
        visit.go("/templates", "templates")
        page.close()
    # Every workspace is back on v1; Client One's own draft went through both untouched.
    for name in ("Client One", "Client Two", "Client Three"):
        flow = ok(api.get("/workflows", tenant=clients[name]))["items"][0]
        assert flow["current_version"] == 1, name
    assert ok(api.get(f"/workflows/{mine['id']}",
                      tenant=clients["Client One"]))["definition"] == edited
    assert visit.foreign == [], visit.foreign
    assert visit.problems == [], visit.problems


def test_permissions_and_refusals_through_http(app: Any, world: Any) -> None:
    viewer = browse(app, world, "nw_viewer")
    assert viewer.get("/templates").status_code == 403
    assert viewer.post("/templates", {"name": "Sneaky", "workspace_id": world.tid("a")}) \
        .status_code == 403
    assert "Templates" not in page_text(viewer.get("/profile"))

    owner = browse(app, world, "nw_owner")
    assert "No templates yet" in page_text(owner.get("/templates"))
    refused = owner.post("/templates", {"name": "", "workspace_id": world.tid("a")})
    assert refused.status_code == 422
    refused = owner.post("/templates", {"name": "Desk", "workspace_id": world.tid("c")})
    assert refused.status_code == 422 and "Not a client workspace of this agency" \
        in page_text(refused)
    # From a template, with none chosen: said beside the field, nothing made.
    new = owner.post("/workspaces/new", {"name": "X", "source": "template", "template_id": ""})
    assert new.status_code == 422 and "Choose one of the templates" in page_text(new)

    # The ready-made use cases are offered; adding one lists it among the templates.
    listed = page_text(owner.get("/templates"))
    for use_case in use_cases().values():
        assert use_case.name in listed and use_case.summary in listed
    added = owner.post("/templates/use-cases", {"use_case": "sales-leads"})
    assert added.status_code == 302
    assert "Ready-made use case" in page_text(owner.get(added.headers["Location"]))
    listed = page_text(owner.get("/templates"))
    assert "Sales lead qualification" in listed and "Ready-made use case" in listed
    assert owner.post("/templates/use-cases", {"use_case": "nope"}).status_code == 422

    admin = browse(app, world, "a_admin")  # an admin of a client workspace, not the agency
    assert "Templates belong to an agency" in page_text(admin.get("/templates"))


def test_a_rollout_page_polls_while_running_and_a_viewer_cannot_roll_back(
        app: Any, world: Any) -> None:
    api = as_key(app, world, "nw_admin", tenant="northwind")
    build_source(api, world.tid("a"))
    template = ok(api.post("/templates", json={"workspace_id": world.tid("a"),
                                               "name": "Desk"}), 201)
    made = ok(api.post(f"/templates/{template['id']}/provision", json={"name": "Client"}), 201)
    rollout = ok(api.post(f"/templates/{template['id']}/rollouts", json={
        "version": 1, "workspace_ids": [made["workspace"]["id"]]}), 201)
    owner = browse(app, world, "nw_owner")
    part = owner.client.get(f"/rollouts/{rollout['id']}", headers={"HX-Request": "true"})
    html = part.get_data(as_text=True)
    # Finished: the fragment alone, and it no longer asks to be polled.
    assert 'id="rollout-progress"' in html and "<nav" not in html and "hx-trigger" not in html
    assert "Client" in page_text(part) and "Applied" in page_text(part)
    viewer = browse(app, world, "nw_viewer")
    assert viewer.post(f"/rollouts/{rollout['id']}/rollback").status_code == 403
    assert viewer.get(f"/rollouts/{rollout['id']}").status_code == 403
    assert "Applied" in page_text(owner.get(f"/rollouts/{rollout['id']}"))
