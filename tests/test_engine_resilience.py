"""The engine under failure, on real worker processes (`-k engine`): workers killed
mid-step, Redis restarted mid-run, duplicate and lost messages, runs past their
limits, retries and timeouts, cancel and replay.

A local receiving server stands in for a third-party API and honours
`Idempotency-Key`, so "exactly once in effect" is what it saw, not what we hoped."""

from __future__ import annotations

import itertools
import os
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text as sa_text

from overture.orchestration import actions, dispatch, engine, flow, recording, runs, worker
from overture.orchestration.models import Approval, Run
from overture.orchestration.outcomes import StepFailed
from overture.orchestration.watchdog import StepTimeout
from overture.platform import audit, metrics
from overture.platform.db import db, scoped_to, utcnow
from tests.conftest import REDIS_NAMESPACE, pg_settings
from tests.engine_support import (
    PrivateRedis,
    Receiver,
    WorkerProcess,
    private_app,
    publish,
    rows_of,
    running_workers,
    snapshot,
    start,
    start_unsent,
    step_outputs,
    sweep_until,
    wait_for,
)

UNFINISHED = {"queued", "running", "waiting"}


@pytest.fixture(scope="module", autouse=True)
def _outbound_to_localhost():
    # The receiver listens on 127.0.0.1. Workers get this from settings_env; steps run
    # in this process too (engine.process, in one test).
    saved = os.environ.get("OVERTURE_OUTBOUND_ALLOWLIST")
    os.environ["OVERTURE_OUTBOUND_ALLOWLIST"] = "127.0.0.0/8"
    yield
    if saved is None:
        os.environ.pop("OVERTURE_OUTBOUND_ALLOWLIST", None)
    else:
        os.environ["OVERTURE_OUTBOUND_ALLOWLIST"] = saved


@pytest.fixture(scope="module", autouse=True)
def workers(settings):
    # Started with the module, so they boot while the first tests run their own.
    with running_workers(settings) as worker_process:
        yield worker_process


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


def post(receiver: Receiver, path: str, **extra: Any) -> dict[str, Any]:
    """An `http.request` action step posting to the receiver."""
    return {"type": "action", "action": "http.request",
            "input": {"method": "POST", "url": receiver.url(path), "json": {"at": path}},
            **extra}


def statuses(tenant_id: Any, run_id: Any) -> dict[str, str]:
    return {f"{r.path}{r.step_id}": r.status for r in rows_of(tenant_id, run_id)}


def workers_answer(tenant_id: Any) -> None:
    """Wait until the workers have booted and run something."""
    ping = publish(tenant_id, {"steps": [{"id": "ping", "type": "transform", "output": 1}]},
                   name="ping")
    assert wait_for(tenant_id, start(tenant_id, ping), timeout=60).status == "succeeded"


