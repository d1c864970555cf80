"""Schema migrations: Alembic, run as the owner role, then grants for the app role."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, pool
from sqlalchemy.engine import make_url

from overture.platform.config import Settings
from overture.platform.rls import grant_app_role

MIGRATIONS = Path(os.environ.get("OVERTURE_MIGRATIONS") or
                  Path(__file__).resolve().parents[2] / "migrations")


def alembic_config(owner_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", owner_url.replace("%", "%%"))
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings.database_owner_url), revision)
    grant(settings)


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings.database_owner_url), revision)


def grant(settings: Settings) -> None:
    """Give the app role (the user of DATABASE_URL) its privileges, if it is another role."""
    app_url, owner_url = make_url(settings.database_url), make_url(settings.database_owner_url)
    if app_url.get_backend_name() != "postgresql" or app_url.username == owner_url.username:
        return
    engine = create_engine(settings.database_owner_url, poolclass=pool.NullPool)
    with engine.begin() as connection:
        grant_app_role(connection, app_url.username or "")
    engine.dispose()


def is_empty(database_url: str) -> bool:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        return "alembic_version" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
