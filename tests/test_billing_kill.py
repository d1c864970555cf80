"""Meters against the work recorded when a worker dies mid-step (`-k billing`), on real
`overture worker` processes: runs whose steps call a slow app, an agent and quick
transforms; SIGKILL lands while calls are in flight; the sweeper hands the expired
leases to a new worker, which finishes every run. Then each meter must equal what the
database says was done: a run started per run, a step executed per finished step run
(exactly one event each), a connector call per `connector.action_called` audit event,
an agent call and its tokens per agent attempt that was recorded, and the roll-ups
equal to the raw events."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from overture.billing import meters as m
from overture.orchestration.models import StepRun
from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to
from tests.agent_fakes import answer, create_agent, scripted
from tests.billing_support import events_of, meters
from tests.conftest import REDIS_NAMESPACE, pg_settings
from tests.engine_support import (
    Receiver,
    WorkerProcess,
    private_app,
    publish,
    running_workers,
    start,
    sweep_until,
)

RUNS = 6
LEASE = {"OVERTURE_LEASE_GRACE_SECONDS": "1"}


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


def finished_steps(tenant_id: Any) -> list[Any]:
    with scoped_to(tenant_id):
        rows = db.session.execute(select(StepRun.id, StepRun.step_id, StepRun.status)).all()
        db.session.rollback()
    return [r for r in rows if r.status in ("succeeded", "failed")]


def audit_count(tenant_id: Any, action: str) -> int:
    with scoped_to(tenant_id):
        count = db.session.query(AuditEvent).filter(AuditEvent.action == action).count()
        db.session.rollback()
    return count


def test_billing_meters_equal_the_work_recorded_after_a_worker_is_killed_mid_step(
        app_ctx, world, database, receiver):
    a = world.tenants["a"].id
    own = pg_settings(database, OVERTURE_REDIS_NAMESPACE=f"{REDIS_NAMESPACE}-meterkill")
    create_agent(world, scripted("counter", {"when": "count", "answer": answer("ok"),
                                             "input_tokens": 10, "output_tokens": 2}))
    with private_app(own):
        wf = publish(a, {"steps": [
            {"id": "prepare", "type": "transform", "output": 1, "next": "think"},
            {"id": "think", "type": "agent", "agent": "counter", "task": "Count this",
             "next": "charge"},
            {"id": "charge", "type": "action", "action": "http.request", "timeout_seconds": 3,
             "input": {"method": "POST", "url": receiver.url("/charge?delay=1.5"),
                       "json": {}}, "next": "done"},
            {"id": "done", "type": "transform", "output": "{{ steps.charge.body.effect }}"}]})
        first = WorkerProcess(own, processes=1, threads=4, env=LEASE).start()
        try:
            run_ids = [start(a, wf) for _ in range(RUNS)]
            receiver.wait_for_hit("/charge", count=2, timeout=60)  # the worker boots first
            time.sleep(0.3)
        finally:
            first.kill()  # SIGKILL to the whole process group, calls in flight
        in_flight = len(receiver.hits_to("/charge"))
        with running_workers(own, processes=1, threads=4, env=LEASE):
            runs = [sweep_until(a, run_id, timeout=60) for run_id in run_ids]
    assert [r.status for r in runs] == ["succeeded"] * RUNS, [r.error for r in runs]
    calls = receiver.hits_to("/charge")
    assert len(calls) > RUNS and in_flight >= 2, "some calls were cut off by the kill"

    done = finished_steps(a)
    assert len(done) == 4 * RUNS
    totals = meters(a)  # and the hourly and daily roll-ups equal the raw events
    assert totals[m.RUNS_STARTED] == RUNS
    assert totals[m.STEPS] == len(done)
    per_step_run = Counter(e.step_run_id for e in events_of(a, metric=m.STEPS))
    assert per_step_run == Counter({row.id: 1 for row in done})
    # A call cut off by the kill was never recorded (no outcome, no audit event): the
    # meter counts the calls the platform recorded, each once, with its step.
    assert totals[m.ACTION_CALLS] == audit_count(a, "connector.action_called") >= RUNS
    assert {e.step_id for e in events_of(a, metric=m.ACTION_CALLS)} == {"charge"}
    # Agent calls are written with their step's record: one per recorded attempt.
    think = [row for row in done if row.step_id == "think"]
    assert totals[m.AGENT_CALLS] == len(think) == RUNS
    assert (totals[m.INPUT_TOKENS], totals[m.OUTPUT_TOKENS]) == (10 * RUNS, 2 * RUNS)