def wait_for_steps(tenant_id: Any, run_id: Any, expected: dict[str, str],
                   timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (found := statuses(tenant_id, run_id)) != expected:
        assert time.monotonic() < deadline, found
        time.sleep(0.05)


def unfinished(tenant_id: Any, run_id: Any) -> list[str]:
    return [k for k, v in statuses(tenant_id, run_id).items() if v in UNFINISHED]


# --------------------------------------------------------------------------- crashes


def test_engine_worker_killed_mid_step_run_completes_effect_once(app_ctx, world, database,
                                                                  receiver):
    """SIGKILL lands while the charge is in flight; the sweeper takes the expired lease
    back, a new worker re-runs the step with the same idempotency key, and the server
    applies the charge once."""
    a = world.tenants["a"].id
    own = pg_settings(database, OVERTURE_REDIS_NAMESPACE=f"{REDIS_NAMESPACE}-kill")
    lease = {"OVERTURE_LEASE_GRACE_SECONDS": "1"}
    with private_app(own):
        wf = publish(a, {"steps": [
            {"id": "charge", **post(receiver, "/charge?delay=2"), "timeout_seconds": 3,
             "next": "notify"},
            {"id": "notify", **post(receiver, "/notify"), "next": "done"},
            {"id": "done", "type": "transform", "output": "{{ steps.charge.body.effect }}"},
        ]})
        first = WorkerProcess(own, processes=1, env=lease).start()
        try:
            run_id = start(a, wf)
            receiver.wait_for_hit("/charge", timeout=60)  # the worker boots first
            time.sleep(0.3)
        finally:
            first.kill()  # SIGKILL to the whole process group, mid-request
        assert statuses(a, run_id)["charge"] == "running"  # nobody is left to finish it
        with running_workers(own, processes=1, env=lease):
            run = sweep_until(a, run_id, timeout=30)
    assert run.status == "succeeded", run.error
    assert run.output == 1
    charges = receiver.hits_to("/charge")
    assert len(charges) == 2, "the kill landed mid-step, so the step ran twice"
    assert len({h.key for h in charges}) == 1 and charges[0].key
    assert receiver.effects_on("/charge") == [charges[0].key]  # charged once
    assert len(receiver.effects_on("/notify")) == 1
    rows = {r.step_id: r for r in rows_of(a, run_id)}
    assert sorted(rows) == ["charge", "done", "notify"]
    # the attempt lost with the worker is an interruption, not one of the retry policy's
    assert (rows["charge"].attempt, rows["charge"].interruptions) == (1, 1)
    assert (rows["notify"].attempt, rows["notify"].interruptions) == (1, 0)


def test_engine_redis_restarted_mid_run_completes(app_ctx, world, database, receiver,
                                                  monkeypatch):
    """Redis (keeping nothing) goes down while a step runs: messages cannot be sent and
    the queue is lost. The worker carries the run on by itself (the next step inline,
    the fan-out's queued branches taken on as each one ends); a run started during the
    outage, whose message was lost, waits for the sweeper once Redis is back."""
    monkeypatch.setattr(worker, "RESEND_AFTER", timedelta(0))
    a = world.tenants["a"].id
    broker = PrivateRedis().start()
    own = pg_settings(database, REDIS_URL=broker.url)
    try:
        with private_app(pg_settings(database), broker.url), running_workers(own, processes=1):
            wf = publish(a, {"steps": [
                {"id": "slow", **post(receiver, "/slow?delay=1.5"), "next": "fan"},
                {"id": "fan", "type": "parallel", "next": "done", "branches": [
                    {"steps": [{"id": f"b{i}", "type": "transform", "output": i}]}
                    for i in range(3)]},
                {"id": "done", "type": "transform", "output": "{{ steps.fan }}"},
            ]})
            quick = publish(a, {"steps": [{"id": "only", "type": "transform", "output": 1}]},
                            name="quick")
            run_id = start(a, wf)
            receiver.wait_for_hit("/slow", timeout=60)
            broker.stop()
            during = start(a, quick)  # starting a run while Redis is down still works
            run = wait_for(a, run_id, timeout=20)  # finished while Redis was down
            broker.start()
            time.sleep(1.0)
            assert statuses(a, during) == {"only": "queued"}  # its message was lost
            later = sweep_until(a, during, timeout=30)
    finally:
        broker.stop()
    assert run.status == "succeeded", run.error
    assert run.output == [0, 1, 2]
    assert (later.status, later.output) == ("succeeded", 1)
    assert len(receiver.effects_on("/slow")) == 1 and len(receiver.hits_to("/slow")) == 1


def test_engine_duplicate_messages_run_a_step_once(app_ctx, world, workers, receiver):
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [
        {"id": "charge", **post(receiver, "/charge?delay=0.5"), "next": "after"},
        {"id": "after", "type": "transform", "output": "{{ steps.charge.body.effect }}"},
    ]})
    run_id = start(a, wf)
    first = rows_of(a, run_id)[0]
    for _ in range(2):  # the same message twice more, racing the original
        dispatch.send_now(first.id, a)
    run = wait_for(a, run_id)
    assert (run.status, run.output) == ("succeeded", 1)
    rows = rows_of(a, run_id)
    assert sorted(r.step_id for r in rows) == ["after", "charge"]
    assert all(r.attempt == 1 for r in rows)
    assert len(receiver.hits_to("/charge")) == 1  # not even a repeat request
    for row in rows:  # late duplicates of finished steps change nothing
        dispatch.send_now(row.id, a)
        dispatch.send_now(row.id, a)
    time.sleep(1.0)
    assert [(r.step_id, r.status, r.attempt) for r in rows_of(a, run_id)] == [
        (r.step_id, r.status, r.attempt) for r in rows]
    assert len(receiver.hits_to("/charge")) == 1
    assert wait_for(a, run_id).steps_executed == run.steps_executed == 2


