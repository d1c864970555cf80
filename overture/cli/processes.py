"""The commands that run Overture: `up`, `web`, `worker`, `scheduler`, and `seed-demo`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from overture.cli.base import load as _settings

IDLE_POLL_MS = 100  # an idle `overture worker` looks for new messages at least this often


@click.command("seed-demo")
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


@click.command()
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


@click.command()
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



@click.command()
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


@click.command()
@click.option("--interval", default=5.0, show_default=True, help="seconds between sweeps")
def scheduler(interval: float) -> None:
    """Fire cron schedules and sweep for lost, expired or overdue work, forever."""
    from overture.orchestration.scheduler import run_scheduler
    from overture.web.app import create_app

    run_scheduler(create_app(_settings()), interval)
