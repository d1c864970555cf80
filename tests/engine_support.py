"""Engine test helpers: real `overture worker` processes on Redis, and runs to wait on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

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
    })
    if settings.master_key:
        env["OVERTURE_MASTER_KEY"] = settings.master_key
    env.update(extra)
    return env


class WorkerProcess:
    """`overture worker` as a real process group, killable with SIGKILL."""

    def __init__(self, settings: Settings, processes: int = 2, threads: int = 4) -> None:
        self.settings, self.processes, self.threads = settings, processes, threads
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "overture.cli", "worker", "--processes", str(self.processes),
             "--threads", str(self.threads)], env=settings_env(self.settings), cwd=ROOT,
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


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


def wait_for(tenant_id: Any, run_id: Any, timeout: float = 30.0,
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