def test_engine_lost_message_is_resent_by_the_sweeper(app_ctx, world, workers, monkeypatch):
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [
        {"id": "one", "type": "transform", "output": "{{ input.n + 1 }}", "next": "two"},
        {"id": "two", "type": "transform", "output": "{{ steps.one * 10 }}"}]})
    run_id = start_unsent(a, wf, {"n": 1})
    time.sleep(1.0)
    assert statuses(a, run_id) == {"one": "queued"}  # no message: nothing happens
    assert worker.sweep_all()["resent"] == 0  # a fresh row is given time to be picked up
    monkeypatch.setattr(worker, "RESEND_AFTER", timedelta(0))
    counted = metrics.REGISTRY.get_sample_value("overture_sweeper_redispatches_total")
    assert worker.sweep_all()["resent"] == 1
    assert metrics.REGISTRY.get_sample_value("overture_sweeper_redispatches_total") \
        == counted + 1  # what `overture_sweeper_redispatches_total` shows
    run = wait_for(a, run_id, timeout=10)
    assert (run.status, run.output) == ("succeeded", 20)


def test_engine_join_missed_by_a_dead_worker_is_completed_by_the_sweeper(
        app_ctx, world, workers, monkeypatch):
    """Branches end without waiting for each other: each checks the join after its own
    commit. A worker that dies right after that commit never checks; the sweeper finds
    the parallel step still waiting with all its branches ended, and the run goes on."""
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [
        {"id": "fan", "type": "parallel", "next": "after", "branches": [
            {"steps": [{"id": f"b{i}", "type": "transform", "output": i}]} for i in range(3)]},
        {"id": "after", "type": "transform", "output": "{{ steps.fan }}"}]})
    run_id = start_unsent(a, wf)
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setitem(app_ctx.extensions, dispatch.SENDER, lambda *args: sent.append(args))
    for join in ("_join_direct", "_join_once"):  # the worker dies where it would join
        monkeypatch.setattr(recording, join, lambda *args: None)
    engine.process(rows_of(a, run_id)[0].id, a)  # the fan-out and one branch, inline
    while sent:
        step_run_id, tenant_id, _ = sent.pop()
        engine.process(step_run_id, tenant_id)
    assert statuses(a, run_id) == {"fan": "waiting", "fan#0/b0": "succeeded",
                                   "fan#1/b1": "succeeded", "fan#2/b2": "succeeded"}
    monkeypatch.undo()
    monkeypatch.setattr(worker, "RESEND_AFTER", timedelta(0))
    run = sweep_until(a, run_id)
    assert (run.status, run.output) == ("succeeded", [0, 1, 2])
    assert run.steps_executed == 5  # fan, three branch steps, after


