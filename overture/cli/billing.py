"""`overture billing`: roll-ups, and reporting usage and plans to Stripe."""

from __future__ import annotations

import sys

import click

from overture.cli.base import load as _settings
from overture.platform.errors import ValidationFailed


@click.group("billing")
def billing_group() -> None:
    """Usage metering, and reporting it to Stripe."""


@billing_group.command("rollup")
@click.option("--rebuild", is_flag=True, help="recompute the roll-ups from the raw events")
@click.option("--tenant", "slug", default=None, help="only this tenant (slug)")
def billing_rollup(rebuild: bool, slug: str | None) -> None:
    """Recompute every tenant's hourly and daily usage roll-ups from its raw events, one
    tenant per transaction: once after upgrading to roll-ups, or to check them.
    Idempotent; event writers wait a moment while a tenant is recomputed."""
    if not rebuild:
        raise click.UsageError("say --rebuild: the roll-ups are kept as events are "
                               "written, and this recomputes them from the events")
    from overture.billing.rebuild import rebuild as rebuild_rollups
    from overture.platform.db import db, scoped_to
    from overture.tenants.lifecycle import all_tenants
    from overture.web.app import create_app

    with create_app(_settings()).app_context():
        tenants = all_tenants(slug)
        if slug and not tenants:
            raise click.ClickException(f"no tenant with slug {slug!r}")
        for tenant in tenants:
            with scoped_to(tenant.id):
                events = rebuild_rollups()
                db.session.commit()
            click.echo(f"{tenant.slug}: {events} events")


@billing_group.command("send")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 10_000),
              help="rows per tenant at most")
def billing_send(limit: int) -> None:
    """Queue every tenant's closed hours of usage and send the due meter events to
    Stripe now (the scheduler does both every minute). Safe to run beside it and to
    interrupt: a row is only ever sent under its own identifier."""
    from overture.billing import meter_outbox
    from overture.web.app import create_app

    with create_app(_settings()).app_context():
        queued = meter_outbox.enqueue_all()
        report = meter_outbox.send_due(limit)
        left = meter_outbox.backlog()
    click.echo(f"queued {queued}, sent {report.sent}, failed {report.failed} (kept, tried "
               f"again later), waiting {report.waiting} (no Stripe account or customer yet)")
    oldest = f", the oldest hour {left.oldest_hour:%Y-%m-%dT%H:00Z}" if left.oldest_hour else ""
    click.echo(f"backlog: {left.pending} pending{oldest}; {left.expired} expired")


@billing_group.command("sync-plans")
def billing_sync_plans() -> None:
    """Send pending plan edits (product, prices) and plan assignments (subscriptions)
    to Stripe now, those waiting out a failure too (the scheduler does it every
    minute). Safe to run again and beside it: every creation has its idempotency key."""
    from overture.billing import stripe_plans
    from overture.web.app import create_app

    with create_app(_settings()).app_context():
        report = stripe_plans.sync_due(force=True)
    click.echo(f"synced {report.synced}, failed {report.failed} (kept, tried again later), "
               f"waiting {report.waiting} (no Stripe account, or the plan not synced yet), "
               f"unsupported {report.unsupported} (billed from the draft invoice)")
    if report.failed:
        sys.exit(1)


@billing_group.command("reconcile")
@click.option("--since", required=True, help="a date (YYYY-MM-DD) or an hour (ISO 8601)")
@click.option("--until", required=True, help="a date (included) or an hour (excluded)")
@click.option("--tenant", "slug", default=None, help="only this billed tenant (slug)")
def billing_reconcile(since: str, until: str, slug: str | None) -> None:
    """Compare our hourly roll-ups with Stripe's meter event summaries over a period;
    print each hour that differs and exit with status 1 if any does."""
    from overture.billing import periods, reconcile
    from overture.web.app import create_app

    try:
        period = periods.parse(since, until)
    except ValidationFailed as err:
        found = err.errors[0] if err.errors else {"field": "period", "message": err.detail}
        raise click.BadParameter(found["message"], param_hint=f"--{found['field']}") from err
    with create_app(_settings()).app_context():
        result = reconcile.reconcile(period, slug)
    for line in result.skipped:
        click.echo(f"skipped: {line}")
    for difference in result.differences:
        click.echo(f"DIFFERENT: {difference}")
    click.echo(f"{period.since:%Y-%m-%dT%H:00Z} to {period.until:%Y-%m-%dT%H:00Z}: "
               f"{result.compared} hour(s) compared, {len(result.differences)} different")
    if result.differences:
        sys.exit(1)
