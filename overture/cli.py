"""The `overture` command."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from overture.platform.config import Settings, load_settings
from overture.platform.errors import OvertureError, ValidationFailed

if TYPE_CHECKING:  # imported where used: every command need not load the app
    from overture.platform.audit import ChainReport
    from overture.platform.audit_seal import Checkpoints

IDLE_POLL_MS = 100  # an idle `overture worker` looks for new messages at least this often


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


@main.group("admin")
def admin_group() -> None:
    """Platform admins."""


CLI_ADMIN_ACTOR = "overture admin create (CLI)"


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        # One line; only its line ending is removed, the rest is the password as typed.
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@admin_group.command("create")
@click.argument("email")
@click.option("--name", default="", help="the admin's display name")
@click.option("--password-stdin", is_flag=True,
              help="read the password from the first line of standard input")
def admin_create(email: str, name: str, password_stdin: bool) -> None:
    """Create a platform admin who signs in with EMAIL (e.g. the first one, after
    `overture db upgrade`). Asks for the password twice, unless --password-stdin."""
    from overture.platform import audit
    from overture.platform.db import db
    from overture.tenants.accounts import create_platform_admin
    from overture.web.app import create_app

    settings = _settings()
    password = _read_password(password_stdin)
    app = create_app(settings)
    with app.app_context():
        user = create_platform_admin(email, password, name,
                                     actor=audit.Actor("cli", None, CLI_ADMIN_ACTOR))
        db.session.commit()
        click.echo(f"created platform admin {user.email}; sign in at {settings.public_url}/login")


@main.command("seed-demo")
@click.option("--if-empty", is_flag=True,
              help="succeed without seeding when the database already holds tenants")
def seed_demo_command(if_empty: bool) -> None:
    """Seed the demo tenants and users into an empty database."""
    from overture.demo import DEMO_PASSWORD, is_seeded, seed_demo
    from overture.web.app import create_app

    app = create_app(_settings())
    with app.app_context():
        if is_seeded():
            if if_empty:
                click.echo("the database already holds tenants; no demo seeded")
                return
            raise click.ClickException("the database already holds tenants; not seeding")
        for email, what in seed_demo():
            click.echo(f"{email:28} {what}")
        click.echo(f"password for all: {DEMO_PASSWORD}")


@main.command()
@click.option("--distributed", is_flag=True,
              help="web, worker and scheduler as separate processes, on PostgreSQL and Redis")
@click.option("--web-workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="with --distributed: gunicorn worker processes")
@click.option("--worker-processes", default=2, show_default=True, type=click.IntRange(1, 64),
              help="with --distributed: Dramatiq worker processes")
@click.option("--no-demo", is_flag=True, help="with --distributed: seed no demo")
def up(distributed: bool, web_workers: int, worker_processes: int, no_demo: bool) -> None:
    """Run the embedded default: migrate, seed a demo, serve, work, all in one process.
    With --distributed: migrate, seed the demo into an empty database, then run `overture
    web`, `overture worker` and `overture scheduler` as child processes until Ctrl-C."""
    if distributed:
        from overture.distributed import Options, run_distributed

        run_distributed(_settings(), Options(web_workers=web_workers,
                                             worker_processes=worker_processes,
                                             seed_demo=not no_demo))
        return
    from overture.embedded import run_embedded

    run_embedded(_settings())


@main.command()
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes")
def web(workers: int) -> None:
    """Serve the web app with gunicorn (production)."""
    settings = _settings()
    _metrics_files()  # before any metric exists in this process (imports below)
    from overture.embedded import run_gunicorn

    run_gunicorn(settings, workers)


METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _metrics_files() -> None:
    """The processes of a pool each write their metrics into files in this folder, which
    a scrape adds up (prometheus-client's multiprocess mode). Set before prometheus-client
    is imported: it picks its mode then. A folder the operator named is emptied (what
    processes that ran before left there is no one's now); else a fresh one."""
    import shutil
    import tempfile

    named = os.environ.get(METRICS_DIR_ENV, "").strip()
    if named:
        shutil.rmtree(named, ignore_errors=True)
        Path(named).mkdir(parents=True, exist_ok=True)
    else:
        os.environ[METRICS_DIR_ENV] = tempfile.mkdtemp(prefix="overture-metrics-")


@main.group("audit")
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


@main.group("billing")
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


@main.group("keys")
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


@main.group("prices")
def prices_group() -> None:
    """The per-model LLM price table (USD per million tokens) that turns every tenant's
    tokens into cost. A change applies to later calls only; each is audited in the
    platform's log."""


CLI_ACTOR_LABEL = "overture prices (CLI)"


def _argument_errors(err: ValidationFailed) -> str:
    names = {"provider": "PROVIDER", "model": "MODEL", "input_per_mtok": "INPUT",
             "output_per_mtok": "OUTPUT"}
    return "; ".join(f"{names.get(e['field'], e['field'])}: {e['message']}"
                     for e in err.errors)


def _price_line(entry: Any) -> str:
    from overture.orchestration.llm.prices import plain

    source = f"{entry.source} via {entry.via}" if entry.via else entry.source
    return (f"{entry.provider}/{entry.model}: input {plain(entry.input_per_mtok)}, "
            f"output {plain(entry.output_per_mtok)} USD per million tokens ({source})")


@prices_group.command("list")
@click.option("--provider", default=None, help="only this provider's models")
def prices_list(provider: str | None) -> None:
    """Every priced model: set in the table, or a built-in default."""
    from overture.orchestration.llm import prices
    from overture.web.app import create_app

    if provider is not None and provider not in prices.PRICED_PROVIDERS:
        raise click.BadParameter("one of " + ", ".join(prices.PRICED_PROVIDERS),
                                 param_hint="--provider")
    app = create_app(_settings())
    with app.app_context():
        entries = prices.list_prices(provider)
    width = max([len(f"{e.provider}/{e.model}") for e in entries] + [5])
    click.echo(f"{'MODEL':{width}}  {'INPUT':>12}  {'OUTPUT':>12}  SOURCE")
    for e in entries:
        click.echo(f"{e.provider + '/' + e.model:{width}}  {prices.plain(e.input_per_mtok):>12}"
                   f"  {prices.plain(e.output_per_mtok):>12}  {e.source}")
    click.echo("(USD per million tokens. A model not listed has no price: calls to it "
               "record tokens but no cost; "
               + ", ".join(f"{p} falls back to {f}'s prices"
                           for p, f in prices.FALLBACK_PROVIDER.items()) + ".)")


@prices_group.command("set")
@click.argument("provider")
@click.argument("model")
@click.argument("input_price", metavar="INPUT")
@click.argument("output_price", metavar="OUTPUT")
def prices_set(provider: str, model: str, input_price: str, output_price: str) -> None:
    """Set MODEL's price at PROVIDER: INPUT and OUTPUT in USD per million tokens."""
    from overture.orchestration.llm import prices
    from overture.platform import audit
    from overture.platform.db import db
    from overture.web.app import create_app

    app = create_app(_settings())
    with app.app_context():
        old = prices.effective_price(provider.strip(), model.strip())
        try:
            entry, _ = prices.change_price(
                provider, model, input_price, output_price,
                actor=audit.Actor("cli", None, CLI_ACTOR_LABEL))
        except ValidationFailed as err:
            raise click.UsageError(_argument_errors(err)) from err
        db.session.commit()
    click.echo("set " + _price_line(entry))
    if old is not None:
        click.echo("was " + _price_line(old))
    click.echo("applies to calls from now on")


@prices_group.command("delete")
@click.argument("provider")
@click.argument("model")
def prices_delete(provider: str, model: str) -> None:
    """Remove MODEL's price at PROVIDER from the table."""
    from overture.orchestration.llm import prices
    from overture.platform import audit
    from overture.platform.db import db
    from overture.web.app import create_app

    app = create_app(_settings())
    with app.app_context():
        try:
            old, now = prices.remove_price(provider, model,
                                           actor=audit.Actor("cli", None, CLI_ACTOR_LABEL))
        except ValidationFailed as err:
            raise click.UsageError(_argument_errors(err)) from err
        db.session.commit()
    click.echo("deleted " + _price_line(old))
    if now is None:
        click.echo(f"calls to {old.provider}/{old.model} now record tokens but no cost")
    else:
        click.echo("calls now pay " + _price_line(now))


@main.command()
@click.option("--processes", default=2, show_default=True, help="worker processes")
@click.option("--threads", default=8, show_default=True, help="threads per process")
@click.option("--idle-poll-ms", default=IDLE_POLL_MS, show_default=True,
              type=click.IntRange(10, 10_000),
              help="longest an idle worker waits before it looks for new messages again")
def worker(processes: int, threads: int, idle_poll_ms: int) -> None:
    """Run Dramatiq worker processes for workflow steps, mail and outbound events (needs
    REDIS_URL)."""
    settings = _settings()
    if not settings.redis_url:
        raise click.ClickException("overture worker needs REDIS_URL; `overture up` runs "
                                   "its worker in-process")
    # Dramatiq's Redis consumer backs off while its queue is empty, up to the worker
    # timeout (1 s by default): a run sent to an idle worker would wait that long.
    os.environ["dramatiq_worker_timeout"] = str(idle_poll_ms)  # noqa: SIM112 (Dramatiq reads it so)
    _metrics_files()
    # Dramatiq's main process forks one more process that serves the pool's metrics.
    exporter = (["--fork-function", "overture.platform.metrics_export:serve_worker_metrics"]
                if settings.worker_metrics_port else [])
    os.execvp(sys.executable, [sys.executable, "-m", "dramatiq", "overture.worker_main",  # noqa: S606
                               "--processes", str(processes), "--threads", str(threads),
                               "--queues", "steps", "mail", "events", *exporter])


@main.command()
@click.option("--interval", default=5.0, show_default=True, help="seconds between sweeps")
def scheduler(interval: float) -> None:
    """Fire cron schedules and sweep for lost, expired or overdue work, forever."""
    from overture.orchestration.scheduler import run_scheduler
    from overture.web.app import create_app

    run_scheduler(create_app(_settings()), interval)


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