def test_engine_join_of_ended_branches_takes_no_orm_transaction(app_ctx, world, monkeypatch):
    """A fan-out starts its branches in one round trip (hotpath.branches.fan_out), and the last
    branch to end completes a join that waits for all in one more (hotpath.branches.join_all):
    the step after it sees the branch outputs in branch order, and the branch steps
    are counted on the run."""
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [
        {"id": "seed", "type": "transform", "output": 10, "next": "fan"},
        {"id": "fan", "type": "parallel", "next": "after", "branches": [
            {"steps": [{"id": f"b{i}", "type": "transform",
                        "output": f"{{{{ steps.seed + {i} }}}}"}]} for i in range(3)]},
        {"id": "after", "type": "transform", "output": "{{ [steps.seed, steps.fan] }}"}]})
    run_id = start_unsent(a, wf)
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setitem(app_ctx.extensions, dispatch.SENDER, lambda *args: sent.append(args))

    def no_orm_join(*args: Any) -> None:
        raise AssertionError("a step was recorded on the ORM path")

    monkeypatch.setattr(recording, "_join_once", no_orm_join)
    monkeypatch.setattr(recording, "_record_once", no_orm_join)
    engine.process(rows_of(a, run_id)[0].id, a)  # seed, the fan-out, its branches, after
    run = wait_for(a, run_id, timeout=5)
    assert (run.status, run.output) == ("succeeded", [10, [10, 11, 12]])
    assert run.steps_executed == 6  # seed, fan, three branch steps, after
    fan = next(r for r in rows_of(a, run_id) if r.step_id == "fan")
    assert fan.state["done"] == {"0": True, "1": True, "2": True}


def test_engine_run_end_events_written_in_sql_keep_the_chain(app_ctx, world, monkeypatch):
    """A run that ends on the hot path appends its audit event in SQL, hashed there: the
    chain still verifies, with the events of ordinary writers in between."""
    a = world.tenants["a"].id

    def no_orm_run_end(*args: Any, **kw: Any) -> None:
        raise AssertionError("the run ended on the ORM path")

    monkeypatch.setattr(flow, "finish_run", no_orm_run_end)
    wf = publish(a, {"steps": [{"id": "one", "type": "transform", "output": "x",
                                "next": "two"},
                               {"id": "two", "type": "transform", "output": "y"}]})
    for _ in range(3):
        run_id = start_unsent(a, wf)
        engine.process(rows_of(a, run_id)[0].id, a)
        assert wait_for(a, run_id, timeout=5).status == "succeeded"
        with scoped_to(a):
            audit.record("test.between", details={"seq": -1, "nested": {"seq": 7}})
            db.session.commit()
    with scoped_to(a):
        report = audit.verify_chain()
        ends = audit.list_events(audit.EventFilter(action_prefix="run.succeeded"), None, 50)[0]
    assert report.ok, report
    assert len(ends) == 3


def test_engine_queued_branches_are_spread_over_more_workers(app_ctx, world, monkeypatch):
    """A fan-out sends a few messages and lets workers take queued branches on as they
    end theirs. So that slow branches do not wait for that, it also asks, a moment
    later, for the parallel step to be looked at: a worker then takes one queued branch
    and, while others remain queued, asks for one more worker."""
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [{"id": "fan", "type": "parallel", "branches": [
        {"steps": [{"id": f"b{i}", "type": "transform", "output": i}]} for i in range(8)]}]})
    run_id = start_unsent(a, wf)
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setitem(app_ctx.extensions, dispatch.SENDER, lambda *args: sent.append(args))
    monkeypatch.setattr(engine, "MAX_INLINE_STEPS", 1)  # one step per message: no chains
    fan = rows_of(a, run_id)[0].id
    engine.process(fan, a)
    assert (fan, a, 1000) in sent  # the look a moment later
    assert len([m for m in sent if m[2] is None]) == 4  # branches 1-3, and branch 0's own
    sent.clear()
    engine.process(fan, a)  # the delayed look: takes a queued branch, asks for more
    assert sent == [(fan, a, None), (fan, a, None)]  # more queued; out of inline budget
    assert sum(s == "succeeded" for s in statuses(a, run_id).values()) == 1
    monkeypatch.setattr(engine, "MAX_INLINE_STEPS", 50)
    while sent:
        engine.process(*sent.pop()[:2])
    run = snapshot(a, run_id)
    assert (run.status, run.output) == ("succeeded", list(range(8)))


