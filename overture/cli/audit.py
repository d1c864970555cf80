"""`overture audit`: seal and verify the tenants' audit chains."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import click

from overture.cli.base import load as _settings

if TYPE_CHECKING:  # imported where used: every command need not load the app
    from overture.platform.audit import ChainReport
    from overture.platform.audit_seal import Checkpoints
    from overture.platform.config import Settings


@click.group("audit")
def audit_group() -> None:
    """The audit log."""


@audit_group.command("checkpoint")
def audit_checkpoint() -> None:
    """Seal every tenant's chain head now, outside the database (the scheduler does it
    every OVERTURE_AUDIT_CHECKPOINT_SECONDS)."""
    from overture.platform.audit_seal import HeadSealer
    from overture.platform.db import db
    from overture.tenants.lifecycle import all_tenants
    from overture.web.app import create_app

    settings = _settings()
    with create_app(settings).app_context():
        report = HeadSealer().checkpoint(settings, [t.id for t in all_tenants()])
        db.session.rollback()
    click.echo(f"sealed {report.heads} chain head(s) in {report.records} record(s) into "
               f"{report.path} with audit key {report.kid!r}")


@audit_group.command("verify")
@click.option("--tenant", "slug", default=None, help="only this tenant (slug)")
@click.option("--checkpoints", "paths", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="checkpoint file(s) to check against, oldest first, e.g. a copy kept "
                   "off the database host or the `audit.checkpoint` log lines "
                   "(default: OVERTURE_AUDIT_CHECKPOINT_PATH)")
def audit_verify(slug: str | None, paths: tuple[Path, ...]) -> None:
    """Recompute every tenant's hash chain and check it against the checkpoints; exit 1
    naming each broken chain and its first broken event."""
    from overture.platform.audit import verify_chain
    from overture.platform.audit_seal import load_checkpoints
    from overture.platform.db import scoped_to
    from overture.tenants.lifecycle import all_tenants
    from overture.web.app import create_app

    settings = _settings()
    with create_app(settings).app_context():
        checkpoints = load_checkpoints(settings, paths)
        _echo_checkpoints(checkpoints, paths or (settings.audit_checkpoint_path,), settings)
        tenants = all_tenants(slug)
        if slug and not tenants:
            raise click.ClickException(f"no tenant with slug {slug!r}")
        broken = len(checkpoints.problems) if checkpoints else 0
        for tenant in tenants:
            with scoped_to(tenant.id):
                report = verify_chain(sealed=checkpoints.of(tenant.id) if checkpoints else None)
            if not report.ok:
                broken += 1
            click.echo(f"{tenant.slug}: {_chain_line(report)}")
        if checkpoints and not slug:
            broken += _echo_vanished(checkpoints, {t.id for t in tenants})
    if broken:
        raise click.ClickException(f"{broken} audit check(s) failed (BROKEN above)")


def _echo_checkpoints(checkpoints: Checkpoints | None, paths: tuple[Path, ...],
                      settings: Settings) -> None:
    where = ", ".join(map(str, paths))
    if checkpoints is None:
        click.echo(f"no audit checkpoint yet in {where}: the chains are checked by their own "
                   "hashes only, which the database's owner can recompute. Run `overture "
                   "audit checkpoint` (the scheduler writes one every "
                   f"{settings.audit_checkpoint_seconds:g} s)")
        return
    state = "BROKEN" if checkpoints.problems else "ok"
    click.echo(f"checkpoints: {state} ({checkpoints.records} record(s) in {where}, the last "
               f"at {checkpoints.last_at})")
    for problem in checkpoints.problems:
        click.echo(f"checkpoints: BROKEN at {problem}")


def _chain_line(report: ChainReport) -> str:
    if not report.ok:
        return f"BROKEN at seq {report.broken_seq}: {report.reason}"
    sealed = (f"sealed up to seq {report.sealed_seq} at {report.sealed_at}"
              if report.sealed_seq else "not sealed yet")
    return f"ok ({report.events} events, {sealed})"


def _echo_vanished(checkpoints: Checkpoints, present: set[uuid.UUID]) -> int:
    """Tenants the checkpoints vouch for that are gone from the database, chain and all."""
    gone = sorted(set(checkpoints.heads) - present, key=str)
    for tenant_id in gone:
        seal = checkpoints.heads[tenant_id][max(checkpoints.heads[tenant_id])]
        click.echo(f"tenant {tenant_id}: BROKEN at seq 1: sealed up to seq {seal.seq} at "
                   f"{seal.at}, but the tenant and its chain are gone")
    return len(gone)
