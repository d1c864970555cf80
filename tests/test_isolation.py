"""Cross-tenant isolation, in depth: the API, the ORM scope and PostgreSQL RLS.

`pytest -k "isolation or rls or cross_tenant"` selects this module.
"""

from __future__ import annotations

import json

import psycopg
import pytest
from sqlalchemy import create_engine, text

from overture.platform.db import Scope, activate_scope, db, scoped_to
from overture.tenants.models import Membership
from tests.conftest import APP_ROLE, PG_HOST
from tests.support import as_key, as_user


def b_fingerprints(world):
    """Strings that must never appear in a response given to workspace A's callers."""
    prints = [world.tid("b"), world.tenants["b"].slug, "Workspace B"]
    for handle in ("b_owner", "b_admin", "b_viewer"):
        prints += [str(world.members[handle].id), world.users[handle].email]
    key, token = world.keys["b_admin"]
    prints += [str(key.id), key.prefix, token]
    return prints


def assert_no_b_data(world, response):
    body = response.get_data(as_text=True)
    for fingerprint in b_fingerprints(world):
        assert fingerprint not in body, f"{fingerprint} leaked: {body[:300]}"


@pytest.fixture(params=["session", "api_key"])
def a_caller(request, app, world):
    """Workspace A's admin, once signed in and once through an API key."""
    if request.param == "session":
        return as_user(app, world, "a_admin")
    return as_key(app, world, "a_admin")


def test_cross_tenant_reads_of_b_resources_are_not_found(a_caller, world):
    b_member = world.members["b_viewer"].id
    b_key = world.keys["b_admin"][0].id
    for path in (f"/members/{b_member}", f"/api-keys/{b_key}", f"/tenants/{world.tid('b')}"):
        response = a_caller.get(path)
        assert response.status_code == 404, (path, response.get_json())
        assert_no_b_data(world, response)


def test_cross_tenant_lists_show_none_of_b(a_caller, world):
    for path in ("/members", "/api-keys", "/tenants", "/me", "/tenant"):
        response = a_caller.get(path)
        assert response.status_code in (200, 403), (path, response.get_json())
        assert_no_b_data(world, response)
    members = a_caller.get("/members").get_json()["items"]
    assert {m["tenant_id"] for m in members} == {world.tid("a")}


def test_cross_tenant_updates_and_deletes_of_b_resources_change_nothing(a_caller, world, app):
    b_member = world.members["b_viewer"]
    b_key = world.keys["b_admin"][0]
    attempts = [
        ("PATCH", f"/members/{b_member.id}", {"role": "owner"}),
        ("DELETE", f"/members/{b_member.id}", None),
        ("DELETE", f"/api-keys/{b_key.id}", None),
        ("PATCH", f"/tenants/{world.tid('b')}", {"name": "pwned"}),
        ("POST", f"/tenants/{world.tid('b')}/suspend", None),
        ("DELETE", f"/tenants/{world.tid('b')}", None),
    ]
    for method, path, body in attempts:
        response = a_caller.call(method, path, json=body)
        assert response.status_code in (403, 404), (method, path, response.get_json())
        assert_no_b_data(world, response)
    # B is untouched: its owner still sees the viewer, the key works, the name stands
    b = as_key(app, world, "b_admin")
    assert b.get(f"/members/{b_member.id}").get_json()["role"] == "viewer"
    assert b.get("/tenant").get_json()["name"] == "Workspace B"


def test_cross_tenant_header_naming_b_is_not_found(a_caller, world):
    for path in ("/members", "/api-keys", "/tenant"):
        response = a_caller.get(path, tenant=world.tid("b"))
        assert response.status_code == 404, (path, response.get_json())
        assert_no_b_data(world, response)
    assert a_caller.get("/members", tenant="ws-b").status_code == 404