def test_engine_run_past_max_duration_is_timed_out_and_nothing_left_running(
        app_ctx, world, workers, receiver):
    a = world.tenants["a"].id
    wf = publish(a, {"policy": {"max_duration_seconds": 2}, "steps": [
        {"id": "all", "type": "parallel", "next": "after", "branches": [
            {"steps": [{"id": "ask", "type": "approval", "prompt": "ok?"}]},
            {"steps": [{"id": "later", "type": "delay", "seconds": 60}]},
            {"steps": [{"id": "slow", **post(receiver, "/slow?delay=3.5"), "next": "tail"},
                       {"id": "tail", "type": "transform", "output": "late"}]}]},
        {"id": "after", "type": "transform", "output": "never"},
    ]})
    workers_answer(a)  # the two seconds must not go on the workers' boot
    run_id = start(a, wf)
    wait_for_steps(a, run_id, {"all": "waiting", "all#0/ask": "waiting",
                               "all#1/later": "queued", "all#2/slow": "running"})
    deadline = wait_for(a, run_id, until=("running",)).deadline_at
    while utcnow() <= deadline:
        time.sleep(0.05)
    assert worker.sweep_all()["timed_out"] == 1
    run = wait_for(a, run_id, timeout=1)
    assert run.status == "timed_out" and run.error["code"] == "run_timeout"
    assert unfinished(a, run_id) == []
    assert set(statuses(a, run_id).values()) == {"cancelled"}
    with scoped_to(a):
        assert [x.status for x in db.session.scalars(db.select(Approval))] == ["cancelled"]
        db.session.rollback()
    # the slow step comes back after its run ended: it changes nothing
    time.sleep(max(0.0, receiver.hits_to("/slow")[0].at + 4.0 - time.monotonic()))
    assert len(receiver.hits_to("/slow")) == 1
    assert wait_for(a, run_id).status == "timed_out"
    assert unfinished(a, run_id) == [] and "all#2/tail" not in statuses(a, run_id)


# --------------------------------------------------------------------------- step policies


def test_engine_retry_transient_errors_with_backoff_not_4xx(app_ctx, world, workers, receiver):
    """The step's retry policy: transient failures (here the connection drops, which the
    HTTP client itself never retries) are retried with backoff under the same
    idempotency key; a 4xx is not; the last error is recorded on the run."""
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [
        {"id": "call", "type": "action", "action": "http.request",
         "input": {"method": "POST", "url": "{{ input.url }}"},
         "retry": {"max_attempts": 3, "backoff_seconds": 0.1}}]})
    flaky = start(a, wf, {"url": receiver.url("/flaky?drop=2")})
    run = wait_for(a, flaky)
    assert run.status == "succeeded", run.error
    assert run.output["status"] == 200 and run.output["body"]["effect"] == 1
    row = rows_of(a, flaky)[0]
    assert (row.attempt, row.status) == (3, "succeeded")
    hits = receiver.hits_to("/flaky")
    assert len(hits) == 3 and len({h.key for h in hits}) == 1  # one key on every attempt
    assert all(later.at - earlier.at >= 0.05 for earlier, later in itertools.pairwise(hits))

    unavailable = start(a, wf, {"url": receiver.url("/unavailable?fail=2")})
    run = wait_for(a, unavailable)  # 503 twice, then 200: whichever layer retries, once
    assert run.status == "succeeded", run.error
    hits = receiver.hits_to("/unavailable")
    assert len(hits) == 3 and len({h.key for h in hits}) == 1
    assert len(receiver.effects_on("/unavailable")) == 1

    bad = start(a, wf, {"url": receiver.url("/bad?status=400")})
    run = wait_for(a, bad)
    assert run.status == "failed"
    assert (run.error["code"], run.error["step"], run.error["attempt"]) == ("http_4xx", "call",
                                                                            1)
    assert len(receiver.hits_to("/bad")) == 1  # a 4xx is not retried

    gone = start(a, wf, {"url": receiver.url("/gone?drop=99")})
    run = wait_for(a, gone)
    assert run.status == "failed"
    assert (run.error["code"], run.error["step"], run.error["attempt"]) == ("connection",
                                                                            "call", 3)
    assert rows_of(a, gone)[0].status == "failed"
    assert len(receiver.hits_to("/gone")) == 3
    assert receiver.effects_on("/bad") == receiver.effects_on("/gone") == []


