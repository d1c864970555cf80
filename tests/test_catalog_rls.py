"""The database catalogue backs the isolation promise (`-k rls`)."""

from __future__ import annotations

import psycopg

from tests.conftest import APP_ROLE, PG_ADMIN, PG_HOST


def owner_connection(database):
    return psycopg.connect(PG_ADMIN.rsplit("/", 1)[0] + "/" + database)


def test_rls_enabled_and_forced_on_every_tenant_table(database):
    with owner_connection(database) as conn:
        rows = conn.execute("""
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
            WHERE c.relkind = 'r' AND EXISTS (
                SELECT 1 FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
        """).fetchall()
    assert rows, "tenant-owned tables exist"
    for name, enabled, forced, policies in rows:
        assert enabled and forced, f"{name}: RLS enabled={enabled} forced={forced}"
        assert policies >= 1, f"{name} has no policy"


def test_rls_policies_check_writes_too(database):
    with owner_connection(database) as conn:
        rows = conn.execute("""
            SELECT c.relname, p.polname, pg_get_expr(p.polqual, p.polrelid),
                   pg_get_expr(p.polwithcheck, p.polrelid)
            FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
            WHERE p.polname = 'tenant_isolation'
        """).fetchall()
    assert rows
    for table, _, using, check in rows:
        assert "app.tenant_id" in using and "app.tenant_id" in (check or ""), table


def test_rls_app_role_cannot_bypass_and_owns_nothing(database):
    with owner_connection(database) as conn:
        superuser, bypass = conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", (APP_ROLE,)
        ).fetchone()
        owned = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE tableowner = %s", (APP_ROLE,)).fetchone()[0]
    assert not superuser and not bypass
    assert owned == 0


def test_rls_app_role_cannot_alter_or_disable_policies(database):
    with psycopg.connect(f"postgresql://{APP_ROLE}@{PG_HOST}/{database}") as conn:
        for stmt in ("ALTER TABLE memberships DISABLE ROW LEVEL SECURITY",
                     "DROP POLICY tenant_isolation ON memberships",
                     "TRUNCATE memberships"):
            try:
                conn.execute(stmt)
            except psycopg.errors.InsufficientPrivilege:
                conn.rollback()
            else:
                raise AssertionError(f"the app role could run: {stmt}")