def test_cross_tenant_writes_cannot_target_b(a_caller, world):
    response = a_caller.post("/members", tenant=world.tid("b"),
                             json={"email": "intruder@x.example.com", "role": "owner"})
    assert response.status_code == 404
    response = a_caller.post("/members", json={"email": "new@x.example.com", "role": "viewer"})
    assert response.status_code == 202
    assert response.get_json()["tenant_id"] == world.tid("a")


def test_agency_admin_reaches_own_clients_but_not_another_agencys(app, world):
    for caller in (as_user(app, world, "nw_admin"), as_key(app, world, "nw_admin")):
        for ws in ("a", "b"):
            response = caller.get("/members", tenant=world.tid(ws))
            assert response.status_code == 200
            assert {m["tenant_id"] for m in response.get_json()["items"]} == {world.tid(ws)}
        response = caller.get("/members", tenant=world.tid("c"))
        assert response.status_code == 404
        assert world.users["c_owner"].email not in response.get_data(as_text=True)
        listed = {t["id"] for t in caller.get("/tenants", tenant=world.tid("northwind"))
                  .get_json()["items"]}
        assert listed == {world.tid("a"), world.tid("b")}
        assert caller.get(f"/tenants/{world.tid('c')}",
                          tenant=world.tid("northwind")).status_code == 404


def test_workspace_member_does_not_reach_sibling_workspace_or_agency(app, world):
    a = as_user(app, world, "a_owner")
    assert a.get("/members", tenant=world.tid("northwind")).status_code == 404
    assert a.get("/members", tenant=world.tid("b")).status_code == 404


def test_viewer_cannot_mutate(app, world):
    viewer = as_user(app, world, "a_viewer")
    admin_member = world.members["a_admin"].id
    attempts = [
        ("POST", "/members", {"email": "x@x.example.com", "role": "viewer"}),
        ("PATCH", f"/members/{admin_member}", {"role": "viewer"}),
        ("DELETE", f"/members/{admin_member}", None),
        ("POST", "/api-keys", {"name": "mine"}),
        ("DELETE", f"/api-keys/{world.keys['a_admin'][0].id}", None),
        ("PATCH", "/tenant", {"name": "renamed"}),
    ]
    for method, path, body in attempts:
        response = viewer.call(method, path, json=body)
        assert response.status_code == 403, (method, path, response.get_json())
        assert response.get_json()["type"] == "urn:overture:problem:forbidden"
    assert viewer.get("/members").status_code == 200
    still = as_key(app, world, "a_admin").get(f"/members/{admin_member}").get_json()
    assert still["role"] == "admin"


def test_portal_member_cannot_read_the_workspace(app, world):
    member = as_user(app, world, "a_member")
    assert member.get("/members").status_code == 403
    assert member.get("/api-keys").status_code == 403


def test_suspended_tenant_refuses_its_users_and_keys(app, world):
    agency = as_user(app, world, "nw_admin", tenant="northwind")
    assert agency.post(f"/tenants/{world.tid('a')}/suspend").status_code == 200
    for caller in (as_user(app, world, "a_admin"), as_key(app, world, "a_admin")):
        response = caller.get("/members")
        assert response.status_code == 403
        assert response.get_json()["type"] == "urn:overture:problem:tenant-suspended"
    assert as_key(app, world, "b_admin").get("/members").status_code == 200
    assert agency.post(f"/tenants/{world.tid('a')}/resume").status_code == 200
    assert as_key(app, world, "a_admin").get("/members").status_code == 200


def test_suspended_agency_pauses_its_clients(app, world):
    root = as_user(app, world, "platform")
    assert root.post(f"/tenants/{world.tid('northwind')}/suspend").status_code == 200
    assert as_key(app, world, "a_admin").get("/members").status_code == 403
    assert as_key(app, world, "c_owner").get("/members").status_code == 200


# ------------------------------------------------------------------ the database half


def app_role_connection(database):
    return psycopg.connect(f"postgresql://{APP_ROLE}@{PG_HOST}/{database}")


