"""Helpers for the engine's API tests (`-k engine`): publish through the API and wait on
runs and approvals the way a client would, by polling the API."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, func, or_, select

from overture.orchestration.models import StepRun
from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to
from tests.support import Api, unique

FINISHED = ("succeeded", "failed", "cancelled", "timed_out")


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code,
                                            response.get_data(as_text=True))
    return response.get_json()


def create_workflow(api: Api, definition: dict[str, Any], name: str | None = None) -> Any:
    return ok(api.post("/workflows", json={"name": name or f"wf-{unique()}",
                                           "definition": definition}), 201)


def publish_via_api(api: Api, definition: dict[str, Any], name: str | None = None) -> Any:
    """A workflow created and published through the API; its JSON as GET shows it."""
    workflow = create_workflow(api, definition, name)
    ok(api.post(f"/workflows/{workflow['id']}/publish"), 201)
    return ok(api.get(f"/workflows/{workflow['id']}"))


def send(api: Api, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> Any:
    """An API call as `api` with extra request headers."""
    return api.client.open("/api/v1" + path, method=method,
                           headers={**api.headers(None), **headers}, **kwargs)


def start_via_api(api: Api, workflow_id: str, input: Any = None, key: str | None = None) -> Any:
    r = send(api, "POST", f"/workflows/{workflow_id}/runs",
             {"Idempotency-Key": key} if key else {},
             json={"input": input if input is not None else {}})
    assert r.status_code in (200, 202), r.get_data(as_text=True)
    return r.get_json()


def wait_run(api: Api, run_id: str, timeout: float = 30.0,
             until: tuple[str, ...] = FINISHED) -> Any:
    """GET /runs/{id} until its status is one of `until`; the run with its timeline."""
    deadline = time.monotonic() + timeout
    while True:
        run = ok(api.get(f"/runs/{run_id}"))
        if run["status"] in until:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run['status']} after {timeout}s: "
                                 f"{[(s['step_id'], s['status']) for s in run['steps']]}")
        time.sleep(0.05)


def wait_approval(api: Api, run_id: str, timeout: float = 30.0) -> Any:
    """The pending approval of a run, once the run reaches its approval step."""
    deadline = time.monotonic() + timeout
    while True:
        page = ok(api.get("/approvals", query_string={"status": "pending", "limit": 200}))
        found = [a for a in page["items"] if a["run_id"] == run_id]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no pending approval for run {run_id} after {timeout}s")
        time.sleep(0.05)


def step_runs(run: Any, step_id: str) -> list[Any]:
    return [s for s in run["steps"] if s["step_id"] == step_id]


def audit_events(tenant_id: Any, action: str) -> list[dict[str, Any]]:
    """The tenant's audit events of one action, as plain values."""
    with scoped_to(tenant_id):
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                  .order_by(AuditEvent.seq)).all()
        out = [{"target_id": e.target_id, "actor_id": e.actor_id, "details": e.details}
               for e in rows]
        db.session.rollback()
    return out


def settle(tenant_ids: list[Any], timeout: float = 15.0) -> None:
    """Wait until the workers have nothing running or due in these tenants, so the next
    test's TRUNCATE never meets a worker's transaction half way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = 0
        for tenant_id in tenant_ids:
            with scoped_to(tenant_id):
                busy += db.session.scalar(select(func.count()).select_from(StepRun).where(or_(
                    StepRun.status == "running",
                    and_(StepRun.status == "queued", or_(
                        StepRun.next_attempt_at.is_(None),
                        StepRun.next_attempt_at <= func.now()))))) or 0
                db.session.rollback()
        if not busy:
            return
        time.sleep(0.05)


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run each call in its own thread, released together; their results in order
    (an exception a call raised is re-raised here)."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except BaseException as exc:  # handed back to the test thread
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results
