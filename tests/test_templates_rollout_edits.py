"""Template roll-outs and what the client workspaces did themselves, through the API:

- webhooks, polling triggers and schedules travel in a template (a signed webhook with a
  fresh secret in each workspace, never the source's), and a roll-out applies what the
  template changed, leaving the client's own choices standing; its rollback puts back
  what it changed;
- a client's unpublished draft is never overwritten: the roll-out publishes the
  template's version beside it and says so for that workspace; the rollback leaves a
  draft edited since, and a version the client published since, as they are."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse
from uuid import UUID

from tests.engine_api_support import audit_events, ok
from tests.support import Api, as_key
from tests.test_templates_rollout import SECRET, build_source, make_template, new_version
from tests.test_webhook_replay import JSON, STANDARD_SECRET, standard


def provision(api: Api, template_id: str, name: str) -> dict[str, Any]:
    return ok(api.post(f"/templates/{template_id}/provision", json={"name": name}), 201)


def intake(api: Api, ws: str) -> dict[str, Any]:
    return ok(api.get("/workflows", tenant=ws))["items"][0]


def starters(api: Api, ws: str) -> dict[str, Any]:
    """What starts `intake` in a workspace, as a client sees it."""
    flow = intake(api, ws)
    schedules = ok(api.get(f"/workflows/{flow['id']}/schedules", tenant=ws))["items"]
    polls = ok(api.get(f"/workflows/{flow['id']}/triggers", tenant=ws))["items"]
    return {"webhook": flow["webhook_enabled"], "signed": flow["webhook_signed"],
            "schedules": sorted((s["cron"], s["enabled"]) for s in schedules),
            "polling": [(p["interval_seconds"], p["enabled"]) for p in polls]}


def hook(api: Api, ws: str) -> str:
    return urlparse(intake(api, ws)["webhook_url"]).path


def test_webhooks_triggers_and_schedules_travel_and_roll_out_as_changes(app, world):
    nw = as_key(app, world, "nw_admin", tenant="northwind")
    a = world.tid("a")
    source = build_source(nw, a)  # intake: a polling trigger on `mail`, a Monday schedule
    flow_id = source["workflow"]["id"]
    signing = ok(nw.post("/credentials", tenant=a, json={
        "name": "signing", "kind": "custom", "fields": {"secret": STANDARD_SECRET},
        "secret_fields": ["secret"]}), 201)
    ok(nw.patch(f"/workflows/{flow_id}", tenant=a,
                json={"webhook_credential_id": signing["id"]}))
    template = ok(nw.post("/templates", json={"workspace_id": a, "name": "Desk"}), 201)
    snap = ok(nw.get(f"/templates/{template['id']}"))["versions"][0]["snapshot"]
    assert snap["webhooks"] == [{"workflow": "intake", "enabled": True, "signed": True}]
    assert snap["triggers"] == [{"workflow": "intake", "connection": "mail",
                                 "trigger_key": "new_email", "interval_seconds": 60,
                                 "enabled": True}]
    text = json.dumps(snap)
    for secret in (STANDARD_SECRET, SECRET, signing["id"], hook(nw, a).rsplit("/", 1)[1]):
        assert secret not in text

    ws0, ws1 = (provision(nw, template["id"], f"Client {n}") for n in range(2))
    ids = [ws0["workspace"]["id"], ws1["workspace"]["id"]]
    first = intake(nw, ids[0])
    assert ws0["placeholders"]["webhooks"] == [{"workflow": "intake", "id": first["id"]}]
    assert first["webhook_signed"] and hook(nw, ids[0]) != hook(nw, a)
    # Signed with a secret of its own: the source's secret opens nothing there.
    body = b'{"n": 1}'
    assert app.test_client().post(hook(nw, ids[0]), data=body,
                                  headers=standard(body)).status_code == 401
    assert app.test_client().post(hook(nw, a), data=body,
                                  headers=standard(body)).status_code == 202
    # The mailbox waits for credentials, so its trigger is off.
    assert starters(nw, ids[1]) == {"webhook": True, "signed": True,
                                    "schedules": [("0 9 * * 1", True)],
                                    "polling": [(60, False)]}

    # Client 0 makes choices of its own: no Monday schedule, its mailbox connected and
    # the trigger on.
    sched = ok(nw.get(f"/workflows/{first['id']}/schedules", tenant=ids[0]))["items"][0]
    assert nw.delete(f"/schedules/{sched['id']}", tenant=ids[0]).status_code == 204
    mail = next(c for c in ok(nw.get("/connections", tenant=ids[0]))["items"]
                if c["name"] == "mail")
    ok(nw.post(f"/connections/{mail['id']}/credentials", tenant=ids[0], json={
        "credentials": {"host": "imap.example.com", "username": "c0", "password": "pw"}}))
    poll = ok(nw.get(f"/workflows/{first['id']}/triggers", tenant=ids[0]))["items"][0]
    ok(nw.patch(f"/triggers/{poll['id']}", tenant=ids[0], json={"enabled": True}))

    # Template v2: the Monday schedule paused, a Friday one added, the mailbox polled
    # every two minutes, the webhook off.
    src = {"schedules": ok(nw.get(f"/workflows/{flow_id}/schedules", tenant=a))["items"],
           "polls": ok(nw.get(f"/workflows/{flow_id}/triggers", tenant=a))["items"]}
    ok(nw.patch(f"/schedules/{src['schedules'][0]['id']}", tenant=a, json={"enabled": False}))
    ok(nw.post(f"/workflows/{flow_id}/schedules", tenant=a, json={"cron": "30 17 * * 5"}), 201)
    ok(nw.patch(f"/triggers/{src['polls'][0]['id']}", tenant=a,
                json={"interval_seconds": 120}))
    ok(nw.patch(f"/workflows/{flow_id}", tenant=a, json={"webhook_enabled": False}))
    ok(nw.post(f"/templates/{template['id']}/versions", json={"workspace_id": a}), 201)

    rollout = ok(nw.post(f"/templates/{template['id']}/rollouts",
                         json={"version": 2, "workspace_ids": ids}), 201)
    assert rollout["status"] == "completed", rollout
    assert starters(nw, ids[1]) == {"webhook": False, "signed": True,
                                    "schedules": [("0 9 * * 1", False), ("30 17 * * 5", True)],
                                    "polling": [(120, False)]}
    # What client 0 decided stands: no Monday schedule comes back, the trigger stays on.
    assert starters(nw, ids[0]) == {"webhook": False, "signed": True,
                                    "schedules": [("30 17 * * 5", True)],
                                    "polling": [(120, True)]}
    off = app.test_client().post(hook(nw, ids[1]), data=body, headers=JSON)
    assert off.status_code == 409 and off.get_json()["type"].endswith("webhook-disabled")

    back = ok(nw.post(f"/rollouts/{rollout['id']}/rollback"))
    assert back["status"] == "rolled_back"
    assert starters(nw, ids[1]) == {"webhook": True, "signed": True,
                                    "schedules": [("0 9 * * 1", True)],
                                    "polling": [(60, False)]}
    assert starters(nw, ids[0]) == {"webhook": True, "signed": True, "schedules": [],
                                    "polling": [(60, True)]}
    # Each change went through its own service: audited in the client's workspace.
    ws1 = UUID(ids[1])
    assert len(audit_events(ws1, "workflow.webhook_disabled")) == 1
    assert len(audit_events(ws1, "workflow.webhook_enabled")) == 1
    assert len(audit_events(ws1, "schedule.deleted")) == 1  # the Friday one, undone


def test_a_rollout_keeps_a_clients_unpublished_draft_and_says_so(app, world):
    nw = as_key(app, world, "nw_admin", tenant="northwind")
    template, source = make_template(nw, world)
    ids = [provision(nw, template["id"], f"Client {n}")["workspace"]["id"] for n in range(3)]
    # Client 0 is half way through an edit it has not published.
    mine = intake(nw, ids[0])
    edited = json.loads(json.dumps(mine["definition"]))
    edited["steps"][1]["input"]["title"] = "our own title"
    ok(nw.patch(f"/workflows/{mine['id']}", tenant=ids[0], json={"definition": edited}))

    new_version(nw, world, source, template["id"])  # v2 adds a `done` step
    rollout = ok(nw.post(f"/templates/{template['id']}/rollouts",
                         json={"version": 2, "workspace_ids": ids}), 201)
    assert rollout["status"] == "completed"
    rows = {w["workspace_id"]: w for w in rollout["workspaces"]}
    assert [n.split(":")[0] for n in rows[ids[0]]["notes"]] == ["intake"]
    assert "unpublished draft was kept" in rows[ids[0]]["notes"][0]
    assert "live as v2" in rows[ids[0]]["notes"][0]
    assert rows[ids[1]]["notes"] == [] and rows[ids[2]]["notes"] == []

    # Client 0: the template's version is live, the draft is the client's, untouched.
    flow = intake(nw, ids[0])
    assert flow["current_version"] == 2 and flow["definition"] == edited
    live = ok(nw.get(f"/workflows/{flow['id']}/versions", tenant=ids[0]))["items"][-1]
    assert [s["id"] for s in live["definition"]["steps"]] == ["sort", "file", "done"]
    assert live["definition"]["steps"][1]["input"]["title"] == "x"
    # Client 1 had no edits: its draft moved with the live version.
    other = intake(nw, ids[1])
    assert [s["id"] for s in other["definition"]["steps"]] == ["sort", "file", "done"]
    applied = audit_events(UUID(ids[0]), "template.rollout_applied")
    assert applied[0]["details"]["drafts_kept"] == ["intake"]

    # After the roll-out client 1 edits its draft and client 2 publishes a v3 of its own.
    later = {**other["definition"], "steps": other["definition"]["steps"][:2]}
    ok(nw.patch(f"/workflows/{other['id']}", tenant=ids[1], json={"definition": later}))
    third = intake(nw, ids[2])
    ok(nw.post(f"/workflows/{third['id']}/publish", tenant=ids[2]), 201)  # same draft, v3

    back = ok(nw.post(f"/rollouts/{rollout['id']}/rollback"))
    assert back["status"] == "rolled_back"
    notes = {w["workspace_id"]: w["notes"] for w in back["workspaces"]}
    # Client 0: back on v1, its own draft still there.
    flow = intake(nw, ids[0])
    assert (flow["current_version"], flow["definition"]) == (1, edited)
    # Client 1: back on v1, the draft it edited since kept, and said.
    assert (intake(nw, ids[1])["current_version"], intake(nw, ids[1])["definition"]) == \
        (1, later)
    assert any("draft edited since the roll-out was kept" in n for n in notes[ids[1]])
    # Client 2: what it published since stays live, and said.
    assert intake(nw, ids[2])["current_version"] == 3
    assert any("left on v3" in n for n in notes[ids[2]])
