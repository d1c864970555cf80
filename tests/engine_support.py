"""Engine test helpers: real `overture worker` processes on Redis, and runs to wait on."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dramatiq
import redis

from overture.orchestration import runs, workflows
from overture.orchestration.models import Run, StepRun
from overture.platform.config import Settings
from overture.platform.db import db, scoped_to
from tests.support import World

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "OVERTURE_ENV": "test", "DATABASE_URL": settings.database_url,
        "DATABASE_OWNER_URL": settings.database_owner_url, "REDIS_URL": settings.redis_url or "",
        "SECRET_KEY": settings.secret_key, "OVERTURE_INSTANCE_PATH": str(settings.instance_path),
        "OVERTURE_LOG_LEVEL": "WARNING", "OVERTURE_OUTBOUND_ALLOWLIST": "127.0.0.0/8",
        "OVERTURE_REDIS_NAMESPACE": settings.redis_namespace,
        # No metrics ports unless a test asks: test sessions run side by side.
        "OVERTURE_WORKER_METRICS_PORT": "0", "OVERTURE_SCHEDULER_METRICS_PORT": "0",
    })
    if settings.master_key:
        env["OVERTURE_MASTER_KEY"] = settings.master_key
    env.update(extra)
    return env


class WorkerProcess:
    """`overture worker` as a real process group, killable with SIGKILL."""

    def __init__(self, settings: Settings, processes: int = 2, threads: int = 4,
                 env: dict[str, str] | None = None, options: tuple[str, ...] = ()) -> None:
        self.settings, self.processes, self.threads = settings, processes, threads
        self.env = env or {}
        self.options = options
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        # OVERTURE_TEST_WORKER_LOG=/some/file keeps the workers' output, for debugging.
        log_path = os.environ.get("OVERTURE_TEST_WORKER_LOG")
        with open(log_path or os.devnull, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "overture.cli", "worker", "--processes",
                 str(self.processes), "--threads", str(self.threads), *self.options],
                env=settings_env(self.settings, **self.env), cwd=ROOT, start_new_session=True,
                stdout=log, stderr=subprocess.STDOUT)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM to Dramatiq's main process only, as an orchestrator stops a container:
        it passes the signal on to its worker processes, which stop cleanly. (A SIGTERM
        to the whole group reaches each worker twice, and Dramatiq kills a worker at
        once on the second.)"""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


def publish(tenant_id: Any, definition: dict[str, Any], name: str = "wf") -> Any:
    with scoped_to(tenant_id):
        workflow = workflows.create_workflow(name, draft=definition)
        workflows.publish(workflow, None)
        db.session.commit()
        return workflow.id


def start(tenant_id: Any, workflow_id: Any, input: Any = None, key: str | None = None) -> Any:
    with scoped_to(tenant_id):
        workflow = workflows.get_workflow(workflow_id)
        run, _ = runs.start_run(workflow, input if input is not None else {}, "api",
                                idempotency_key=key)
        db.session.commit()
        return run.id


def wait_for(tenant_id: Any, run_id: Any, timeout: float = 60.0,
             until: tuple[str, ...] = ("succeeded", "failed", "cancelled", "timed_out")) -> Run:
    deadline = time.monotonic() + timeout
    while True:
        with scoped_to(tenant_id):
            run = db.session.get(Run, run_id, populate_existing=True)
            status = run.status
            db.session.rollback()
        if status in until:
            return snapshot(tenant_id, run_id)
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {status} after {timeout}s: "
                                 f"{steps_of(tenant_id, run_id)}")
        time.sleep(0.05)


def snapshot(tenant_id: Any, run_id: Any) -> Any:
    """The run's columns as plain values, readable outside any scope or session."""
    with scoped_to(tenant_id):
        run = db.session.get(Run, run_id, populate_existing=True)
        values = {c.key: getattr(run, c.key) for c in Run.__table__.columns}
        db.session.rollback()
    return SimpleNamespace(**values)


def steps_of(tenant_id: Any, run_id: Any) -> list[tuple[str, str, str]]:
    with scoped_to(tenant_id):
        rows = runs.timeline(db.session.get(Run, run_id))
        out = [(r.step_id, r.path, r.status) for r in rows]
        db.session.rollback()
        return out


def step_outputs(tenant_id: Any, run_id: Any) -> dict[tuple[str, str], Any]:
    with scoped_to(tenant_id):
        rows = db.session.scalars(db.select(StepRun).where(StepRun.run_id == run_id)).all()
        out = {(r.step_id, r.path): r.output for r in rows}
        db.session.rollback()
        return out


@contextmanager
def running_workers(settings: Settings, **kwargs: Any):  # type: ignore[no-untyped-def]
    worker = WorkerProcess(settings, **kwargs).start()
    try:
        yield worker
    finally:
        worker.kill()


def one(world: World) -> Any:
    return world.tenants["a"].id


# --------------------------------------------------------------------------- resilience helpers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


DROP = -1  # answer nothing and close the connection


@dataclass
class Hit:
    path: str
    key: str | None
    at: float


