"""The audit log records every mutating act, in the same transaction, and is
readable, filterable and exportable by those allowed (`-k audit`)."""

from __future__ import annotations

import csv
import io
import json

from overture.platform import audit
from overture.platform.db import PLATFORM_TENANT_ID, db, scoped_to
from tests.support import PASSWORD, as_key, as_user, csrf_token


def events(tenant_id, action_prefix=""):
    with scoped_to(tenant_id):
        rows = audit.list_events(audit.EventFilter(action_prefix=action_prefix), None, 200)[0]
        return [(e.action, e.actor_id, e.target_id, e.details, e.request_id) for e in rows]


def test_audit_member_acts_are_recorded_with_actor_and_request(app, world):
    admin = as_user(app, world, "a_admin")
    r = admin.post("/members", json={"email": "new.hire@x.example.com", "role": "viewer"})
    assert r.status_code == 202
    invitation_id = r.get_json()["id"]
    member_id = str(world.members["a_viewer"].id)
    admin.patch(f"/members/{member_id}", json={"role": "builder"})
    admin.delete(f"/members/{member_id}")
    log = events(world.tenants["a"].id, "member.")
    actions = [e[0] for e in log]
    assert actions == ["member.invited", "member.role_changed", "member.removed"]
    assert {e[1] for e in log} == {str(world.users["a_admin"].id)}
    assert [e[2] for e in log] == [invitation_id, member_id, member_id]
    assert log[1][3]["from"] == "viewer" and log[1][3]["to"] == "builder"
    assert all(e[4] for e in log), "each event carries the request id"
    assert events(world.tenants["b"].id, "member.") == []


def test_audit_request_id_matches_the_response_header(app, world):
    admin = as_key(app, world, "a_admin")
    r = admin.client.post("/api/v1/api-keys", json={"name": "ci"},
                          headers={**admin.headers(None), "X-Request-ID": "req-abc-123"})
    assert r.status_code == 201 and r.headers["X-Request-ID"] == "req-abc-123"
    [created] = [e for e in events(world.tenants["a"].id, "apikey.created")
                 if e[4] == "req-abc-123"]
    assert created[3]["name"] == "ci"
    assert created[1] == str(world.keys["a_admin"][0].id), "the acting API key is the actor"


def test_audit_api_key_revocation_and_new_address(app, world):
    admin = as_user(app, world, "a_admin")
    key_id = world.keys["a_readonly"][0].id
    assert admin.delete(f"/api-keys/{key_id}").status_code == 200
    assert [e[0] for e in events(world.tenants["a"].id, "apikey.revoked")] == ["apikey.revoked"]
    caller = as_key(app, world, "b_admin")
    caller.client.get("/api/v1/members", headers=caller.headers(None),
                      environ_base={"REMOTE_ADDR": "203.0.113.9"})
    caller.client.get("/api/v1/members", headers=caller.headers(None),
                      environ_base={"REMOTE_ADDR": "203.0.113.9"})
    new_ip = events(world.tenants["b"].id, "apikey.used_from_new_ip")
    assert [e[3]["ip"] for e in new_ip] == ["203.0.113.9"], "once per new address"


def test_audit_tenant_suspension_is_in_both_client_and_agency_logs(app, world):
    agency = as_user(app, world, "nw_admin", tenant="northwind")
    agency.post(f"/tenants/{world.tid('a')}/suspend")
    for tenant in ("a", "northwind"):
        log = events(world.tenants[tenant].id, "tenant.suspended")
        assert [(e[0], e[2]) for e in log] == [("tenant.suspended", world.tid("a"))]


def test_audit_logins_go_to_the_platform_log_without_typed_emails(app, world):
    client = app.test_client()
    token = csrf_token(client)
    client.post("/login", data={"email": "nobody@x.example.com", "password": "x" * 12,
                                "csrf_token": token})
    client.post("/login", data={"email": world.users["a_admin"].email, "password": "wrong!!",
                                "csrf_token": token})
    client.post("/login", data={"email": world.users["a_admin"].email, "password": PASSWORD,
                                "csrf_token": token})
    log = events(PLATFORM_TENANT_ID, "auth.")
    assert [e[0] for e in log] == ["auth.login_failed", "auth.login_failed", "auth.login"]
    assert log[0][3] == {"email_known": False} and log[0][2] is None
    assert log[1][3] == {"email_known": True} and log[1][2] == str(world.users["a_admin"].id)
    with scoped_to(PLATFORM_TENANT_ID):
        dumped = json.dumps([e.details for e in audit.iter_events(audit.EventFilter())])
    assert "nobody@x.example.com" not in dumped