def tenant_tables(conn):
    return [r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND column_name = 'tenant_id'")]


def test_rls_raw_sql_with_a_context_sees_none_of_b(world, database):
    a, b = world.tid("a"), world.tid("b")
    with app_role_connection(database) as conn:
        tables = tenant_tables(conn)
        assert {"memberships", "api_keys"} <= set(tables)
        for table in tables:
            with conn.transaction():
                conn.execute("SELECT set_config('app.tenant_id', %s, true)", (a,))
                owners = {str(r[0]) for r in conn.execute(f"SELECT tenant_id FROM {table}")}
                assert owners <= {a}, table
                hidden = conn.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = %s",
                                      (b,)).fetchone()[0]
                assert hidden == 0, table


def test_rls_fails_closed_without_a_tenant(world, database):
    with app_role_connection(database) as conn:
        for table in tenant_tables(conn):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
            conn.rollback()


def test_rls_refuses_writes_into_another_tenant(world, database):
    a, b = world.tid("a"), world.tid("b")
    victim = str(world.members["b_viewer"].id)
    with app_role_connection(database) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (a,))
        assert conn.execute("UPDATE memberships SET role = 'owner' WHERE id = %s",
                            (victim,)).rowcount == 0
        assert conn.execute("DELETE FROM memberships WHERE id = %s", (victim,)).rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO memberships (id, tenant_id, user_id, role, created_at) "
                "VALUES (gen_random_uuid(), %s, %s, 'owner', now())",
                (b, str(world.users["a_admin"].id)))


def test_rls_identity_read_shows_only_own_memberships(world, database):
    me = str(world.users["a_admin"].id)
    with app_role_connection(database) as conn:
        conn.execute("SELECT set_config('app.user_id', %s, true)", (me,))
        rows = conn.execute("SELECT user_id, tenant_id FROM memberships").fetchall()
        assert rows and {str(r[0]) for r in rows} == {me}
        # identity read grants no write
        assert conn.execute("UPDATE memberships SET role = 'owner'").rowcount == 0


def test_rls_pooled_connection_carries_no_tenant_context(world, settings):
    engine = create_engine(settings.database_url, pool_size=1, max_overflow=0)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"),
                         {"t": world.tid("a")})
            assert conn.execute(text("SELECT count(*) FROM memberships")).scalar() > 0
        with engine.begin() as conn:  # the same pooled connection, a new transaction
            assert conn.execute(text("SELECT current_setting('app.tenant_id', true)")
                                ).scalar() in ("", None)
            assert conn.execute(text("SELECT count(*) FROM memberships")).scalar() == 0
    finally:
        engine.dispose()


def test_cross_tenant_orm_scope_limits_every_query(world):
    with scoped_to(world.tenants["a"].id):
        rows = db.session.scalars(db.select(Membership)).all()
        assert rows and {m.tenant_id for m in rows} == {world.tenants["a"].id}
        # loading B's row by id through the scope finds nothing
        assert db.session.scalars(db.select(Membership).where(
            Membership.id == world.members["b_viewer"].id)).one_or_none() is None
    activate_scope(Scope())
    assert db.session.scalars(db.select(Membership)).all() == []


def test_cross_tenant_orm_refuses_to_stamp_a_row_into_another_tenant(world):
    from overture.platform.db import CrossTenantWrite

    with scoped_to(world.tenants["a"].id):
        db.session.add(Membership(tenant_id=world.tenants["b"].id,
                                  user_id=world.users["a_admin"].id, role="owner"))
        with pytest.raises(CrossTenantWrite):
            db.session.flush()
    db.session.rollback()


def test_cross_tenant_problem_bodies_are_json(a_caller, world):
    response = a_caller.get(f"/members/{world.members['b_viewer'].id}")
    assert response.mimetype == "application/problem+json"
    assert json.loads(response.get_data(as_text=True))["status"] == 404
