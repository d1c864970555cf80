"""Alembic: an empty database upgrades to head, and down/up round-trips."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from overture.models import metadata
from overture.platform import migrate
from tests.conftest import create_database, drop_database, pg_settings


def table_names(url):
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrations_round_trip_on_postgresql():
    name = create_database("overture_migr")
    try:
        settings = pg_settings(name)
        migrate.upgrade(settings)
        expected = {t.name for t in metadata.sorted_tables}
        assert expected <= table_names(settings.database_owner_url)
        migrate.downgrade(settings, "base")
        assert table_names(settings.database_owner_url) <= {"alembic_version"}
        migrate.upgrade(settings)
        assert expected <= table_names(settings.database_owner_url)
    finally:
        drop_database(name)


def test_migrations_round_trip_on_sqlite(tmp_path):
    from overture.platform.config import load_settings

    settings = load_settings({"OVERTURE_INSTANCE_PATH": str(tmp_path), "OVERTURE_ENV": "test"})
    assert settings.is_sqlite
    migrate.upgrade(settings)
    expected = {t.name for t in metadata.sorted_tables}
    assert expected <= table_names(settings.database_url)
    migrate.downgrade(settings, "base")
    assert table_names(settings.database_url) <= {"alembic_version"}
    migrate.upgrade(settings)
    assert expected <= table_names(settings.database_url)


def test_models_match_migrations():
    """Autogenerate finds nothing to do: every model change came with a migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    name = create_database("overture_drift")
    try:
        settings = pg_settings(name)
        migrate.upgrade(settings)
        engine = create_engine(settings.database_owner_url)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        engine.dispose()
        assert diff == []
    finally:
        drop_database(name)
