"""Row-level security: the database half of tenant scoping (see `platform.db`).

Migrations call `enable_tenant_rls` for every table with a `tenant_id`; the
policies read the same three settings the session writes per transaction.
With no tenant set, `current_tenant` is NULL and no row matches: fail closed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

CURRENT_TENANT = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"
CURRENT_USER = "NULLIF(current_setting('app.user_id', true), '')::uuid"
CURRENT_KEY_PREFIX = "NULLIF(current_setting('app.api_key_prefix', true), '')"
# Set only around the lookup of a request's host (tenants/domains.py), never in a scope.
CURRENT_HOST = "NULLIF(current_setting('app.host', true), '')"

# Tables the app role may only read and append to (the audit log arrives here).
APPEND_ONLY_TABLES: set[str] = {"audit_events"}


def enable_tenant_rls(op: Any, table: str, identity_read: str | None = None) -> None:
    """ENABLE + FORCE RLS on `table`, tenant policy, and an optional identity-keyed read."""
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON {table} "
               f"USING (tenant_id = {CURRENT_TENANT}) WITH CHECK (tenant_id = {CURRENT_TENANT})")
    if identity_read:
        op.execute(f"CREATE POLICY identity_read ON {table} FOR SELECT USING ({identity_read})")


def disable_tenant_rls(op: Any, table: str, identity_read: bool = False) -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    if identity_read:
        op.execute(f"DROP POLICY IF EXISTS identity_read ON {table}")
    op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")


def grant_app_role(connection: Any, role: str) -> None:
    """What the app role may do: read and write rows, never own, alter or bypass."""
    quoted = connection.dialect.identifier_preparer.quote(role)
    tables = connection.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
    connection.execute(text(f"GRANT USAGE ON SCHEMA public TO {quoted}"))
    for table in tables:
        if table == "alembic_version":
            privileges = "SELECT"
        elif table in APPEND_ONLY_TABLES:
            privileges = "SELECT, INSERT"
        else:
            privileges = "SELECT, INSERT, UPDATE, DELETE"
        connection.execute(text(f"REVOKE ALL ON {table} FROM {quoted}"))
        connection.execute(text(f"GRANT {privileges} ON {table} TO {quoted}"))
    connection.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}"))
