"""`overture keys`: rotate the vault's keys."""

from __future__ import annotations

import click

from overture.cli.base import load as _settings


@click.group("keys")
def keys_group() -> None:
    """Vault keys: rotate the master key or a tenant's data key. Safe to interrupt and
    run again: each picks up where the last run stopped."""


@keys_group.command("rotate-master")
def keys_rotate_master() -> None:
    """Re-wrap every tenant data key under the primary (first) master key."""
    from overture.tenants.vault_rotation import rotate_master
    from overture.web.app import create_app

    app = create_app(_settings())
    with app.app_context():
        report = rotate_master(progress=click.echo)
    click.echo(f"{report.rewrapped} data key(s) re-wrapped under '{report.primary_kid}'")
    if report.retired_kids:
        click.echo("no data key uses these master keys any more; they may leave the "
                   f"keyring: {', '.join(report.retired_kids)}")


@keys_group.command("rotate-tenant")
@click.argument("slug")
def keys_rotate_tenant(slug: str) -> None:
    """Re-seal tenant SLUG's credentials under a fresh data key, then drop the old key."""
    from overture.tenants.access import find_tenant
    from overture.tenants.vault_rotation import rotate_tenant
    from overture.web.app import create_app

    app = create_app(_settings())
    with app.app_context():
        tenant = find_tenant(slug)
        if tenant is None:
            raise click.ClickException(f"no tenant with slug {slug!r}")
        report = rotate_tenant(tenant, progress=click.echo)
    removed = ", ".join(map(str, report.removed_versions)) or "none"
    click.echo(f"{report.slug}: {report.resealed} credential(s) re-sealed under data key "
               f"version {report.to_version}; removed version(s): {removed}")
