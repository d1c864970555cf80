"""Agency templates through the API: snapshot a workspace (no secrets), provision client
workspaces from it, roll a new version out with a canary, roll it back, stop on failure,
and keep each agency's templates its own."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from tests.engine_api_support import audit_events, ok
from tests.support import Api, as_key, as_user

SECRET = "ghp_template_secret_4242"
LOCAL = {"provider": "local", "model": "wordllama"}


def agent_config(instructions: str) -> dict[str, Any]:
    return {"role": "Triage", "instructions": instructions, "model": LOCAL,
            "tools": [{"kind": "knowledge", "ref": "faq"},
                      {"kind": "action", "ref": "gh/create_issue", "allow_side_effects": True}]}


def definition(connection_id: str, extra: bool = False) -> dict[str, Any]:
    steps = [{"id": "sort", "type": "agent", "agent": "triage", "next": "file"},
             {"id": "file", "type": "action", "action": "github.create_issue",
              "connection": connection_id, "input": {"owner": "acme", "repo": "site",
                                                     "title": "x"}}]
    if extra:
        steps[1]["next"] = "done"
        steps.append({"id": "done", "type": "transform", "output": {"ok": True}})
    return {"steps": steps}


def build_source(api: Api, ws: str) -> dict[str, Any]:
    """Workspace `ws` with a connection (and its secret), knowledge, an agent and a
    published workflow using both."""
    gh = ok(api.post("/connections", tenant=ws, json={
        "connector_key": "github", "name": "gh", "credentials": {"api_key": SECRET}}), 201)
    faq = ok(api.post("/knowledge", tenant=ws, json={"name": "faq"}), 201)
    ok(api.post(f"/knowledge/{faq['id']}/documents", tenant=ws, json={
        "title": "Hours", "text": "We answer tickets on weekdays."}), 201)
    agent = ok(api.post("/agents", tenant=ws, json={"name": "triage",
                                                    "config": agent_config("Sort.")}), 201)
    flow = ok(api.post("/workflows", tenant=ws, json={"name": "intake",
                                                      "definition": definition(gh["id"])}), 201)
    ok(api.post(f"/workflows/{flow['id']}/publish", tenant=ws), 201)
    mail = ok(api.post("/connections", tenant=ws, json={
        "connector_key": "imap", "name": "mail", "credentials": {
            "host": "imap.example.com", "username": "desk", "password": SECRET + "-imap"}}),
        201)
    ok(api.post(f"/workflows/{flow['id']}/triggers", tenant=ws, json={
        "connection_id": mail["id"], "trigger_key": "new_email", "interval_seconds": 60}), 201)
    ok(api.post(f"/workflows/{flow['id']}/schedules", tenant=ws, json={
        "cron": "0 9 * * 1", "timezone": "Europe/Paris"}), 201)
    return {"connection": gh, "agent": agent, "workflow": flow}


def make_template(api: Api, world: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    source = build_source(api, world.tid("a"))
    template = ok(api.post("/templates", json={"workspace_id": world.tid("a"),
                                               "name": "Support desk"}), 201)
    return template, source


def new_version(api: Api, world: Any, source: dict[str, Any], template_id: str) -> None:
    """Template v2: the workflow gains a step and the agent new instructions."""
    a = world.tid("a")
    ok(api.patch(f"/workflows/{source['workflow']['id']}", tenant=a, json={
        "definition": definition(source["connection"]["id"], extra=True)}))
    ok(api.post(f"/workflows/{source['workflow']['id']}/publish", tenant=a), 201)
    ok(api.patch(f"/agents/{source['agent']['id']}", tenant=a,
                 json={"config": agent_config("Sort, then file.")}))
    assert ok(api.post(f"/templates/{template_id}/versions",
                       json={"workspace_id": a}), 201)["number"] == 2


def provision(api: Api, template_id: str, name: str) -> dict[str, Any]:
    return ok(api.post(f"/templates/{template_id}/provision", json={"name": name}), 201)


def state(api: Api, ws: str) -> tuple[int, str]:
    """(current workflow version, agent instructions) in a workspace."""
    flow = ok(api.get("/workflows", tenant=ws))["items"][0]
    agent = ok(api.get("/agents", tenant=ws))["items"][0]
    return flow["current_version"], agent["config"]["instructions"]


def test_snapshot_provision_roll_out_with_a_canary_and_roll_back(app, world):
    nw = as_key(app, world, "nw_admin", tenant="northwind")
    template, source = make_template(nw, world)
    detail = ok(nw.get(f"/templates/{template['id']}"))
    assert [v["number"] for v in detail["versions"]] == [1]
    snap = detail["versions"][0]["snapshot"]
    text = json.dumps(snap)
    assert SECRET not in text and str(source["connection"]["credential_id"]) not in text
    assert snap["connections"][0] == {"name": "gh", "connector_key": "github",
                                      "base_url": None, "settings": {}, "rate_limit": None}
    assert [c["name"] for c in snap["connections"]] == ["gh", "mail"]
    assert [a["name"] for a in snap["agents"]] == ["triage"]
    assert [(w["name"], w["version"]) for w in snap["workflows"]] == [("intake", 1)]
    assert snap["knowledge"][0]["documents"][0]["title"] == "Hours"

    made = [provision(nw, template["id"], f"Client {n}") for n in range(3)]
    first = made[0]
    ws = first["workspace"]["id"]
    assert first["workspace"]["parent_id"] == world.tid("northwind")
    assert [(p["name"], p["status"]) for p in first["placeholders"]["connections"]] == [
        ("gh", "pending"), ("mail", "pending")]
    conn = ok(nw.get("/connections", tenant=ws))["items"]
    assert [(c["name"], c["credential_id"]) for c in conn] == [("gh", None), ("mail", None)]
    flow = ok(nw.get("/workflows", tenant=ws))["items"][0]
    assert flow["name"] == "intake" and flow["current_version"] == 1
    # Its trigger waits for the mailbox's credentials; its schedule is there.
    trigger = ok(nw.get(f"/workflows/{flow['id']}/triggers", tenant=ws))["items"][0]
    assert (trigger["connection_id"], trigger["enabled"]) == (conn[1]["id"], False)
    schedule = ok(nw.get(f"/workflows/{flow['id']}/schedules", tenant=ws))["items"][0]
    assert (schedule["cron"], schedule["timezone"]) == ("0 9 * * 1", "Europe/Paris")
    # The action step points at the new workspace's own connection.
    assert flow["definition"]["steps"][1]["connection"] == conn[0]["id"]
    assert ok(nw.get("/knowledge", tenant=ws))["items"][0]["name"] == "faq"
    # The client fills the placeholder in; its secret is sealed, not echoed.
    filled = ok(nw.post(f"/connections/{conn[0]['id']}/credentials", tenant=ws,
                        json={"credentials": {"api_key": "ghp_client_own"}}))
    assert filled["status"] == "active" and filled["credential_id"]

    new_version(nw, world, source, template["id"])
    ids = [m["workspace"]["id"] for m in made]
    rollout = ok(nw.post(f"/templates/{template['id']}/rollouts", json={
        "version": 2, "workspace_ids": ids[1:] + ids[:1], "canary_ids": [ids[0]]}), 201)
    assert rollout["status"] == "completed"
    assert [(w["workspace_id"], w["canary"], w["status"]) for w in rollout["workspaces"]] == [
        (ids[0], True, "applied"), (ids[1], False, "applied"), (ids[2], False, "applied")]
    for ws in ids:
        assert state(nw, ws) == (2, "Sort, then file.")
    assert ok(nw.get(f"/rollouts/{rollout['id']}"))["status"] == "completed"
    assert {w["version"] for w in ok(nw.get(f"/templates/{template['id']}"))["workspaces"]} \
        == {2}

    back = ok(nw.post(f"/rollouts/{rollout['id']}/rollback"))
    assert back["status"] == "rolled_back"
    assert {w["status"] for w in back["workspaces"]} == {"rolled_back"}
    for ws in ids:
        assert state(nw, ws) == (1, "Sort.")
    assert {w["version"] for w in ok(nw.get(f"/templates/{template['id']}"))["workspaces"]} \
        == {1}
    assert nw.post(f"/rollouts/{rollout['id']}/rollback").status_code == 409
    # Audited in each workspace and in the agency.
    assert len(audit_events(UUID(ids[1]), "template.rollout_applied")) == 1
    assert len(audit_events(UUID(ids[1]), "template.rollout_rolled_back")) == 1
    assert [e["details"]["status"] for e in audit_events(
        world.tenants["northwind"].id, "template.rollout_finished")] == ["completed"]


def test_stop_on_failure_and_a_deleted_workflow(app, world):
    nw = as_key(app, world, "nw_admin", tenant="northwind")
    template, source = make_template(nw, world)
    ids = [provision(nw, template["id"], f"Shop {n}")["workspace"]["id"] for n in range(3)]
    new_version(nw, world, source, template["id"])
    ok(nw.post(f"/tenants/{ids[1]}/suspend"))
    flow = ok(nw.get("/workflows", tenant=ids[2]))["items"][0]
    assert nw.delete(f"/workflows/{flow['id']}", tenant=ids[2]).status_code == 204

    stopped = ok(nw.post(f"/templates/{template['id']}/rollouts", json={
        "version": 2, "workspace_ids": ids, "stop_on_failure": True}), 201)
    assert stopped["status"] == "stopped"
    assert [w["status"] for w in stopped["workspaces"]] == ["applied", "failed", "pending"]
    assert "suspended" in stopped["workspaces"][1]["error"]
    assert state(nw, ids[0]) == (2, "Sort, then file.")

    # A failing canary stops a roll-out even without stop_on_failure.
    gone = ok(nw.post(f"/templates/{template['id']}/rollouts", json={
        "version": 2, "workspace_ids": [ids[0], ids[2]], "canary_ids": [ids[2]]}), 201)
    assert gone["status"] == "stopped"
    assert [(w["workspace_id"], w["status"]) for w in gone["workspaces"]] == [
        (ids[2], "failed"), (ids[0], "pending")]
    assert "deleted" in gone["workspaces"][0]["error"]
    assert audit_events(UUID(ids[2]), "template.rollout_failed")

    ok(nw.post(f"/rollouts/{stopped['id']}/rollback"))
    assert state(nw, ids[0]) == (1, "Sort.")
    flow = ok(nw.get("/workflows", tenant=ids[0]))["items"][0]
    assert [s["id"] for s in flow["definition"]["steps"]] == ["sort", "file"]  # the draft too


def test_bad_input_and_other_agencies(app, world):
    nw = as_key(app, world, "nw_admin", tenant="northwind")
    template, _ = make_template(nw, world)
    ws = provision(nw, template["id"], "Client")["workspace"]["id"]
    base = f"/templates/{template['id']}"
    for body, field in (({"version": 9, "workspace_ids": [ws]}, "version"),
                        ({"version": 1, "workspace_ids": [world.tid("a")]}, "workspace_ids"),
                        ({"version": 1, "workspace_ids": [ws],
                          "canary_ids": [world.tid("b")]}, "canary_ids"),
                        ({"version": 1, "workspace_ids": ["nope"]}, "workspace_ids.0")):
        r = nw.post(f"{base}/rollouts", json=body)
        assert r.status_code == 422, r.get_json()
        assert field in {e["field"] for e in r.get_json()["errors"]}
    assert nw.post("/templates", json={"workspace_id": world.tid("c"),
                                       "name": "x"}).status_code == 422

    # Another agency sees none of it, and cannot act on it.
    ct = as_user(app, world, "ct_owner", tenant="contoso")
    assert ct.get(base).status_code == 404
    assert ok(ct.get("/templates"))["items"] == []
    assert ct.post(f"{base}/provision", json={"name": "Stolen"}).status_code == 404
    assert ct.post(f"{base}/rollouts", json={"version": 1,
                                             "workspace_ids": [ws]}).status_code == 404
    # Templates belong to agencies; a workspace's admin has none, and an agency viewer
    # may not see them.
    assert as_key(app, world, "a_admin", tenant="a").get("/templates").status_code == 422
    viewer = as_user(app, world, "nw_viewer", tenant="northwind")
    assert viewer.get("/templates").status_code == 403