class Receiver:
    """A local HTTP server standing in for a third-party API. It records every request
    and honours `Idempotency-Key` as a careful API does: a key's effect applies once, at
    receipt (so a client that dies mid-request still caused it), and a repeat waits for
    and gets the first answer. Query parameters shape answers: `delay` (seconds before
    answering), `fail` (the first N requests per key answer 503), `drop` (the first N
    per key get the connection closed, no answer), `status` (always this status).
    `down(path, status)` makes a path fail until `up(path)`. Failures have no effect."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.effects: list[tuple[str, str | None]] = []
        self._answers: dict[tuple[str, str | None], dict[str, Any]] = {}
        self._ready: dict[tuple[str, str | None], threading.Event] = {}
        self._down: dict[str, int] = {}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def down(self, path: str, status: int = 500) -> None:
        self._down[path] = status

    def up(self, path: str) -> None:
        self._down.pop(path, None)

    def hits_to(self, path: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path == path]

    def effects_on(self, path: str) -> list[str | None]:
        with self._lock:
            return [key for p, key in self.effects if p == path]

    def wait_for_hit(self, path: str, count: int = 1, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.hits_to(path)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} got {len(self.hits_to(path))} requests, "
                                     f"not {count}, in {timeout}s")
            time.sleep(0.02)

    def answer(self, path: str, query: dict[str, list[str]],
               key: str | None) -> tuple[int, dict[str, Any]]:
        """Status and body for one request (runs on the server's request thread)."""
        delay = float(query.get("delay", ["0"])[0])
        with self._lock:
            self.hits.append(Hit(path, key, time.monotonic()))
            seen = sum(1 for h in self.hits if (h.path, h.key) == (path, key))
            failing = self._down.get(path) or int(query.get("status", ["0"])[0])
            if not failing and seen <= int(query.get("fail", ["0"])[0]):
                failing = 503
            if not failing and seen <= int(query.get("drop", ["0"])[0]):
                failing = DROP
            first = not failing and (path, key) not in self._ready
            if first:
                self._ready[(path, key)] = threading.Event()
                self.effects.append((path, key))
            ready = self._ready.get((path, key))
        if failing or first:
            time.sleep(delay)
        if failing:
            return failing, {"error": "failing on purpose"}
        assert ready is not None
        if first:
            self._answers[(path, key)] = {"effect": len(self.effects_on(path)), "key": key}
            ready.set()
            return 200, self._answers[(path, key)]
        ready.wait(30)
        return 200, {**self._answers[(path, key)], "replayed": True}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = urlsplit(self.path)
                status, body = receiver.answer(parts.path, parse_qs(parts.query),
                                               self.headers.get("Idempotency-Key"))
                if status == DROP:
                    self.close_connection = True
                    return
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client died mid-request (a killed worker)
                    pass

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class PrivateRedis:
    """A `redis-server` of this test's own that keeps nothing: stopping it loses every
    queued message, as a crash of an unpersisted Redis does."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="ovt-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@contextmanager
def private_app(settings: Settings, broker_url: str | None = None):  # type: ignore[no-untyped-def]
    """An app context of its own broker (another namespace, or the Redis at
    `broker_url`), so that what this test sends, and the sweeper re-sends, reaches only
    the workers it started. `settings.redis_url` should stay the shared Redis: the rate
    limiter is one per process, and the last app created points it at its Redis."""
    from overture.platform.queue import make_broker
    from overture.web.app import create_app

    previous = dramatiq.get_broker()
    broker = make_broker(broker_url or settings.redis_url, settings.redis_namespace)
    dramatiq.set_broker(previous)  # make_broker made its broker the global one
    app = create_app(settings, broker=broker)
    try:
        with app.app_context():
            try:
                yield app
            finally:
                db.session.remove()
                db.engine.dispose()
    finally:
        app.extensions["overture.broker"].close()


def sweep_until(tenant_id: Any, run_id: Any, timeout: float = 30.0, every: float = 0.3) -> Run:
    """Run the sweeper, as `overture scheduler` does, until the run ends."""
    from overture.orchestration import worker

    deadline = time.monotonic() + timeout
    while True:
        worker.sweep_all()
        run = snapshot(tenant_id, run_id)
        if run.status not in ("running", "queued"):
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run.status} after {timeout}s: "
                                 f"{steps_of(tenant_id, run_id)}")
        time.sleep(every)


def rows_of(tenant_id: Any, run_id: Any) -> list[SimpleNamespace]:
    """Every step run of a run, as plain values."""
    with scoped_to(tenant_id):
        rows = db.session.scalars(db.select(StepRun).where(StepRun.run_id == run_id)
                                  .order_by(StepRun.id)).all()
        out = [SimpleNamespace(**{c.key: getattr(r, c.key) for c in StepRun.__table__.columns})
               for r in rows]
        db.session.rollback()
        return out


def start_unsent(tenant_id: Any, workflow_id: Any, input: Any = None) -> Any:
    """Start a run whose first message is lost: as if the process died between the
    commit and the send."""
    from overture.orchestration import dispatch

    with scoped_to(tenant_id):
        run, _ = runs.start_run(workflows.get_workflow(workflow_id),
                                input if input is not None else {}, "api")
        assert len(dispatch.pending(db.session())) == 1  # nothing leaves before the commit
        db.session.info.pop(dispatch.OUTBOX)
        db.session.commit()
        return run.id
