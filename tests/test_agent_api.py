"""Agents: versioned configurations per tenant through API v1, and the lookups the runtime
uses (`-k agent`)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from overture.orchestration.agents import service
from overture.orchestration.agents.models import AgentVersion
from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to
from overture.platform.errors import NotFound, ValidationFailed
from tests.support import as_key, as_user, unique

LOCAL = {"provider": "local", "model": "wordllama"}


def config(**extra: Any) -> dict[str, Any]:
    return {"role": "Support triage", "instructions": "Sort tickets.", "model": LOCAL, **extra}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code,
                                            response.get_data(as_text=True))
    return response.get_json()


def problem_fields(response: Any, status: int = 422) -> set[str]:
    assert response.status_code == status, response.get_data(as_text=True)
    return {e["field"] for e in response.get_json()["errors"]}


def create(api: Any, name: str | None = None, **cfg: Any) -> Any:
    return ok(api.post("/agents", json={"name": name or f"agent-{unique()}",
                                        "config": config(**cfg)}), 201)


def audit_actions(tenant_id: Any, prefix: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    with scoped_to(tenant_id):
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action.startswith(prefix))
                                  .order_by(AuditEvent.seq)).all()
        return [(r.action, r.target_id, r.details) for r in rows]


# --------------------------------------------------------------------------- runtime interface


def test_agent_current_versions_and_load_version_follow_updates(world):
    a, b = world.tenants["a"].id, world.tenants["b"].id
    with scoped_to(a):
        triage = service.create_agent("triage", config())
        service.create_agent("writer", config(model={"provider": "scripted", "model": "s"}))
        db.session.commit()
        pins = service.current_versions(["triage", "writer", "triage"])
        assert set(pins) == {"triage", "writer"}
        v1 = service.load_version(pins["triage"])
        assert (v1.agent_id, v1.number, v1.name) == (triage.id, 1, "triage")
        assert v1.spec.model.provider == "local" and v1.spec.instructions == "Sort tickets."

        service.update_agent(triage, config=config(instructions="Sort tickets, kindly."))
        db.session.commit()
        v2 = service.load_current("triage")
        assert (v2.number, v2.spec.instructions) == (2, "Sort tickets, kindly.")
        assert service.current_versions(["triage"]) == {"triage": str(v2.version_id)}
        # The pinned version is frozen: loading it again gives what was pinned.
        assert service.load_version(v1.version_id).spec.instructions == "Sort tickets."

        with pytest.raises(ValidationFailed) as unknown:
            service.current_versions(["triage", "ghost", "phantom"])
        assert "ghost" in unknown.value.detail and "phantom" in unknown.value.detail
        with pytest.raises(NotFound):
            service.load_current("ghost")
        with pytest.raises(NotFound):
            service.load_version("not-an-id")

    # Another tenant sees none of it: not by name, not by version id.
    with scoped_to(b):
        with pytest.raises(ValidationFailed):
            service.current_versions(["triage"])
        with pytest.raises(NotFound):
            service.load_version(v1.version_id)
        with pytest.raises(NotFound):
            service.load_current("triage")


def test_agent_archived_keeps_pinned_versions_loadable_but_not_current(world):
    with scoped_to(world.tenants["a"].id):
        agent = service.create_agent("drafter", config())
        pinned = service.current_versions(["drafter"])["drafter"]
        service.archive_agent(agent)
        db.session.commit()
        assert service.load_version(pinned).name == "drafter"
        with pytest.raises(ValidationFailed):
            service.current_versions(["drafter"])
        with pytest.raises(NotFound):
            service.load_current("drafter")
        # The name is free again.
        assert service.create_agent("drafter", config()).name == "drafter"


def test_agent_versions_are_immutable(world):
    with scoped_to(world.tenants["a"].id):
        service.create_agent("frozen", config())
        version = db.session.scalars(select(AgentVersion)).one()
        version.config = {**version.config, "instructions": "changed"}
        with pytest.raises(RuntimeError, match="immutable"):
            db.session.flush()
        db.session.rollback()


# --------------------------------------------------------------------------- API: CRUD


def test_agent_api_create_update_versions_archive_audited(app, world):
    builder = as_user(app, world, "a_builder")
    created = create(builder, "triage", tools=[])
    aid = created["id"]
    assert created["current_version"] == 1 and created["name"] == "triage"
    assert created["config"]["name"] == "triage"
    assert created["config"]["limits"]["max_iterations"] == 8  # defaults filled in
    assert created["config"]["notes_retention_days"] == 30

    new_config = config(instructions="Sort tickets by urgency.",
                        limits={"max_iterations": 4, "max_cost": "0.25"})
    v2 = ok(builder.patch(f"/agents/{aid}", json={"config": new_config}))
    assert v2["current_version"] == 2
    assert v2["config"]["instructions"] == "Sort tickets by urgency."
    assert v2["config"]["limits"] == {"max_iterations": 4, "max_tokens": 50_000,
                                      "max_cost": "0.25"}
    # A description is not configuration, and an identical config is no new version.
    same = ok(builder.patch(f"/agents/{aid}", json={"description": "front door",
                                                      "config": new_config}))
    assert (same["current_version"], same["description"]) == (2, "front door")
    # A rename is: the configuration carries the name.
    renamed = ok(builder.patch(f"/agents/{aid}", json={"name": "triager"}))
    assert (renamed["current_version"], renamed["config"]["name"]) == (3, "triager")
    assert renamed["config"]["instructions"] == "Sort tickets by urgency."
    # The config as GET shows it may come back with a rename: it carries the old name.
    back = ok(builder.patch(f"/agents/{aid}", json={"name": "triage",
                                                      "config": renamed["config"]}))
    assert (back["current_version"], back["config"]["name"]) == (4, "triage")
    assert builder.patch(f"/agents/{aid}", json={"name": "other", "config": {
        **renamed["config"], "name": "third"}}).status_code == 422
    ok(builder.patch(f"/agents/{aid}", json={"name": "triager"}))

    versions = ok(builder.get(f"/agents/{aid}/versions"))["items"]
    assert [(v["number"], v["config"]["name"]) for v in versions] == [
        (1, "triage"), (2, "triage"), (3, "triager"), (4, "triage"), (5, "triager")]
    first = ok(builder.get(f"/agents/{aid}/versions/1"))
    assert first["config"]["instructions"] == "Sort tickets."
    assert first["created_by_id"] == str(world.users["a_builder"].id)
    assert builder.get(f"/agents/{aid}/versions/9").status_code == 404
    assert ok(builder.get(f"/agents/{aid}"))["current_version"] == 5

    assert builder.delete(f"/agents/{aid}").status_code == 204
    assert builder.get(f"/agents/{aid}").status_code == 404
    assert builder.patch(f"/agents/{aid}", json={"description": "x"}).status_code == 404
    assert aid not in [a["id"] for a in ok(builder.get("/agents"))["items"]]

    events = audit_actions(world.tenants["a"].id, "agent.")
    assert [(action, target) for action, target, _ in events] == [
        ("agent.created", aid), *[("agent.updated", aid)] * 5, ("agent.archived", aid)]
    assert [d.get("version") for _, _, d in events[:6]] == [1, 2, 2, 3, 4, 5]
    assert events[2][2]["changed"] == ["description"]
    assert events[3][2]["changed"] == ["name", "config"]
    assert events[-1][2]["name"] == "triager"


def test_agent_api_list_is_paginated_and_names_are_unique(app, world):
    admin = as_key(app, world, "a_admin")
    ids = [create(admin, f"agent-{i}")["id"] for i in range(3)]
    first = ok(admin.get("/agents", query_string={"limit": 2}))
    assert [a["id"] for a in first["items"]] == ids[:2] and first["next_cursor"]
    second = ok(admin.get("/agents", query_string={"limit": 2,
                                                    "cursor": first["next_cursor"]}))
    assert [a["id"] for a in second["items"]] == ids[2:] and second["next_cursor"] is None
    duplicate = admin.post("/agents", json={"name": "agent-0", "config": config()})
    assert duplicate.status_code == 409
    assert admin.patch(f"/agents/{ids[1]}", json={"name": "agent-0"}).status_code == 409
    assert ok(admin.get(f"/agents/{ids[1]}"))["name"] == "agent-1"
    assert admin.get("/agents", query_string={"cursor": "garbage!"}).status_code == 422


# --------------------------------------------------------------------------- API: validation


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x"}, "config"),
    ({"name": "", "config": config()}, "name"),
    ({"name": "x", "config": "text"}, "config"),
    ({"name": "x", "config": {"role": "no model"}}, "config"),
    ({"name": "x", "config": config(model={"provider": "skynet", "model": "t-800"})},
     "config.model.provider"),
    ({"name": "x", "config": config(model={**LOCAL, "temperature": 7})},
     "config.model.temperature"),
    ({"name": "x", "config": config(colour="blue")}, "config"),
    ({"name": "x", "config": config(tools=[{"kind": "spell", "ref": "x"}])},
     "config.tools.0.kind"),
    ({"name": "x", "config": config(tools=[{"kind": "agent", "ref": "x", "name": "a b"}])},
     "config.tools.0.name"),
    ({"name": "x", "config": config(limits={"max_iterations": 0})},
     "config.limits.max_iterations"),
    ({"name": "x", "config": config(limits={"max_cost": "lots"})}, "config.limits.max_cost"),
    ({"name": "x", "config": config(limits={"max_cost": -1})}, "config.limits.max_cost"),
    ({"name": "x", "config": config(notes_retention_days=0)}, "config.notes_retention_days"),
    ({"name": "x", "config": config(name="y")}, "config.name"),
    ({"name": "x", "config": config(credential_id="not-a-credential")},
     "config.credential_id"),
    ({"name": "x", "config": config(tools=[{"kind": "agent", "ref": "ghost"}])},
     "config.tools.0.ref"),
    ({"name": "x", "config": config(tools=[{"kind": "agent", "ref": "x"}])},
     "config.tools.0.ref"),
    ({"name": "x", "config": config(tools=[{"kind": "knowledge", "ref": "nowhere"}])},
     "config.tools.0.ref"),
    ({"name": "x", "config": config(tools=[{"kind": "action", "ref": "no-slash"}])},
     "config.tools.0.ref"),
    ({"name": "x", "config": config(tools=[{"kind": "action", "ref": "ghost/create_issue"}])},
     "config.tools.0.ref"),
    ({"name": "x", "unknown": 1, "config": config()}, "unknown"),
])
def test_agent_api_bad_config_is_422_naming_the_field(app, world, body, field):
    admin = as_key(app, world, "a_admin")
    response = admin.post("/agents", json=body)
    assert response.status_code == 422, response.get_data(as_text=True)
    problem = response.get_json()
    assert problem["type"].endswith("validation-error")
    assert field in {e["field"] for e in problem["errors"]}, problem
    assert ok(admin.get("/agents"))["items"] == []


def test_agent_api_references_must_exist_in_the_tenant(app, world):
    admin, b_admin = as_key(app, world, "a_admin"), as_key(app, world, "b_admin")
    key = ok(admin.post("/credentials", json={"name": "openai", "kind": "api_key",
                                              "fields": {"api_key": "sk-test-123"}}), 201)
    ok(admin.post("/connections", json={"connector_key": "github", "name": "gh",
                                        "credentials": {"api_key": "ghp_x"}}), 201)
    ok(admin.post("/knowledge", json={"name": "faq"}), 201)
    writer = create(admin, "writer")
    full = config(model={"provider": "openai", "model": "gpt-4o-mini"},
                  credential_id=key["id"],
                  tools=[{"kind": "agent", "ref": "writer", "name": "delegate_writer"},
                         {"kind": "knowledge", "ref": "faq"},
                         {"kind": "action", "ref": "gh/create_issue",
                          "allow_side_effects": True}])
    lead = ok(admin.post("/agents", json={"name": "lead", "config": full}), 201)
    assert [t["ref"] for t in lead["config"]["tools"]] == ["writer", "faq", "gh/create_issue"]
    assert lead["config"]["credential_id"] == key["id"]

    wrong_action = {**full, "tools": [{"kind": "action", "ref": "gh/send_fax"}]}
    r = admin.patch(f"/agents/{lead['id']}", json={"config": wrong_action})
    assert "config.tools.0.ref" in {e["field"] for e in r.get_json()["errors"]}
    twice = {**full, "tools": [{"kind": "knowledge", "ref": "faq", "name": "kb"},
                               {"kind": "agent", "ref": "writer", "name": "kb"}]}
    r = admin.patch(f"/agents/{lead['id']}", json={"config": twice})
    assert {e["field"] for e in r.get_json()["errors"]} == {"config.tools.1.name"}
    # The agent may not delegate to itself, under its own name or a new one.
    r = admin.patch(f"/agents/{writer['id']}", json={"config": config(
        tools=[{"kind": "agent", "ref": "writer"}])})
    assert r.status_code == 422
    assert ok(admin.get(f"/agents/{lead['id']}"))["current_version"] == 1

    # Tenant B has none of A's credential, agents, collection or connection.
    r = b_admin.post("/agents", json={"name": "lead", "config": full})
    assert r.status_code == 422
    assert {e["field"] for e in r.get_json()["errors"]} == {
        "config.credential_id", "config.tools.0.ref", "config.tools.1.ref",
        "config.tools.2.ref"}


# --------------------------------------------------------------------------- API: tenants, roles


def test_agent_api_other_tenants_agents_are_not_found(app, world):
    a_builder, b_admin = as_user(app, world, "a_builder"), as_key(app, world, "b_admin")
    c_owner = as_key(app, world, "c_owner")
    aid = create(a_builder, "triage")["id"]
    for caller in (b_admin, c_owner):
        assert caller.get(f"/agents/{aid}").status_code == 404
        assert caller.get(f"/agents/{aid}/versions").status_code == 404
        assert caller.get(f"/agents/{aid}/versions/1").status_code == 404
        assert caller.get(f"/agents/{aid}/notes").status_code == 404
        assert caller.post(f"/agents/{aid}/notes", json={"text": "x"}).status_code == 404
        assert caller.patch(f"/agents/{aid}", json={"description": "mine"}).status_code == 404
        assert caller.delete(f"/agents/{aid}").status_code == 404
        assert ok(caller.get("/agents"))["items"] == []
    # The same name is free in another tenant, and stays separate.
    b_agent = create(b_admin, "triage", instructions="B's own.")
    assert b_agent["id"] != aid
    a_view = ok(a_builder.get(f"/agents/{aid}"))
    assert (a_view["description"], a_view["config"]["instructions"]) == ("", "Sort tickets.")
    assert [a["id"] for a in ok(a_builder.get("/agents"))["items"]] == [aid]
    assert a_builder.get("/agents/not-an-id").status_code == 404


def test_agent_api_viewer_reads_but_cannot_write(app, world):
    builder, viewer = as_user(app, world, "a_builder"), as_user(app, world, "a_viewer")
    aid = create(builder, "triage")["id"]
    ok(builder.post(f"/agents/{aid}/notes", json={"text": "VIP: Acme Corp"}), 201)
    assert [a["id"] for a in ok(viewer.get("/agents"))["items"]] == [aid]
    assert ok(viewer.get(f"/agents/{aid}"))["config"]["name"] == "triage"
    assert len(ok(viewer.get(f"/agents/{aid}/versions"))["items"]) == 1
    assert ok(viewer.get(f"/agents/{aid}/notes"))["items"][0]["text"] == "VIP: Acme Corp"
    assert viewer.post("/agents", json={"name": "v", "config": config()}).status_code == 403
    assert viewer.patch(f"/agents/{aid}", json={"description": "x"}).status_code == 403
    assert viewer.delete(f"/agents/{aid}").status_code == 403
    assert viewer.post(f"/agents/{aid}/notes", json={"text": "x"}).status_code == 403
    member = as_user(app, world, "a_member")  # portal members see no configuration
    assert member.get("/agents").status_code == 403
    assert ok(builder.get(f"/agents/{aid}"))["current_version"] == 1


def test_agent_api_is_in_the_openapi_document(app):
    spec = ok(app.test_client().get("/api/v1/openapi.json"))
    paths = spec["paths"]
    for path in ("/api/v1/agents", "/api/v1/agents/{agent_id}",
                 "/api/v1/agents/{agent_id}/versions",
                 "/api/v1/agents/{agent_id}/versions/{number}",
                 "/api/v1/agents/{agent_id}/notes", "/api/v1/knowledge",
                 "/api/v1/knowledge/{collection_id}/documents",
                 "/api/v1/knowledge/{collection_id}/search"):
        assert path in paths, sorted(p for p in paths if "agent" in p or "knowledge" in p)
    assert set(paths["/api/v1/agents/{agent_id}"]) >= {"get", "patch", "delete"}