def test_engine_step_timeout_fails_with_timeout(app_ctx, world, workers, receiver):
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [
        {"id": "slow", **post(receiver, "/slow?delay=3"), "timeout_seconds": 0.5,
         "next": "after"},
        {"id": "after", "type": "transform", "output": "never"}]})
    ready = publish(a, {"steps": [{"id": "t", "type": "transform", "output": 1}]}, "ready")
    wait_for(a, start(a, ready), timeout=60)  # the module's workers have booted
    began = time.monotonic()
    run = wait_for(a, start(a, wf))
    assert time.monotonic() - began < 2.5
    assert run.status == "failed"
    assert (run.error["code"], run.error["step"]) == ("timeout", "slow")
    assert statuses(a, run.id) == {"slow": "failed"}


def test_engine_max_steps_stops_a_runaway_loop(app_ctx, world, workers):
    a = world.tenants["a"].id
    wf = publish(a, {"policy": {"max_steps": 5}, "steps": [
        {"id": "forever", "type": "loop", "until": "false", "max_iterations": 1000,
         "body": {"steps": [{"id": "tick", "type": "transform", "output": "{{ index }}"}]}}]})
    run = wait_for(a, start(a, wf))
    assert run.status == "failed" and run.error["code"] == "max_steps"
    assert run.steps_executed == 5
    ticks = [r for r in rows_of(a, run.id) if r.step_id == "tick"]
    assert [r.status for r in ticks] == ["succeeded"] * 4 + ["cancelled"]
    assert unfinished(a, run.id) == []


def test_engine_step_timeout_never_escapes_as_a_crash():
    """However a step's end and its timeout interleave, the step either returns or fails
    with "timeout": the interruption never escapes (a crashed message leaves the step
    running until its lease runs out) nor lands later, in the code that records it."""
    def spin(seconds: float) -> str:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass
        return "done"

    escaped = 0
    for i in range(600):
        try:
            try:
                engine.with_time_limit(lambda i=i: spin(0.0005 + (i % 7) * 0.0003), 0.0015)
            except StepFailed as failure:
                assert failure.code == "timeout"
            sum(range(200))  # where a late interruption would land
        except StepTimeout:
            escaped += 1
    assert escaped == 0


def test_engine_executor_breaking_the_session_still_records_the_failure(app_ctx, world,
                                                                         monkeypatch):
    """An executor whose own database work fails (a connector recording its call) leaves
    the session's transaction aborted: the step still fails cleanly, with the error on
    the run, instead of crashing the message and staying "running"."""
    def breaks_the_session(call: actions.ActionCall) -> None:
        db.session.execute(sa_text("SELECT 1/0"))

    monkeypatch.setitem(actions._ACTIONS, "test.breaks_session", breaks_the_session)
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [{"id": "boom", "type": "action",
                                "action": "test.breaks_session"}]})
    run_id = start_unsent(a, wf)  # run here, in this process, where the action exists
    engine.process(rows_of(a, run_id)[0].id, a)
    run = wait_for(a, run_id, timeout=1)
    assert run.status == "failed"
    assert (run.error["code"], run.error["step"]) == ("error", "boom")
    assert "division by zero" in run.error["message"]
    assert statuses(a, run_id) == {"boom": "failed"}


# --------------------------------------------------------------------------- cancel and replay


