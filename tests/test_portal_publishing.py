"""What a workspace publishes to its portal (`-k portal`), through API v1
(`/api/v1/portal/...`) and the console's Portal page: builders publish, change and
withdraw workflows and agents; viewers read and see no edit controls; a forged post is
refused; each change is audited; other workspaces see nothing."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from overture.orchestration import workflows
from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to
from tests.console_support import browse, page_text
from tests.portal_support import HTML, REFUND, Customer, set_up, sse, text
from tests.support import as_key, as_user


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code,
                                            response.get_data(as_text=True))
    return response.get_json()


def draft_workflow(world: Any, name: str = "refunds", publish: bool = True) -> Any:
    with scoped_to(world.tenants["a"].id):
        workflow = workflows.create_workflow(name, draft=REFUND)
        if publish:
            workflows.publish(workflow, None)
        db.session.commit()
        return str(workflow.id)


def audit_actions(tenant_id: Any) -> list[tuple[str, dict[str, Any]]]:
    with scoped_to(tenant_id):
        rows = db.session.execute(select(AuditEvent.action, AuditEvent.details).where(
            AuditEvent.action.startswith("portal.")).order_by(AuditEvent.seq)).all()
        db.session.rollback()
    return [(a, d) for a, d in rows]


def test_a_builder_publishes_a_workflow_with_the_steps_customers_see(app, world):
    wid = draft_workflow(world)
    builder = as_user(app, world, "a_builder")
    path = f"/portal/workflows/{wid}"
    assert builder.get(path).status_code == 404  # not in the portal yet

    shown = ok(builder.put(path, json={"published": True, "visible_steps": ["summary"],
                                       "show_output": True}))
    assert shown["published"] and shown["label"] == "refunds"  # the name, until changed
    assert shown["visible_steps"] == ["summary"] and shown["show_output"]
    public = app.extensions["overture.settings"].public_url  # no verified domain
    assert shown["portal_url"] == f"{public}/portal/ws-a/start/{wid}"
    assert [s["id"] for s in shown["steps"]] == ["lookup", "summary", "confirm", "done"]
    assert shown["steps"][0] == {"id": "lookup", "name": "CRM lookup", "type": "transform"}

    # Fields left out keep their value; the steps come back in the workflow's order.
    changed = ok(builder.put(path, json={"label": "Request a refund",
                                         "visible_steps": ["done", "summary", "done"]}))
    assert changed["published"] and changed["label"] == "Request a refund"
    assert changed["visible_steps"] == ["summary", "done"]

    listed = ok(builder.get("/portal/publications"))
    assert listed["portal_url"] == f"{public}/portal/ws-a/"
    assert [(p["kind"], p["workflow_id"]) for p in listed["items"]] == [("workflow", wid)]
    assert ok(builder.get("/portal/publications?kind=agent"))["items"] == []
    assert builder.get("/portal/publications?kind=robot").status_code == 422

    actions = audit_actions(world.tenants["a"].id)
    assert [a for a, _ in actions] == ["portal.publication_changed"] * 2
    assert actions[-1][1] == {"published": True, "label": "Request a refund",
                              "visible_steps": ["summary", "done"], "show_output": True}

    assert builder.delete(path).status_code == 204
    assert builder.get(path).status_code == 404
    assert audit_actions(world.tenants["a"].id)[-1][0] == "portal.publication_removed"


def test_publishing_refuses_what_cannot_be_shown(app, world):
    builder = as_user(app, world, "a_builder")
    draft = draft_workflow(world, "draft only", publish=False)
    refused = builder.put(f"/portal/workflows/{draft}", json={"published": True})
    assert refused.status_code == 409 and "publish the workflow" in refused.get_json()["detail"]
    wid = draft_workflow(world)
    unknown = builder.put(f"/portal/workflows/{wid}", json={"visible_steps": ["nope"]})
    assert unknown.status_code == 422
    assert unknown.get_json()["errors"] == [{
        "field": "visible_steps", "message": "no step 'nope' in the workflow's live version"}]
    blank = builder.put(f"/portal/workflows/{wid}", json={"label": ""})
    assert blank.status_code == 422 and blank.get_json()["errors"][0]["field"] == "label"
    extra = builder.put(f"/portal/workflows/{wid}", json={"published": True, "cost": 1})
    assert extra.status_code == 422
    assert builder.put("/portal/workflows/not-an-id", json={}).status_code == 404
    assert audit_actions(world.tenants["a"].id) == []


def test_agents_are_published_too(app, world):
    portal = set_up(world)
    builder = as_user(app, world, "a_builder")
    path = f"/portal/agents/{portal.agent_id}"
    shown = ok(builder.get(path))
    assert (shown["kind"], shown["label"], shown["published"]) == ("agent", "Help desk", True)
    public = app.extensions["overture.settings"].public_url
    assert shown["portal_url"] == f"{public}/portal/ws-a/chat/{portal.agent_id}"
    assert builder.put(path, json={"visible_steps": ["x"]}).status_code == 422
    assert ok(builder.put(path, json={"published": False}))["published"] is False


def test_viewers_read_builders_change_and_other_workspaces_see_nothing(app, world):
    portal = set_up(world)
    path = f"/portal/workflows/{portal.workflow_id}"
    viewer = as_user(app, world, "a_viewer")
    assert ok(viewer.get(path))["label"] == "Request a refund"
    assert viewer.put(path, json={"published": False}).status_code == 403
    assert viewer.delete(path).status_code == 403
    operator = as_user(app, world, "a_operator")
    assert operator.put(path, json={"label": "x"}).status_code == 403
    for outsider in (as_key(app, world, "b_admin"), as_key(app, world, "c_owner")):
        assert outsider.get(path).status_code == 404
        assert outsider.put(path, json={"published": False}).status_code == 404
        assert ok(outsider.get("/portal/publications"))["items"] == []
    assert ok(as_key(app, world, "a_admin").get(path))["published"] is True


def test_the_portal_api_is_in_the_openapi_document(app):
    paths = ok(app.test_client().get("/api/v1/openapi.json"))["paths"]
    assert set(paths["/api/v1/portal/workflows/{workflow_id}"]) >= {"get", "put", "delete"}
    assert set(paths["/api/v1/portal/agents/{agent_id}"]) >= {"get", "put", "delete"}
    assert "get" in paths["/api/v1/portal/publications"]


# --------------------------------------------------------------------------- the console page


def test_the_console_portal_page_publishes_a_workflow(app, world):
    wid = draft_workflow(world)
    builder = browse(app, world, "a_builder")
    listed = builder.get("/portal-settings")
    assert listed.status_code == 200
    words = page_text(listed)
    assert "refunds Not in the portal" in words and "Open the portal" in words
    assert 'href="/portal-settings"' in listed.get_data(as_text=True)  # in the navigation

    refused = builder.post(f"/portal-settings/workflows/{wid}", {
        "published": "on", "label": "", "visible_steps": "summary"})
    assert refused.status_code == 422
    assert "Must be 1 to 120 characters." in page_text(refused)

    saved = builder.post(f"/portal-settings/workflows/{wid}", {
        "published": "on", "label": "Request a refund", "description": "We pay you back.",
        "visible_steps": ["summary", "done"], "show_output": "on"})
    assert saved.status_code == 302
    after = builder.get("/portal-settings")
    assert "Saved. Request a refund is shown in the portal." in page_text(after)
    assert "In the portal as “Request a refund”" in page_text(after)
    api = ok(as_user(app, world, "a_builder").get(f"/portal/workflows/{wid}"))
    assert (api["visible_steps"], api["show_output"], api["description"]) == (
        ["summary", "done"], True, "We pay you back.")


def test_a_viewer_sees_no_edit_controls_and_a_forged_post_is_refused(app, world):
    portal = set_up(world)
    viewer = browse(app, world, "a_viewer")
    page = viewer.get("/portal-settings")
    assert page.status_code == 200 and "Request a refund" in page_text(page)
    assert "Portal settings" not in page_text(page) and "<form" not in \
        page.get_data(as_text=True).split('id="content"')[1]
    forged = viewer.post(f"/portal-settings/workflows/{portal.workflow_id}",
                         {"label": "hijacked"})
    assert forged.status_code == 403
    api = ok(as_user(app, world, "a_builder").get(f"/portal/workflows/{portal.workflow_id}"))
    assert api["label"] == "Request a refund"


def test_publishing_checks_the_input_schema(app, world):
    from tests.engine_api_support import create_workflow

    builder = as_user(app, world, "a_builder")
    steps = [{"id": "x", "type": "transform", "output": 1}]
    for schema, field, words in (
            ({"type": "string"}, "input_schema.type", "must be \"object\""),
            ({"type": "object", "properties": {"a": {"type": "nope"}}},
             "input_schema.properties.a.type", "not a valid JSON Schema"),
            ({"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}},
             "input_schema", "only references inside the schema")):
        workflow = create_workflow(builder, {"steps": steps, "input_schema": schema})
        refused = builder.post(f"/workflows/{workflow['id']}/publish")
        assert refused.status_code == 422, refused.get_json()
        [error] = refused.get_json()["errors"]
        assert error["field"] == field and words in error["message"], error
    fine = create_workflow(builder, {"steps": steps, "input_schema": {
        "type": "object", "$defs": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
        "properties": {"code": {"$ref": "#/$defs/code"}}}})
    assert builder.post(f"/workflows/{fine['id']}/publish").status_code == 201
    refused = builder.post(f"/workflows/{fine['id']}/runs", json={"input": {"code": "abc"}})
    assert refused.status_code == 422
    assert refused.get_json()["errors"] == [{"field": "input.code",
                                             "message": "is not in the expected format"}]
    assert builder.post(f"/workflows/{fine['id']}/runs",
                        json={"input": {"code": "ABC"}}).status_code == 202


def test_the_demo_portal_offers_support_and_an_faq_assistant(app, app_ctx):
    """What `make up` seeds: Acme Support's customer contacts support through the form
    and asks the offline FAQ assistant (`local`, no model), whose answer streams."""
    from overture.demo import DEMO_PASSWORD, seed_demo

    seed_demo()
    person = Customer(app.test_client())
    portal = "/portal/acme-support"
    person.client.get(portal + "/login", headers=HTML)
    page = person.client.get(portal + "/login", headers=HTML).get_data(as_text=True)
    person.csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    signed_in = person.client.post(portal + "/login", headers=HTML, data={
        "csrf_token": person.csrf, "email": "customer@acme.example.com",
        "password": DEMO_PASSWORD})
    assert signed_in.status_code == 302
    home = person.client.get(portal + "/", headers=HTML)
    html = home.get_data(as_text=True)
    person.csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    assert "Contact support" in text(home) and "FAQ assistant" in text(home)
    chat_path = re.search(r'href="(/portal/acme-support/chat/[0-9a-f-]+)"', html).group(1)
    answered = person.client.post(chat_path, headers={**HTML, "Accept": "text/event-stream"},
                                  data={"csrf_token": person.csrf,
                                        "content": "How long does a refund take?"})
    events = sse(answered)
    assert len([e for e in events if e[0] == "delta"]) > 3
    assert events[-1][0] == "done" and "5 to 10 business days" in events[-1][1]["message"]
    form_path = re.search(r'href="(/portal/acme-support/start/[0-9a-f-]+)"', html).group(1)
    form = text(person.client.get(form_path, headers=HTML))
    assert "Your email" in form and "What happened?" in form
