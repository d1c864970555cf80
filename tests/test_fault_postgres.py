"""The PostgreSQL half of the fault suite, on real processes: `overture web` (gunicorn),
`overture worker` and `overture scheduler` run against a PostgreSQL cluster of the test's
own (tests/fault_support.py), which is restarted while runs are in flight and a client
keeps calling the API. A local server stands in for the third-party API the steps call
and honours `Idempotency-Key`, so "delivered" is what it saw."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx2 as httpx  # the HTTP client the package installs (httpx 0.x is not a dependency)
import pytest
from sqlalchemy import func, select

from overture.billing.usage import UsageEvent
from overture.orchestration import worker
from overture.orchestration.models import Run, StepRun
from overture.platform.db import db
from tests.conftest import REDIS_NAMESPACE, pg_settings
from tests.engine_support import (
    Receiver,
    WorkerProcess,
    private_app,
    publish,
    rows_of,
    start,
    sweep_until,
)
from tests.fault_support import (
    FaultWorld,
    WebProcess,
    scheduler_process,
    throwaway_postgres,  # noqa: F401  (the module's own cluster)
)
from tests.support import CSRF_RE, PASSWORD

PROBLEM = "application/problem+json"
RUNS_BEFORE = 30
# Steps keep the default timeout and lease grace, as in production: a step whose outcome
# was lost to the restart would only be taken back when its lease ran out (330 s), long
# after every run here must have ended (a step is 0.5 s of waiting on the receiver).
SETTLED_WITHIN = 60.0


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


def call_step(receiver: Receiver, step_id: str, path: str, next_id: str) -> dict[str, Any]:
    """An `http.request` step posting to the receiver, without `retry`."""
    return {"id": step_id, "type": "action", "action": "http.request", "next": next_id,
            "input": {"method": "POST", "url": receiver.url(path), "json": {"n": "{{ input.n }}"}}}


@dataclass
class Answer:
    method: str
    path: str
    status: int  # 0: no answer at all (the connection failed)
    content_type: str
    retry_after: str | None
    body: bytes


class ApiCaller(threading.Thread):
    """Calls the API until stopped, as a client would: reads, run starts, and a signed-in
    console page; keeps every answer."""

    def __init__(self, base: str, token: str, workflow_id: Any) -> None:
        super().__init__(daemon=True)
        self.api = httpx.Client(base_url=base, timeout=30,
                                headers={"Authorization": f"Bearer {token}"})
        self.console = httpx.Client(base_url=base, timeout=30, headers={"Accept": "text/html"})
        self.workflow_id = workflow_id
        self.answers: list[Answer] = []
        self.started: list[str] = []  # ids of the runs it started
        self.stopping = threading.Event()

    def sign_in(self, email: str) -> None:
        page = self.console.get("/login").text
        token = CSRF_RE.search(page).group(1)  # type: ignore[union-attr]
        signed = self.console.post("/login", data={"email": email, "password": PASSWORD,
                                                   "csrf_token": token})
        assert signed.status_code == 302, signed.text

    def call(self, client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
        try:
            r = client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self.answers.append(Answer(method, path, 0, type(exc).__name__, None, b""))
            return None
        self.answers.append(Answer(method, path, r.status_code,
                                   r.headers.get("content-type", ""),
                                   r.headers.get("retry-after"), r.content))
        return r

    def round(self, n: int) -> None:
        self.call(self.api, "GET", "/api/v1/me")
        self.call(self.api, "GET", f"/api/v1/runs?workflow_id={self.workflow_id}&limit=5")
        started = self.call(self.api, "POST", f"/api/v1/workflows/{self.workflow_id}/runs",
                            json={"input": {"n": n}})
        if started is not None and started.status_code == 202:
            self.started.append(started.json()["id"])
        self.call(self.console, "GET", "/")

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            n += 1
            self.round(n)
            time.sleep(0.05)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=60)
        self.api.close()
        self.console.close()


def wait_for_runs(fault: FaultWorld, workflow_id: Any, timeout: float) -> list[Any]:
    """Every run of the workflow (as plain values) once none is unfinished."""
    deadline = time.monotonic() + timeout
    while True:
        with fault.scope():
            runs = [SimpleNamespace(id=r.id, status=r.status, error=r.error, output=r.output,
                                    steps_executed=r.steps_executed)
                    for r in db.session.scalars(select(Run).where(
                        Run.workflow_id == workflow_id))]
        unfinished = [r.id for r in runs if r.status in ("queued", "running")]
        if not unfinished:
            return runs
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(unfinished)} of {len(runs)} runs unfinished after "
                                 f"{timeout}s")
        time.sleep(0.2)


def test_fault_postgres_restarted_mid_run_fails_no_run_and_the_api_answers_503(
        throwaway_postgres, receiver):  # noqa: F811
    fault: FaultWorld = throwaway_postgres
    token = fault.world.keys["a_admin"][1]
    with fault.scope() as tenant_id:
        workflow_id = publish(tenant_id, {"steps": [
            call_step(receiver, "charge", "/charge?delay=0.4", "notify"),
            call_step(receiver, "notify", "/notify?delay=0.1", "done"),
            {"id": "done", "type": "transform",
             "output": "{{ steps.charge.body.effect > 0 && steps.notify.body.effect > 0 }}"},
        ]})
    web = WebProcess(fault.settings)
    workers = WorkerProcess(fault.settings, processes=2, threads=4)
    scheduler = scheduler_process(fault.settings, interval=1.0)
    caller = None
    try:
        workers.start()
        scheduler.start()
        web.start()
        caller = ApiCaller(web.base, token, workflow_id)
        caller.sign_in(fault.world.users["a_admin"].email)
        first = caller.call(caller.api, "POST", f"/api/v1/workflows/{workflow_id}/runs",
                            json={"input": {"n": 0}})
        assert first.status_code == 202, first.text
        receiver.wait_for_hit("/notify", timeout=60)  # the workers have booted
        for n in range(RUNS_BEFORE):  # in flight when the database goes
            caller.round(n)
        caller.start()
        receiver.wait_for_hit("/charge", count=RUNS_BEFORE // 2, timeout=30)

        fault.pg.restart()  # `pg_ctlcluster ... restart -m fast`: steps meet it mid-flight
        receiver.wait_for_hit("/charge", count=len(receiver.hits_to("/charge")) + 10,
                              timeout=30)  # runs flow again
        fault.pg.stop("fast")  # and once more, down for a while: the API must say so
        during = [caller.call(caller.api, "GET", "/api/v1/me"),
                  caller.call(caller.api, "POST", f"/api/v1/workflows/{workflow_id}/runs",
                              json={"input": {"n": -1}}),
                  caller.call(caller.console, "GET", "/"),
                  caller.call(caller.api, "GET", "/readyz")]
        time.sleep(2.0)
        fault.pg.start()

        time.sleep(2.0)  # the client goes on meeting the database back
        caller.stop()
        runs = wait_for_runs(fault, workflow_id, timeout=SETTLED_WITHIN)
        after = httpx.get(web.base + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        alive = (web.alive(), workers.proc.poll() is None, scheduler.alive())
    finally:
        if caller is not None and caller.is_alive():
            caller.stop()
        web.stop()
        workers.kill()
        scheduler.stop()

    # No run that would have succeeded failed, and each side effect was delivered.
    assert runs and {r.status for r in runs} == {"succeeded"}, \
        [(r.status, r.error) for r in runs if r.status != "succeeded"][:3]
    assert set(map(str, caller.started)) <= {str(r.id) for r in runs}
    with fault.scope():
        rows = [SimpleNamespace(id=r.id, run_id=r.run_id, step_id=r.step_id)
                for r in db.session.scalars(select(StepRun).where(
                    StepRun.run_id.in_([r.id for r in runs])))]
        metered = dict(db.session.execute(
            select(UsageEvent.run_id, func.count()).where(
                UsageEvent.metric == "steps", UsageEvent.run_id.in_([r.id for r in runs]))
            .group_by(UsageEvent.run_id)).all())
    by_run: dict[Any, list[Any]] = {}
    for row in rows:
        by_run.setdefault(row.run_id, []).append(row)
    for run in runs:
        steps = sorted(r.step_id for r in by_run[run.id])
        assert steps == ["charge", "done", "notify"], steps
        assert run.steps_executed == 3 and metered[run.id] == 3  # each step recorded once
        assert run.output is True
    for step in ("charge", "notify"):
        keys = {f"ovt-{r.id}" for r in rows if r.step_id == step}
        assert keys <= set(receiver.effects_on(f"/{step}")), step  # delivered, at least once
    assert len(receiver.effects_on("/charge")) == len(runs)  # and in effect once each

    # While the database was away, each answer said so: 503 and Retry-After, as a
    # problem for programs and as a page for the browser asking for the console.
    for answer in during:
        assert answer.status_code == 503, answer.text
        expected = "text/html" if answer.request.url.path == "/" else PROBLEM
        assert answer.headers["content-type"].startswith(expected), answer.headers
        assert int(answer.headers["retry-after"]) > 0
    assert during[0].json()["type"] == "urn:overture:problem:unavailable"
    # Every answer the client got was a success or such a problem: no HTML 500.
    unexpected = [a for a in caller.answers if not (200 <= a.status < 300 or (
        a.status == 503 and a.retry_after and a.content_type.startswith(
            "text/html" if a.path == "/" else PROBLEM)))]
    assert unexpected == [], unexpected[:3]
    assert any(a.status == 503 for a in caller.answers)

    # Everything recovered by itself: the same processes answer as before.
    assert alive == (True, True, True)
    assert after.status_code == 200, after.text


def test_fault_worker_killed_mid_step_keeps_the_steps_retries(app_ctx, world, database,
                                                               receiver, monkeypatch):
    """A step allowed two attempts is running when its worker is SIGKILLed. The sweeper
    takes its lease back and another worker runs it again: that attempt was lost, not
    used. The re-run then meets a dropped connection (the step's own failure) and still
    has its retry: the run succeeds, the charge applied once."""
    monkeypatch.setattr(worker, "RESEND_AFTER", timedelta(0))
    a = world.tenants["a"].id
    own = pg_settings(database, OVERTURE_REDIS_NAMESPACE=f"{REDIS_NAMESPACE}-crash")
    lease = {"OVERTURE_LEASE_GRACE_SECONDS": "1"}
    with private_app(own):
        wf = publish(a, {"steps": [
            {"id": "charge", "type": "action", "action": "http.request", "timeout_seconds": 3,
             "input": {"method": "POST", "url": receiver.url("/charge?delay=1.5&drop=2")},
             "retry": {"max_attempts": 2, "backoff_seconds": 0.1}}]})
        first = WorkerProcess(own, processes=1, env=lease).start()
        try:
            run_id = start(a, wf)
            receiver.wait_for_hit("/charge", timeout=60)  # the worker boots first
            time.sleep(0.3)
        finally:
            first.kill()  # SIGKILL to the whole process group, mid-request
        second = WorkerProcess(own, processes=1, env=lease).start()
        try:
            run = sweep_until(a, run_id, timeout=60)
        finally:
            second.kill()
    assert run.status == "succeeded", run.error
    charges = receiver.hits_to("/charge")
    assert len(charges) == 3 and len({h.key for h in charges}) == 1  # killed, dropped, done
    assert receiver.effects_on("/charge") == [charges[0].key]
    (row,) = rows_of(a, run_id)
    assert (row.attempt, row.interruptions) == (2, 1)