def test_engine_cancel_stops_queued_steps_approvals_and_child_runs(app_ctx, world, workers):
    a = world.tenants["a"].id
    child = publish(a, {"steps": [
        {"id": "ask", "type": "approval", "prompt": "child?", "next": "after"},
        {"id": "after", "type": "transform", "output": "never"}]}, name="child")
    wf = publish(a, {"steps": [
        {"id": "all", "type": "parallel", "next": "after", "branches": [
            {"steps": [{"id": "sign", "type": "approval", "prompt": "sign?"}]},
            {"steps": [{"id": "sub", "type": "subworkflow", "workflow_id": str(child)}]},
            {"steps": [{"id": "later", "type": "delay", "seconds": 60}]}]},
        {"id": "after", "type": "transform", "output": "never"}]}, name="parent")
    run_id = start(a, wf)
    deadline = time.monotonic() + 15
    while True:
        with scoped_to(a):
            pending = db.session.scalars(db.select(Approval).where(
                Approval.status == "pending")).all()
            kids = db.session.scalars(db.select(Run).where(Run.parent_run_id == run_id)).all()
            kid_ids = [k.id for k in kids]
            db.session.rollback()
        if len(pending) == 2:
            break
        assert time.monotonic() < deadline, statuses(a, run_id)
        time.sleep(0.05)
    wait_for_steps(a, run_id, {"all": "waiting", "all#0/sign": "waiting",
                               "all#1/sub": "waiting", "all#2/later": "queued"})
    assert len(kid_ids) == 1 and statuses(a, kid_ids[0]) == {"ask": "waiting"}

    with scoped_to(a):
        runs.cancel_run(db.session.get(Run, run_id))
        db.session.commit()

    run, kid = wait_for(a, run_id, timeout=1), wait_for(a, kid_ids[0], timeout=1)
    assert run.status == "cancelled" and run.error["code"] == "cancelled"
    assert kid.status == "cancelled"
    assert set(statuses(a, run_id).values()) == {"cancelled"}
    assert set(statuses(a, kid_ids[0]).values()) == {"cancelled"}
    with scoped_to(a):
        assert sorted(x.status for x in db.session.scalars(db.select(Approval))) == [
            "cancelled", "cancelled"]
        db.session.rollback()
    later = next(r for r in rows_of(a, run_id) if r.step_id == "later")
    with scoped_to(a):
        dispatch.send_now(later.id, a)  # a stray message for a cancelled step
    time.sleep(0.5)
    assert wait_for(a, run_id).status == "cancelled" and "after" not in statuses(a, run_id)


def test_engine_replay_from_a_step_reuses_earlier_outputs(app_ctx, world, workers, receiver):
    """The downstream API refused the call; once it is fixed, replaying from the failed
    step does not repeat the order placed before it."""
    a = world.tenants["a"].id
    wf = publish(a, {"steps": [
        {"id": "order", **post(receiver, "/order"), "next": "notify"},
        {"id": "notify", **post(receiver, "/notify"), "next": "summary"},
        {"id": "summary", "type": "transform",
         "output": "order {{ steps.order.body.key }} notified in {{ run.id }}"}]})
    receiver.down("/notify", 422)
    failed = wait_for(a, start(a, wf))
    assert failed.status == "failed" and failed.error["step"] == "notify"
    receiver.up("/notify")
    order_key = receiver.effects_on("/order")[0]

    with scoped_to(a):
        replay = runs.replay_run(db.session.get(Run, failed.id), "notify", None)
        replay_id = replay.id
        db.session.commit()
    run = wait_for(a, replay_id)
    assert run.status == "succeeded", run.error
    assert run.replay_of_id == failed.id
    assert run.output == f"order {order_key} notified in {replay_id}"
    rows = {r.step_id: r for r in rows_of(a, replay_id)}
    assert rows["order"].status == "skipped" and rows["order"].attempt == 0
    assert rows["order"].output == step_outputs(a, failed.id)[("order", "")]
    assert rows["notify"].status == "succeeded" and rows["summary"].status == "succeeded"
    assert len(receiver.hits_to("/order")) == 1  # not placed again
    assert len(receiver.hits_to("/notify")) == 2 and len(receiver.effects_on("/notify")) == 1
