"""`overture db`: the database schema."""

from __future__ import annotations

import click

from overture.cli.base import load as _settings


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate to REVISION (default: head), as the owner role; then grant the app role."""
    from overture.platform import migrate

    migrate.upgrade(_settings(), revision)
    click.echo(f"database at {revision}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate down to REVISION (e.g. -1 or base)."""
    from overture.platform import migrate

    migrate.downgrade(_settings(), revision)
    click.echo(f"database at {revision}")
