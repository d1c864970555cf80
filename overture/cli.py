"""The `overture` command."""

from __future__ import annotations

import sys
from typing import Any

import click

from overture.platform.config import Settings, load_settings
from overture.platform.errors import OvertureError


def _settings() -> Settings:
    try:
        return load_settings()
    except OvertureError as err:
        raise click.ClickException(err.detail) from err


class _Group(click.Group):
    """Turn our errors into a one-line message and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OvertureError as err:
            raise click.ClickException(err.detail) from err


@click.group(cls=_Group)
def main() -> None:
    """Overture: multi-tenant AI agent orchestration."""


@main.group()
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


@main.command("seed-demo")
def seed_demo_command() -> None:
    """Seed the demo tenants and users into an empty database."""
    from overture.demo import DEMO_PASSWORD, is_seeded, seed_demo
    from overture.web.app import create_app

    app = create_app(_settings())
    with app.app_context():
        if is_seeded():
            raise click.ClickException("the database already holds tenants; not seeding")
        for email, what in seed_demo():
            click.echo(f"{email:28} {what}")
        click.echo(f"password for all: {DEMO_PASSWORD}")


@main.command()
def up() -> None:
    """Run the embedded default: migrate, seed a demo, serve, work, all in one process."""
    from overture.embedded import run_embedded

    run_embedded(_settings())


@main.command()
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes")
def web(workers: int) -> None:
    """Serve the web app with gunicorn (production)."""
    from overture.embedded import run_gunicorn

    run_gunicorn(_settings(), workers)


@main.command()
@click.option("--markdown/--plain", default=True)
def permissions(markdown: bool) -> None:
    """Print the role -> permission matrix."""
    from overture.tenants.roles import markdown_table

    click.echo(markdown_table())


@main.command("config")
def config_table() -> None:
    """Print the environment variables Overture reads."""
    from overture.platform.config import markdown_table

    click.echo(markdown_table())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
