"""Fault-test helpers: a PostgreSQL cluster of the test's own, to stop and restart at
will (never the shared server on 5432), and the app's processes running against it.

    with ThrowawayPostgres() as pg:       # initdb'd into a temporary folder, on a free port
        settings = pg.overture_database() # roles, a database migrated as conftest does
        ...
        pg.restart(down_for=2.0)          # the outage the test is about

A test module imports the fixture `throwaway_postgres` (module-scoped: the cluster, a
migrated database with the usual world of tests/support.py, and an app on it), and
starts `overture web` (WebProcess), `overture scheduler` (scheduler_process) and
workers (tests/engine_support.py WorkerProcess) against `.settings`.

`initdb` refuses to run as root: as root, the cluster is made and run by the
`postgres` system user (`runuser`), as the Debian packages do for theirs. The folder and
the server are removed when the block ends, whatever happened in it, and at exit.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from overture.platform import migrate
from overture.platform.config import Settings, load_settings
from overture.platform.db import EMPTY_SCOPE, activate_scope, db, scoped_to
from tests.conftest import APP_ROLE, OWNER_ROLE, REDIS_NAMESPACE, REDIS_URL
from tests.engine_support import ROOT, free_port, settings_env
from tests.support import World, build_world

SYSTEM_USER = "postgres"


def _bin_dir() -> str:
    """The newest installed PostgreSQL's programs (OVERTURE_TEST_PG_BIN overrides)."""
    chosen = os.environ.get("OVERTURE_TEST_PG_BIN")
    if chosen:
        return chosen
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[-3]))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("no PostgreSQL server programs (initdb, pg_ctl) installed")
    return os.path.dirname(initdb)


class ThrowawayPostgres:
    """A PostgreSQL server of this test's own, in a temporary folder, on a free port,
    trusting local connections; tuned for tests (no fsync)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bin = _bin_dir()
        self.folder = tempfile.mkdtemp(prefix="ovt-pg-")
        self.data = os.path.join(self.folder, "data")
        self.log = os.path.join(self.folder, "server.log")
        self._as_root = os.geteuid() == 0
        if self._as_root:
            user = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        atexit.register(self.destroy)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, role: str = "postgres", dbname: str = "postgres") -> str:
        return f"postgresql://{role}@{self.host}/{dbname}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [os.path.join(self.bin, args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True,
                              cwd=self.folder, timeout=120)

    def create(self) -> ThrowawayPostgres:
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--locale=C")
        return self.start()

    def start(self) -> ThrowawayPostgres:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}"
                   " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                   " -c max_connections=200")
        self._run("pg_ctl", "start", "-D", self.data, "-l", self.log, "-w", "-t", "60",
                  "-o", options)
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` ends every session at once, as a restart does."""
        self._run("pg_ctl", "stop", "-D", self.data, "-m", mode, "-w", "-t", "60",
                  check=False)

    def restart(self, down_for: float = 0.0) -> None:
        """A restart as operators do one (`-m fast`), down for `down_for` seconds."""
        self.stop("fast")
        time.sleep(down_for)
        self.start()

    def execute(self, *statements: str, dbname: str = "postgres") -> None:
        with psycopg.connect(self.url(dbname=dbname), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def overture_database(self, name: str = "overture") -> Settings:
        """The owner and app roles and a database migrated by Alembic, as tests/conftest.py
        makes them on the shared server; the settings of the app on it."""
        self.execute(f"CREATE ROLE {OWNER_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS",
                     f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB"
                     " NOCREATEROLE",
                     f"CREATE DATABASE {name} OWNER {OWNER_ROLE}",
                     f"GRANT CONNECT ON DATABASE {name} TO {APP_ROLE}")
        settings = self.settings(name)
        migrate.upgrade(settings)
        return settings

    def settings(self, dbname: str, **overrides: str) -> Settings:
        env = {
            "OVERTURE_ENV": "test",
            "DATABASE_URL": self.url(APP_ROLE, dbname),
            "DATABASE_OWNER_URL": self.url(OWNER_ROLE, dbname),
            "REDIS_URL": REDIS_URL,
            "OVERTURE_REDIS_NAMESPACE": f"{REDIS_NAMESPACE}-pg{self.port}",
            "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
            "OVERTURE_INSTANCE_PATH": os.path.join(self.folder, "instance"),
            "OVERTURE_API_RATE_LIMIT": "100000 per minute",
            "OVERTURE_LOGIN_RATE_LIMIT": "100000 per minute",
            "OVERTURE_LOG_LEVEL": "WARNING",
        }
        env.update(overrides)
        return load_settings(env)

    def destroy(self) -> None:
        if os.path.isdir(self.data):
            self._run("pg_ctl", "stop", "-D", self.data, "-m", "immediate", "-w", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> ThrowawayPostgres:
        try:
            return self.create()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc: object) -> None:
        self.destroy()


class AppProcess:
    """An `overture` command (`web`, `scheduler`, ...) as a process group of the test's
    own. OVERTURE_TEST_PROCESS_LOG=/some/file keeps its output, for debugging."""

    def __init__(self, settings: Settings, *args: str, **env: str) -> None:
        self.args, self.env = args, settings_env(settings, **env)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AppProcess:
        log_path = os.environ.get("OVERTURE_TEST_PROCESS_LOG")
        with open(log_path or os.devnull, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "overture.cli", *self.args],
                                         env=self.env, cwd=ROOT, start_new_session=True,
                                         stdout=log, stderr=subprocess.STDOUT)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)


