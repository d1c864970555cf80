"""API keys: shown once, stored hashed, scoped, revocable, expiring, narrowed with the creator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from tests.conftest import PG_ADMIN
from tests.support import Api, as_key, as_user


def superuser(database: str) -> psycopg.Connection:
    return psycopg.connect(PG_ADMIN.rsplit("/", 1)[0] + "/" + database, autocommit=True)


def field_names(response) -> set[str]:
    return {e["field"].split(".")[0] for e in response.get_json()["errors"]}


def new_key(app, world, handle: str = "a_admin", **body) -> tuple[Api, dict]:
    """A key created through the API by `handle`'s session; returns (key caller, body)."""
    r = as_user(app, world, handle).post("/api-keys", json={"name": "ci", **body})
    assert r.status_code == 201, r.get_json()
    created = r.get_json()
    return Api(app.test_client(), token=created["token"]), created


def test_creation_shows_the_token_once(app, world):
    me = as_user(app, world, "a_admin")
    r = me.post("/api-keys", json={"name": "deploy bot", "scopes": ["member.read"]})
    assert r.status_code == 201, r.get_json()
    created = r.get_json()
    token = created["token"]
    assert token.startswith("ovt_")
    assert token.startswith(created["prefix"] + "_")
    assert created["scopes"] == ["member.read"]
    assert created["name"] == "deploy bot"
    secret = token[len(created["prefix"]) + 1:]

    one = me.get(f"/api-keys/{created['id']}")
    assert one.status_code == 200
    assert "token" not in one.get_json()
    listing = me.get("/api-keys")
    assert created["id"] in {k["id"] for k in listing.get_json()["items"]}
    for response in (one, listing):
        body = response.get_data(as_text=True)
        assert secret not in body and token not in body
        assert all("token" not in k for k in listing.get_json()["items"])
    # ... and the token works.
    assert Api(app.test_client(), token=token).get("/members").status_code == 200


def test_no_database_column_holds_the_token(app, world, database):
    _, created = new_key(app, world)
    token = created["token"]
    secret = token[len(created["prefix"]) + 1:]
    with superuser(database) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        assert "api_keys" in tables
        for table in tables:
            query = sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(table))
            for (row,) in conn.execute(query):
                assert secret not in row, f"{table} holds the key's secret"
        (stored,) = conn.execute("SELECT prefix FROM api_keys WHERE id = %s",
                                 (created["id"],)).fetchone()
        assert stored == created["prefix"]


def test_scopes_beyond_the_creators_permissions_are_refused(app, world):
    me = as_user(app, world, "a_admin")  # an admin, not an owner: no billing.manage
    r = me.post("/api-keys", json={"name": "greedy", "scopes": ["member.read",
                                                                "billing.manage"]})
    assert r.status_code == 422
    assert r.mimetype == "application/problem+json"
    assert field_names(r) == {"scopes"}
    assert "greedy" not in me.get("/api-keys").get_data(as_text=True)


def test_unknown_scope_is_refused(app, world):
    r = as_user(app, world, "a_admin").post("/api-keys", json={"name": "x",
                                                               "scopes": ["root.everything"]})
    assert r.status_code == 422
    assert field_names(r) == {"scopes"}


def test_default_scopes_are_the_creators_permissions(app, world):
    _, created = new_key(app, world, "a_admin")
    scopes = set(created["scopes"])
    assert {"member.manage", "apikey.manage", "workspace.manage"} <= scopes
    assert "billing.manage" not in scopes  # owners only


def test_a_key_cannot_mint_a_wider_key(app, world):
    narrow = as_key(app, world, "a_readonly")
    r = narrow.post("/api-keys", json={"name": "wider"})
    assert r.status_code == 403


def test_read_only_key_can_list_members_but_not_invite(app, world):
    key = as_key(app, world, "a_readonly")
    r = key.get("/members")
    assert r.status_code == 200
    assert "a.viewer@people.example.com" in {m["user"]["email"] for m in r.get_json()["items"]}
    r = key.post("/members", json={"email": "new.person@people.example.com", "role": "viewer"})
    assert r.status_code == 403
    assert r.get_json()["type"] == "urn:overture:problem:forbidden"
    emails = {m["user"]["email"] for m in key.get("/members").get_json()["items"]}
    assert "new.person@people.example.com" not in emails


