"""Real PostgreSQL and Redis for every test.

A fresh database per test session, migrated by Alembic as the owner role; the app
connects as a separate role that owns nothing and cannot bypass RLS.
"""

from __future__ import annotations

import contextvars
import os
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
from flask.testing import FlaskClient

from overture.platform import migrate
from overture.platform.config import Settings, load_settings
from overture.platform.db import EMPTY_SCOPE, PLATFORM_TENANT_ID, activate_scope, db
from tests.dns_server import dns_zone  # noqa: F401  (a fixture: a real DNS server)
from tests.support import World, build_world

# The browser tests' fixture (`browser`) and helpers live there.
pytest_plugins = ["tests.console_support", "tests.billing_support"]

PG_ADMIN = os.environ.get("OVERTURE_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_HOST = os.environ.get("OVERTURE_TEST_PG_HOST", "127.0.0.1:5432")
REDIS_URL = os.environ.get("OVERTURE_TEST_REDIS", "redis://127.0.0.1:6379/9")
OWNER_ROLE = "overture_owner"
APP_ROLE = "overture_app"


def admin_execute(*statements: str, dbname: str | None = None) -> None:
    url = PG_ADMIN if dbname is None else PG_ADMIN.rsplit("/", 1)[0] + "/" + dbname
    with psycopg.connect(url, autocommit=True) as conn:
        for stmt in statements:
            conn.execute(stmt)


def ensure_roles() -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        existing = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles")}
        if OWNER_ROLE not in existing:
            conn.execute(f"CREATE ROLE {OWNER_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
        if APP_ROLE not in existing:
            conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB "
                         "NOCREATEROLE")


def create_database(prefix: str = "overture_test") -> str:
    ensure_roles()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin_execute(f"CREATE DATABASE {name} OWNER {OWNER_ROLE}",
                  f"GRANT CONNECT ON DATABASE {name} TO {APP_ROLE}")
    return name


def drop_database(name: str) -> None:
    admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def pg_settings(dbname: str, **overrides: str) -> Settings:
    return load_settings(pg_env(dbname, **overrides))


def pg_env(dbname: str, **overrides: str) -> dict[str, str]:
    """The environment variables of `pg_settings`, for a command run as a user would."""
    env = {
        "OVERTURE_ENV": "test",
        "DATABASE_URL": f"postgresql://{APP_ROLE}@{PG_HOST}/{dbname}",
        "DATABASE_OWNER_URL": f"postgresql://{OWNER_ROLE}@{PG_HOST}/{dbname}",
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "OVERTURE_INSTANCE_PATH": INSTANCE_PATH,
        "OVERTURE_API_RATE_LIMIT": "100000 per minute",
        "OVERTURE_LOGIN_RATE_LIMIT": "100000 per minute",
        "OVERTURE_LOG_LEVEL": "WARNING",
        "OVERTURE_REDIS_NAMESPACE": REDIS_NAMESPACE,
        # Nothing listens there: a domain check outside tests/dns_server.py's fixture
        # fails here rather than asking the machine's resolver about a made-up name.
        "OVERTURE_DNS_NAMESERVERS": "127.0.0.1",
        "OVERTURE_DNS_PORT": "9",
        "OVERTURE_DNS_TIMEOUT_SECONDS": "2",
    }
    env.update(overrides)
    return env


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing() -> None:
    # Production parameters are asserted in test_auth; the rest need not pay them.
    from overture.tenants.passwords import use_fast_parameters

    use_fast_parameters()


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    name = create_database()
    try:
        migrate.upgrade(pg_settings(name))
        yield name
    finally:
        drop_database(name)


@pytest.fixture(scope="session")
def settings(database: str) -> Settings:
    return pg_settings(database)


# Each test session keeps its Redis keys under its own namespace, so sessions that
# run side by side (developers, helpers) never wipe each other's queues or counters.
REDIS_NAMESPACE = f"ovt-test-{uuid.uuid4().hex[:8]}"
# ...and its own instance folder: the audit checkpoint file there describes this
# session's database only.
INSTANCE_PATH = f"/tmp/overture-test-instance-{REDIS_NAMESPACE}"


@pytest.fixture(scope="session", autouse=True)
def _own_instance_folder() -> Iterator[None]:
    yield
    shutil.rmtree(INSTANCE_PATH, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _own_redis_keys() -> Iterator[None]:
    yield
    client = redis.Redis.from_url(REDIS_URL)
    for pattern in (f"{REDIS_NAMESPACE}*", f"LIMITS:*{REDIS_NAMESPACE}*"):
        keys = list(client.scan_iter(pattern))
        if keys:
            client.delete(*keys)


def forget_rate_limits() -> None:
    """Reset this session's rate-limit counters between tests; the Dramatiq queues
    stay, as they belong to worker processes that outlive a test."""
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"LIMITS:*{REDIS_NAMESPACE}*"))
    if keys:
        client.delete(*keys)


class IsolatedClient(FlaskClient):
    """Each request runs in an empty context, as in production: its own app context,
    session and `g`, and no tenant scope left over from the test around it."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        # Streamed bodies are read inside the same context, as a server would.
        kwargs.setdefault("buffered", True)
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture(scope="session")
def app(settings: Settings) -> Any:
    from overture.web.app import create_app

    app = create_app(settings)
    app.test_client_class = IsolatedClient
    return app


def truncate_all(database: str) -> None:
    """Empty every table but keep the platform tenant. Replica mode skips the triggers
    that otherwise refuse to delete from the audit log, and the foreign keys' checks.
    DELETE, not TRUNCATE: a test leaves a few rows, and truncating fifty tables (new
    files for each) took half a second to a second before every test."""
    from overture.models import metadata

    deletes = [f"DELETE FROM {t.name}" for t in reversed(metadata.sorted_tables)]
    admin_execute("BEGIN", "SET LOCAL session_replication_role = replica",
                  "SET LOCAL lock_timeout = '20s'",  # a leaked transaction fails the test
                  *deletes,
                  "INSERT INTO tenants (id, kind, name, slug, status, created_at) VALUES "
                  f"('{PLATFORM_TENANT_ID}', 'platform', 'Platform', 'platform', 'active', now())",
                  "COMMIT", dbname=database)


@pytest.fixture
def app_ctx(app: Any, database: str) -> Iterator[Any]:
    truncate_all(database)
    # The checkpoints sealed the chains just truncated: they go with them.
    app.extensions["overture.settings"].audit_checkpoint_path.unlink(missing_ok=True)
    forget_rate_limits()
    with app.app_context():
        activate_scope(EMPTY_SCOPE)
        yield app
        db.session.rollback()
        activate_scope(EMPTY_SCOPE)


@pytest.fixture
def world(app_ctx: Any) -> World:
    w = build_world()
    activate_scope(EMPTY_SCOPE)
    return w
