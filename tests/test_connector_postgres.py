"""PostgreSQL queries against the tenant's own database: a scratch database on the
local server, made and dropped here (`-k connector`)."""

from __future__ import annotations

import time
import uuid

import pytest

from overture.connectors.errors import ActionFailed
from overture.connectors.execute import execute
from overture.platform.db import scoped_to
from tests.conftest import admin_execute, drop_database
from tests.connector_support import (
    allow_loopback,  # noqa: F401  (fixture)
    connect,
)

pytestmark = pytest.mark.usefixtures("allow_loopback")


@pytest.fixture(scope="module")
def tenant_db():
    """The customer's database: a products table its user may read and insert into."""
    suffix = uuid.uuid4().hex[:8]
    name, role = f"ovt_customer_{suffix}", f"ovt_customer_{suffix}"
    admin_execute(f"CREATE ROLE {role} LOGIN PASSWORD 'customer-db-pw'",
                  f"CREATE DATABASE {name}")
    try:
        admin_execute(
            "CREATE TABLE products (id serial PRIMARY KEY, name text NOT NULL, "
            "price numeric(8,2), added date, tags text[])",
            "INSERT INTO products (name, price, added, tags) VALUES "
            "('tea', 4.50, '2026-01-02', '{hot}'), ('cake', 12.00, '2026-02-03', '{}'), "
            "('pie', 9.99, NULL, '{sweet,hot}'), ('jam', 6, '2026-03-04', NULL)",
            f"GRANT SELECT, INSERT ON products TO {role}",
            f"GRANT USAGE ON SEQUENCE products_id_seq TO {role}", dbname=name)
        yield name, role
    finally:
        drop_database(name)
        admin_execute(f"DROP ROLE IF EXISTS {role}")


def pg_connection(app, world, tenant_db, **more):
    name, role = tenant_db
    return connect(app, world, "postgres", {"host": "127.0.0.1", "port": 5432, "database": name,
                                            "user": role, "password": "customer-db-pw",
                                            **more})


def run(world, conn, input, **kwargs):
    with scoped_to(world.tenants["a"].id):
        return execute(conn, "query", input, **kwargs)


def test_connector_postgres_reads_with_parameters_and_a_row_limit(app, world, tenant_db):
    admin, conn = pg_connection(app, world, tenant_db)
    r = admin.post(f"/connections/{conn}/actions/query", json={"input": {
        "sql": "SELECT name, price, added, tags FROM products WHERE price > %s ORDER BY id",
        "params": [5], "max_rows": 2}})
    assert r.status_code == 200, r.get_json()
    out = r.get_json()["output"]
    assert out["columns"] == ["name", "price", "added", "tags"]
    assert out["rows"] == [{"name": "cake", "price": 12, "added": "2026-02-03", "tags": []},
                           {"name": "pie", "price": 9.99, "added": None,
                            "tags": ["sweet", "hot"]}]
    assert out["row_count"] == 2 and out["truncated"] is True
    named = run(world, conn, {"sql": "SELECT count(*) AS n FROM products WHERE name = "
                                     "%(name)s OR %(name)s = 'all'", "params": {"name": "all"}})
    assert named["rows"] == [{"n": 4}] and named["truncated"] is False
    # A value is a value, never SQL.
    injected = run(world, conn, {"sql": "SELECT count(*) AS n FROM products WHERE name = %s",
                                 "params": ["tea' OR '1'='1"]})
    assert injected["rows"] == [{"n": 0}]
    assert admin.post(f"/connections/{conn}/test").get_json()["ok"] is True

    r = admin.post(f"/connections/{conn}/actions/query", json={"input": {"params": [1]}})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "input.sql"
    r = admin.post(f"/connections/{conn}/actions/query",
                   json={"input": {"sql": "SELECT 1", "max_rows": 0}})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "input.max_rows"


def test_connector_postgres_read_only_refuses_writes(app, world, tenant_db):
    _, conn = pg_connection(app, world, tenant_db)
    for sql in ("INSERT INTO products (name) VALUES ('sneaky')",
                "WITH x AS (SELECT set_config('transaction_read_only', 'off', true)) "
                "INSERT INTO products (name) SELECT 'sneaky' FROM x"):
        with pytest.raises(ActionFailed) as refused:
            run(world, conn, {"sql": sql})
        assert refused.value.reason == "read_only", refused.value.detail
    with pytest.raises(ActionFailed) as refused:
        run(world, conn, {"sql": "COMMIT; INSERT INTO products (name) VALUES ('sneaky')"})
    assert refused.value.reason == "query_failed"
    count = run(world, conn, {"sql": "SELECT count(*) AS n FROM products "
                                     "WHERE name = 'sneaky'"})
    assert count["rows"] == [{"n": 0}]

    _, writer = pg_connection(app, world, tenant_db, read_only=False)
    made = run(world, writer, {"sql": "INSERT INTO products (name, price) VALUES (%s, %s)",
                               "params": ["scone", 3.25]})
    assert made["affected_rows"] == 1 and made["status"] == "INSERT 0 1"
    back = run(world, writer, {"sql": "INSERT INTO products (name) VALUES ('bun') "
                                      "RETURNING name"})
    assert back["rows"] == [{"name": "bun"}]
    with pytest.raises(ActionFailed) as denied:  # the database's own grants still apply
        run(world, writer, {"sql": "DELETE FROM products"})
    assert denied.value.reason == "permission_denied"


def test_connector_postgres_auth_failure_timeout_and_ssrf(app, world, tenant_db,
                                                          monkeypatch):
    admin, nobody = connect(app, world, "postgres", {
        "host": "127.0.0.1", "database": tenant_db[0], "user": "no_such_role_here",
        "password": "whatever-pw"})
    r = admin.post(f"/connections/{nobody}/actions/query", json={"input": {"sql": "SELECT 1"}})
    assert r.status_code == 502 and r.get_json()["reason"] == "auth_failed"

    _, conn = pg_connection(app, world, tenant_db)
    began = time.monotonic()
    with pytest.raises(ActionFailed) as slow:
        run(world, conn, {"sql": "SELECT pg_sleep(5)"}, timeout=0.5)
    assert slow.value.reason == "timeout" and time.monotonic() - began < 4
    with pytest.raises(ActionFailed) as slow:
        run(world, conn, {"sql": "SELECT pg_sleep(5)", "timeout_seconds": 0.3})
    assert slow.value.reason == "timeout"
    with pytest.raises(ActionFailed) as broken:
        run(world, conn, {"sql": "SELEC nonsense"})
    assert broken.value.reason == "query_failed" and "syntax" in broken.value.detail

    monkeypatch.delenv("OVERTURE_OUTBOUND_ALLOWLIST")
    with pytest.raises(ActionFailed) as blocked:
        run(world, conn, {"sql": "SELECT 1"})
    assert blocked.value.reason == "blocked" and "127.0.0.1" in blocked.value.detail