def test_revocation_takes_effect_on_the_next_request(app, world):
    key, created = new_key(app, world)
    assert key.get("/members").status_code == 200
    me = as_user(app, world, "a_admin")
    r = me.delete(f"/api-keys/{created['id']}")
    assert r.status_code == 200
    assert r.get_json()["revoked_at"] is not None
    refused = key.get("/members")
    assert refused.status_code == 401
    assert refused.mimetype == "application/problem+json"
    # Still listed, as revoked, for the record.
    listed = {k["id"]: k for k in me.get("/api-keys").get_json()["items"]}
    assert listed[created["id"]]["revoked_at"] is not None


def test_a_key_can_revoke_itself(app, world):
    key, created = new_key(app, world)
    assert key.delete(f"/api-keys/{created['id']}").status_code == 200
    assert key.get("/members").status_code == 401


def test_expired_key_is_refused(app, world, database):
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    key, created = new_key(app, world, expires_at=soon)
    assert key.get("/members").status_code == 200
    with superuser(database) as conn:
        conn.execute("UPDATE api_keys SET expires_at = now() - interval '1 second' "
                     "WHERE id = %s", (created["id"],))
    assert key.get("/members").status_code == 401


def test_expiry_in_the_past_is_refused_at_creation(app, world):
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    r = as_user(app, world, "a_admin").post("/api-keys", json={"name": "x", "expires_at": past})
    assert r.status_code == 422
    assert field_names(r) == {"expires_at"}


def test_last_used_at_is_recorded(app, world):
    key, created = new_key(app, world)
    me = as_user(app, world, "a_admin")
    assert me.get(f"/api-keys/{created['id']}").get_json()["last_used_at"] is None
    before = datetime.now(UTC) - timedelta(seconds=5)
    assert key.get("/members").status_code == 200
    used = me.get(f"/api-keys/{created['id']}").get_json()["last_used_at"]
    assert used is not None
    assert datetime.fromisoformat(used) >= before


def test_demoting_the_creator_narrows_the_key_at_once(app, world):
    key = as_key(app, world, "a_admin")
    r = key.post("/members", json={"email": "first@people.example.com", "role": "viewer"})
    assert r.status_code == 202
    owner = as_user(app, world, "a_owner")
    r = owner.patch(f"/members/{world.members['a_admin'].id}", json={"role": "viewer"})
    assert r.status_code == 200, r.get_json()
    r = key.post("/members", json={"email": "second@people.example.com", "role": "viewer"})
    assert r.status_code == 403
    assert key.get("/members").status_code == 200  # what a viewer may still do


def test_removing_the_creator_disables_the_key(app, world):
    key = as_key(app, world, "a_admin")
    owner = as_user(app, world, "a_owner")
    assert owner.delete(f"/members/{world.members['a_admin'].id}").status_code == 204
    assert key.get("/members").status_code in (401, 403, 404)


def test_agency_key_acts_in_its_own_client_workspace(app, world):
    key = as_key(app, world, "nw_admin")
    for ref in (world.tid("a"), world.tenants["a"].slug):
        r = key.get("/members", tenant=ref)
        assert r.status_code == 200, r.get_json()
        items = r.get_json()["items"]
        assert {m["tenant_id"] for m in items} == {world.tid("a")}
        assert "a.viewer@people.example.com" in {m["user"]["email"] for m in items}
    r = key.post("/members", tenant=world.tid("a"),
                 json={"email": "via.agency@people.example.com", "role": "viewer"})
    assert r.status_code == 202, r.get_json()
    assert r.get_json()["tenant_id"] == world.tid("a")


def test_agency_key_cannot_enter_another_agencys_workspace(app, world):
    key = as_key(app, world, "nw_admin")
    for ref in (world.tid("c"), world.tenants["c"].slug, world.tid("contoso")):
        r = key.get("/members", tenant=ref)
        assert r.status_code == 404, (ref, r.get_json())
        assert "c.owner@people.example.com" not in r.get_data(as_text=True)


def test_workspace_key_cannot_enter_a_sibling_workspace(app, world):
    r = as_key(app, world, "a_admin").get("/members", tenant=world.tid("b"))
    assert r.status_code == 404


def test_malformed_and_unknown_tokens_are_refused(app, world):
    prefix = world.keys["a_admin"][0].prefix
    for token in ("garbage", "ovt_", prefix + "_wrong-secret", world.keys["a_admin"][1] + "x"):
        r = Api(app.test_client(), token=token).get("/members")
        assert r.status_code == 401, token
        assert r.mimetype == "application/problem+json"
