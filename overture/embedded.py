"""Process runners: the embedded all-in-one (`overture up`) and gunicorn (`overture web`)."""

from __future__ import annotations

import gc
from typing import Any

import click

from overture.orchestration.scheduler import SchedulerThread
from overture.platform import migrate
from overture.platform.config import Settings
from overture.platform.metrics_export import process_exited
from overture.platform.queue import EmbeddedWorker


def settle_heap() -> None:
    """Once the app is loaded: keep what lives as long as the process (modules, the app,
    its templates and mappings, ~400,000 objects) out of the garbage collector's full
    passes. Each full pass walked them all, 60 to 400 ms in which no request of the
    process moved (measured by bench/console_pages.py); now it walks what requests made."""
    gc.collect()
    gc.freeze()


def run_embedded(settings: Settings) -> None:
    import waitress

    from overture.demo import DEMO_PASSWORD, is_seeded, seed_demo
    from overture.web.app import create_app

    migrate.upgrade(settings)
    app = create_app(settings)
    logins: list[tuple[str, str]] = []
    with app.app_context():
        if not is_seeded():
            logins = seed_demo()
    worker = EmbeddedWorker(app.extensions["overture.broker"]) if not settings.redis_url else None
    if worker:
        worker.start()
    scheduler = SchedulerThread(app)  # cron ticks, the sweeper and polling triggers
    scheduler.start()
    _banner(settings, logins, DEMO_PASSWORD)
    settle_heap()
    try:
        waitress.serve(app, host=settings.host, port=settings.port, threads=8,
                       ident="overture", _quiet=True)
    finally:
        scheduler.stop()
        if worker:
            worker.stop()


def _banner(settings: Settings, logins: list[tuple[str, str]], password: str) -> None:
    click.echo(f"\nOverture is running at {settings.public_url}/")
    click.echo(f"  database: {settings.database_url}")
    broker = f"redis {settings.redis_url}" if settings.redis_url else "in-process"
    click.echo(f"  broker:   {broker}")
    if logins:
        click.echo(f"\nDemo logins (password for all: {password}):")
        for email, what in logins:
            click.echo(f"  {email:28} {what}")
    else:
        click.echo("\nThe database already held data; no demo was seeded. "
                   f"Demo password, if it was seeded earlier: {password}")
    click.echo("", nl=True)


def run_gunicorn(settings: Settings, workers: int) -> None:
    from gunicorn.app.base import BaseApplication

    from overture.web.app import create_app

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{settings.host}:{settings.port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", 8)
            self.cfg.set("accesslog", None)
            self.cfg.set("child_exit", lambda _server, worker: process_exited(worker.pid))

        def load(self) -> Any:  # in each worker, after the fork
            app = create_app(settings)
            settle_heap()
            return app

    _Server().run()