class WebProcess(AppProcess):
    """`overture web`: gunicorn, as in production, on a free port."""

    def __init__(self, settings: Settings, workers: int = 1, **env: str) -> None:
        self.port = free_port()
        super().__init__(settings, "web", "--workers", str(workers), HOST="127.0.0.1",
                         PORT=str(self.port), **env)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> WebProcess:
        super().start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if not self.alive() or time.monotonic() > deadline:
                    raise RuntimeError("overture web did not start") from None
                time.sleep(0.1)


def scheduler_process(settings: Settings, interval: float = 1.0, **env: str) -> AppProcess:
    """`overture scheduler`: cron ticks and the sweeper, every `interval` seconds."""
    return AppProcess(settings, "scheduler", "--interval", str(interval), **env)


@dataclass
class FaultWorld:
    """A throwaway cluster, migrated, with the usual world in it (tests.support), and
    this process's own app on it (its own broker namespace)."""

    pg: ThrowawayPostgres
    settings: Settings
    app: Any
    world: World

    @contextmanager
    def scope(self, tenant: str = "a") -> Iterator[Any]:
        """This app's context, in a tenant's scope; the session is left clean."""
        with self.app.app_context(), scoped_to(self.world.tenants[tenant].id):
            try:
                yield self.world.tenants[tenant].id
            finally:
                db.session.rollback()


@pytest.fixture(scope="module")
def throwaway_postgres() -> Iterator[FaultWorld]:
    """A module's own PostgreSQL, to stop and restart (`.pg`), with the usual world."""
    import dramatiq

    from overture.platform.queue import make_broker
    from overture.web.app import create_app

    with ThrowawayPostgres() as pg:
        settings = pg.overture_database()
        previous = dramatiq.get_broker()
        broker = make_broker(settings.redis_url, settings.redis_namespace)
        dramatiq.set_broker(previous)  # make_broker made its broker the global one
        app = create_app(settings, broker=broker)
        with app.app_context():
            activate_scope(EMPTY_SCOPE)
            world = build_world()
            db.session.commit()
            activate_scope(EMPTY_SCOPE)
        try:
            yield FaultWorld(pg, settings, app, world)
        finally:
            with app.app_context():
                db.engine.dispose()
            app.extensions["overture.broker"].close()
