"""Helpers for the vault tests (`pytest -k vault`)."""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
import psycopg

from overture.platform.config import Settings
from overture.platform.db import db, scoped_to
from overture.tenants import credentials, vault
from overture.tenants.access import Principal, access_to
from overture.tenants.vault_models import Credential
from tests.conftest import PG_ADMIN
from tests.support import World


def superuser(database: str) -> psycopg.Connection:
    return psycopg.connect(PG_ADMIN.rsplit("/", 1)[0] + "/" + database, autocommit=True)


def master_entry(kid: str) -> str:
    return f"{kid}:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}"


def plaintext() -> str:
    """A secret value no other test data could contain by accident."""
    return f"plain-{uuid.uuid4().hex}"


def make_credential(w: World, tenant: str = "a", handle: str | None = None,
                    **body: Any) -> Credential:
    """A credential created through the service, as `handle` (the tenant's admin/owner)."""
    handle = handle or {"a": "a_admin", "b": "b_admin", "c": "c_owner"}[tenant]
    t = w.tenants[tenant]
    body.setdefault("name", f"cred-{uuid.uuid4().hex[:8]}")
    body.setdefault("kind", "api_key")
    body.setdefault("fields", {"api_key": plaintext()})
    with scoped_to(t.id, user_id=w.users[handle].id):
        access = access_to(Principal(w.users[handle]), t)
        credential = credentials.create(access, **body)
        db.session.commit()
        db.session.refresh(credential)  # readable after the scope ends, whatever the session
    return credential


def use(w: World, tenant: str, credential_id: Any, purpose: str = "test") -> dict[str, Any]:
    with scoped_to(w.tenants[tenant].id):
        return vault.use_credential(credential_id, purpose)


@contextmanager
def restored_broker() -> Iterator[None]:
    """create_app installs its broker process-wide; put the suite's back afterwards."""
    previous = dramatiq.get_broker()
    try:
        yield
    finally:
        dramatiq.set_broker(previous)


def cli_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """Environment for an `overture` subprocess on the suite's database."""
    env = {
        "PATH": "/usr/bin:/bin",
        "OVERTURE_ENV": settings.env,
        "DATABASE_URL": settings.database_url,
        "DATABASE_OWNER_URL": settings.database_owner_url,
        "REDIS_URL": settings.redis_url or "",
        "SECRET_KEY": settings.secret_key,
        "OVERTURE_INSTANCE_PATH": str(settings.instance_path),
        "OVERTURE_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    if settings.master_key:
        env["OVERTURE_MASTER_KEY"] = settings.master_key
    env.update(overrides)
    return env
