"""`overture worker`: the process a deployment runs, and what its options change."""

from __future__ import annotations

import os
import time

from click.testing import CliRunner

from overture.cli import main
from overture.orchestration.models import Run, StepRun
from overture.platform.db import db, scoped_to
from tests.conftest import REDIS_NAMESPACE, pg_settings
from tests.engine_support import private_app, publish, running_workers, start, wait_for


def _dramatiq_processes(group_leader: int) -> list[int]:
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            if os.getpgid(int(pid)) == group_leader and b"overture.worker_main" in cmdline:
                pids.append(int(pid))
        except (OSError, ProcessLookupError):
            continue
    return pids


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        pairs = [item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item]
    return {k.decode(): v.decode() for k, v in pairs}


def _pickup_seconds(tenant_id, run_id) -> float:  # type: ignore[no-untyped-def]
    with scoped_to(tenant_id):
        run = db.session.get(Run, run_id)
        first = db.session.scalars(db.select(StepRun).where(StepRun.run_id == run_id)
                                   .order_by(StepRun.started_at)).first()
        seconds = (first.started_at - run.created_at).total_seconds()
        db.session.rollback()
        return seconds


def test_engine_worker_idle_poll_reaches_dramatiq_and_an_idle_worker_picks_up_fast(
        app_ctx, world, database):
    """Dramatiq's Redis consumer backs off while its queue is empty, by default up to a
    second: a run sent to an idle worker waited that long before its first step.
    `--idle-poll-ms` bounds the wait; every worker process gets it."""
    a = world.tenants["a"].id
    own = pg_settings(database, OVERTURE_REDIS_NAMESPACE=f"{REDIS_NAMESPACE}-idle")
    with private_app(own):
        wf = publish(a, {"steps": [{"id": "only", "type": "transform", "output": "{{ 1 }}"}]})
        with running_workers(own, processes=1, threads=2,
                             options=("--idle-poll-ms", "50")) as workers:
            assert wait_for(a, start(a, wf), timeout=60).status == "succeeded"  # booted
            leader = workers.proc.pid
            processes = _dramatiq_processes(leader)
            assert len(processes) == 2  # dramatiq's parent and its worker process
            assert {_environ(pid).get("dramatiq_worker_timeout") for pid in processes} == {"50"}
            pickups = []
            for _ in range(3):
                time.sleep(2.0)  # idle long enough for the default backoff to reach 0.5-1 s
                run_id = start(a, wf)
                assert wait_for(a, run_id).status == "succeeded"
                pickups.append(_pickup_seconds(a, run_id))
    assert sorted(pickups)[1] < 0.3, pickups


def test_engine_worker_refuses_an_idle_poll_out_of_range():
    result = CliRunner().invoke(main, ["worker", "--idle-poll-ms", "5"])
    assert result.exit_code == 2
    assert "--idle-poll-ms" in result.output and "10<=x<=10000" in result.output
