"""The `overture` command: one module per command group."""

from __future__ import annotations

import sys

import click

from overture.cli import admin, audit, billing, keys, prices, processes, schema
from overture.cli.base import Group
from overture.cli.processes import IDLE_POLL_MS

__all__ = ["IDLE_POLL_MS", "main"]


@click.group(cls=Group)
def main() -> None:
    """Overture: multi-tenant AI agent orchestration."""


for command in (schema.db, admin.admin_group, processes.seed_demo_command, processes.up,
                processes.web, processes.worker, processes.scheduler, audit.audit_group,
                billing.billing_group, keys.keys_group, prices.prices_group):
    main.add_command(command)


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