def test_audit_event_rolls_back_with_its_change(app_ctx, world):
    with scoped_to(world.tenants["a"].id):
        audit.record("test.kept")
        db.session.commit()
        audit.record("test.rolled_back")
        db.session.rollback()
        audit.record("test.after")
        db.session.commit()
        assert [e[0] for e in events(world.tenants["a"].id, "test.")] == ["test.kept",
                                                                           "test.after"]
        assert audit.verify_chain().ok


def test_audit_failed_change_leaves_no_event(app, world):
    owner = as_user(app, world, "a_owner")
    r = owner.delete(f"/members/{world.members['a_owner'].id}")
    assert r.status_code == 409
    assert events(world.tenants["a"].id, "member.removed") == []


def test_audit_api_filters_and_cursor(app, world):
    admin = as_user(app, world, "a_admin")
    for i in range(5):
        admin.post("/members", json={"email": f"p{i}@x.example.com", "role": "viewer"})
    admin.post("/api-keys", json={"name": "robot"})
    auditor = as_user(app, world, "a_auditor")
    r = auditor.get("/audit?action=member.&limit=2")
    assert r.status_code == 200
    page = r.get_json()
    seen = [e["seq"] for e in page["items"]]
    while page["next_cursor"]:
        page = auditor.get(f"/audit?action=member.&limit=2&cursor={page['next_cursor']}"
                           ).get_json()
        seen += [e["seq"] for e in page["items"]]
    assert len(seen) == 5 and seen == sorted(seen)
    keys = auditor.get("/audit?action=apikey.").get_json()["items"]
    assert [e["details"]["name"] for e in keys][-1] == "robot"
    mine = auditor.get(f"/audit?actor={world.users['a_admin'].id}").get_json()["items"]
    assert len(mine) == 6
    future = auditor.get("/audit?since=2999-01-01T00:00:00Z").get_json()["items"]
    assert future == []
    bad = auditor.get("/audit?since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z")
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "until"
    assert auditor.get("/audit?cursor=zzz").status_code == 422


def test_audit_access_rules(app, world):
    as_user(app, world, "a_admin").post("/members", json={"email": "z@x.example.com",
                                                          "role": "viewer"})
    assert as_user(app, world, "a_viewer").get("/audit").status_code == 403
    export = as_user(app, world, "a_auditor").get("/audit/export?action=member.")
    assert export.status_code == 200 and export.get_data(as_text=True).count("\n") == 1
    # an agency reads its client's log; another workspace cannot
    agency = as_user(app, world, "nw_admin")
    r = agency.get("/audit?action=member.", tenant=world.tid("a"))
    assert r.status_code == 200 and len(r.get_json()["items"]) == 1
    assert as_user(app, world, "b_admin").get("/audit", tenant=world.tid("a")).status_code == 404
    assert as_user(app, world, "c_owner").get("/audit", tenant=world.tid("a")).status_code == 404
    # auditors change nothing: there is nothing to change, and mutations elsewhere are refused
    auditor = as_user(app, world, "a_auditor")
    assert auditor.post("/members", json={"email": "q@x.example.com",
                                          "role": "viewer"}).status_code == 403
    assert auditor.call("DELETE", "/audit").status_code == 405


def test_audit_export_jsonl_and_csv(app, world):
    admin = as_user(app, world, "a_admin")
    admin.post("/members", json={"email": "x1@x.example.com", "role": "viewer",
                                 "name": "=HYPERLINK(\"http://evil\")"})
    admin.patch("/tenant", json={"name": "=cmd|' /C calc'!A0"})
    auditor = as_user(app, world, "a_auditor")
    r = auditor.get("/audit/export?format=jsonl")
    assert r.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in r.get_data(as_text=True).splitlines()]
    assert [e["action"] for e in lines][-2:] == ["member.invited", "tenant.renamed"]
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    r = auditor.get("/audit/export?format=csv&action=tenant.")
    assert r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [row["action"] for row in rows] == ["tenant.renamed"]
    assert json.loads(rows[0]["details"])["name"].startswith("=cmd")
    r = auditor.get("/audit/export?format=csv")
    body = r.get_data(as_text=True)
    assert "\n=" not in body and ",=" not in body, "formula cells are defused"
    assert auditor.get("/audit/export?format=xml").status_code == 422


def test_audit_verify_endpoint(app, world):
    as_user(app, world, "a_admin").post("/members", json={"email": "v@x.example.com",
                                                          "role": "viewer"})
    report = as_user(app, world, "a_auditor").get("/audit/verify").get_json()
    with scoped_to(world.tenants["a"].id):
        count = len(list(audit.iter_events(audit.EventFilter())))
    assert report == {"ok": True, "events": count, "broken_seq": None, "reason": None,
                      "sealed_seq": None, "sealed_at": None}  # no checkpoint yet
