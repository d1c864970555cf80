"""Triggers on real worker processes (`-k engine`): webhooks (secret URL, HMAC signing,
waiting for the output, idempotency) and cron schedules (the API, and exactly one run
per tick with two schedulers, in threads and as `overture scheduler` processes)."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from overture.orchestration import scheduler
from overture.orchestration.models import Run, Schedule, ScheduleFire
from overture.platform.db import db, scoped_to
from tests.engine_api_support import at_once, ok, publish_via_api, settle, wait_run
from tests.engine_support import ROOT, running_workers, settings_env
from tests.support import as_key, as_user

ECHO = {"steps": [{"id": "echo", "type": "transform",
                   "output": {"hello": "{{ input.name }}", "trigger": "{{ run.trigger }}"}}]}


@pytest.fixture(scope="module")
def workers(settings):
    with running_workers(settings, processes=1, threads=8) as worker_process:
        yield worker_process


@pytest.fixture(autouse=True)
def _settled(world):
    """Each test ends with the workers idle: the next test's TRUNCATE meets no
    transaction of theirs."""
    yield
    settle([world.tenants[t].id for t in ("a", "b", "c")])


def hook_path(workflow: dict[str, Any]) -> str:
    return urlparse(workflow["webhook_url"]).path


def sign(secret: str, body: bytes, at: float | None = None) -> str:
    """`X-Overture-Signature: t=...,v1=...` (more in test_webhook_replay.py)."""
    stamp = int(time.time() if at is None else at)
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def runs_of(api, workflow_id: str, trigger: str) -> list[dict[str, Any]]:
    return ok(api.get("/runs", query_string={"workflow_id": workflow_id, "trigger": trigger,
                                             "limit": 200}))["items"]


# --------------------------------------------------------------------------- webhooks


def test_engine_webhook_starts_a_run_or_waits_for_its_output(app, world, workers):
    admin = as_key(app, world, "a_admin")
    workflow = publish_via_api(admin, ECHO)
    path, caller = hook_path(workflow), app.test_client()
    assert path == f"/hooks/{world.tid('a')}/{path.rsplit('/', 1)[1]}"

    queued = caller.post(path, json={"name": "Ada"})
    assert queued.status_code == 202 and queued.get_json()["status"] == "queued"
    run = wait_run(admin, queued.get_json()["run_id"])
    assert (run["trigger"], run["output"]) == ("webhook", {"hello": "Ada", "trigger": "webhook"})

    waited = caller.post(path + "?wait=10", json={"name": "Bo"})
    assert waited.status_code == 200, waited.get_data(as_text=True)
    assert waited.get_json()["status"] == "succeeded"
    assert waited.get_json()["output"] == {"hello": "Bo", "trigger": "webhook"}

    # The same Idempotency-Key gives the same run.
    first = caller.post(path, json={"name": "Cy"}, headers={"Idempotency-Key": "evt-1"})
    again = caller.post(path, json={"name": "Cy"}, headers={"Idempotency-Key": "evt-1"})
    assert first.status_code == again.status_code == 202
    assert first.get_json()["run_id"] == again.get_json()["run_id"]
    assert again.get_json()["status"] == "existing"
    wait_run(admin, first.get_json()["run_id"])
    assert len(runs_of(admin, workflow["id"], "webhook")) == 3

    # A bad parameter is refused before any run starts.
    assert caller.post(path + "?wait=soon", json={}).status_code == 422
    assert caller.post(path, json={}, headers={"Idempotency-Key": "k" * 201}).status_code == 422
    assert len(runs_of(admin, workflow["id"], "webhook")) == 3


def test_engine_webhook_wrong_token_or_tenant_is_404(app, world, workers):
    admin = as_key(app, world, "a_admin")
    workflow = publish_via_api(admin, ECHO)
    token = hook_path(workflow).rsplit("/", 1)[1]
    caller = app.test_client()
    wrong = token[:-1] + ("y" if token.endswith("x") else "x")  # one character off
    assert caller.post(f"/hooks/{world.tid('a')}/{wrong}", json={}).status_code == 404
    assert caller.post(f"/hooks/{world.tid('b')}/{token}", json={}).status_code == 404
    assert caller.post(f"/hooks/not-a-tenant/{token}", json={}).status_code == 404
    assert runs_of(admin, workflow["id"], "webhook") == []
    assert admin.delete(f"/workflows/{workflow['id']}").status_code == 204
    assert caller.post(hook_path(workflow), json={}).status_code == 404


def test_engine_webhook_hmac_signature_when_signing_is_on(app, world, workers):
    admin = as_key(app, world, "a_admin")
    workflow = publish_via_api(admin, ECHO)
    secret = "whsec-" + "9" * 24
    credential = ok(admin.post("/credentials", json={
        "name": "hook signing", "kind": "custom", "fields": {"secret": secret},
        "secret_fields": ["secret"]}), 201)
    other = ok(as_key(app, world, "b_admin").post("/credentials", json={
        "name": "b signing", "kind": "custom", "fields": {"secret": "b"},
        "secret_fields": ["secret"]}), 201)
    assert admin.patch(f"/workflows/{workflow['id']}",
                       json={"webhook_credential_id": other["id"]}).status_code == 404
    signed = ok(admin.patch(f"/workflows/{workflow['id']}",
                            json={"webhook_credential_id": credential["id"]}))
    assert signed["webhook_signed"] is True and secret not in json.dumps(signed)

    path, caller = hook_path(workflow), app.test_client()
    body = json.dumps({"name": "Signed"}).encode()
    headers = {"Content-Type": "application/json"}
    assert caller.post(path, data=body, headers=headers).status_code == 401
    body_only = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    for wrong in (sign("not the secret", body), sign(secret, body + b" "), "sha256=",
                  sign(secret, body).replace("v1=", "v0="), body_only):
        r = caller.post(path, data=body, headers={**headers, "X-Overture-Signature": wrong})
        assert r.status_code == 401, wrong
    assert runs_of(admin, workflow["id"], "webhook") == []

    good = caller.post(path + "?wait=10", data=body,
                       headers={**headers, "X-Overture-Signature": sign(secret, body)})
    assert good.status_code == 200 and good.get_json()["output"]["hello"] == "Signed"
    # Another delivery of the same body (signed at another second) is another run.
    accepted = caller.post(path, data=body, headers={
        **headers, "X-Overture-Signature": sign(secret, body, at=time.time() - 2)})
    assert accepted.status_code == 202
    wait_run(admin, accepted.get_json()["run_id"])
    assert len(runs_of(admin, workflow["id"], "webhook")) == 2

    # Signing off again: unsigned calls are accepted.
    ok(admin.patch(f"/workflows/{workflow['id']}", json={"webhook_credential_id": None}))
    plain = caller.post(path, json={"name": "plain"})
    assert plain.status_code == 202
    assert wait_run(admin, plain.get_json()["run_id"])["output"]["hello"] == "plain"


# --------------------------------------------------------------------------- schedules


def problem_fields(response) -> set[str]:
    assert response.status_code == 422, response.get_data(as_text=True)
    return {e["field"] for e in response.get_json()["errors"]}


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_engine_schedules_api(app, world):
    builder = as_user(app, world, "a_builder")
    wid = publish_via_api(builder, ECHO)["id"]
    base = f"/workflows/{wid}/schedules"
    before = datetime.now(UTC)
    created = ok(builder.post(base, json={"cron": "30 9 * * *", "timezone": "Europe/Paris",
                                          "input": {"name": "cron"}}), 201)
    assert created["enabled"] is True and created["last_fired_at"] is None
    assert (created["cron"], created["timezone"]) == ("30 9 * * *", "Europe/Paris")
    first = when(created["next_fire_at"])
    local = first.astimezone(ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute) == (9, 30) and before < first <= before + timedelta(days=1)

    assert "cron" in problem_fields(builder.post(base, json={"cron": "every day"}))
    assert "cron" in problem_fields(builder.post(base, json={"cron": "0 0 31 2 *"}))
    assert "cron" in problem_fields(builder.post(base, json={}))
    assert "timezone" in problem_fields(builder.post(base, json={"cron": "* * * * *",
                                                                 "timezone": "Mars/Olympus"}))
    assert "timezone" in problem_fields(builder.post(base, json={"cron": "* * * * *",
                                                                 "timezone": "../../etc"}))
    sid = created["id"]
    assert [s["id"] for s in ok(builder.get(base))["items"]] == [sid]
    assert ok(builder.get(f"/schedules/{sid}")) == created

    off = ok(builder.patch(f"/schedules/{sid}", json={"enabled": False}))
    assert off["enabled"] is False
    assert "cron" in problem_fields(builder.patch(f"/schedules/{sid}", json={"cron": "nope"}))
    assert "timezone" in problem_fields(builder.patch(f"/schedules/{sid}",
                                                      json={"timezone": "Nowhere/Land"}))
    moved = ok(builder.patch(f"/schedules/{sid}", json={"enabled": True, "timezone": "UTC",
                                                        "input": {"name": "moved"}}))
    assert moved["enabled"] is True and moved["input"] == {"name": "moved"}
    assert (when(moved["next_fire_at"]).hour, when(moved["next_fire_at"]).minute) == (9, 30)

    viewer, other = as_user(app, world, "a_viewer"), as_key(app, world, "b_admin")
    assert ok(viewer.get(base))["items"][0]["id"] == sid
    assert ok(viewer.get(f"/schedules/{sid}"))["id"] == sid
    assert viewer.post(base, json={"cron": "* * * * *"}).status_code == 403
    assert viewer.patch(f"/schedules/{sid}", json={"enabled": False}).status_code == 403
    assert viewer.delete(f"/schedules/{sid}").status_code == 403
    for method in ("GET", "PATCH", "DELETE"):
        r = other.call(method, f"/schedules/{sid}", json={"enabled": False}
                       if method == "PATCH" else None)
        assert r.status_code == 404, method

    assert builder.delete(f"/schedules/{sid}").status_code == 204
    assert builder.get(f"/schedules/{sid}").status_code == 404
    assert ok(builder.get(base))["items"] == []


def make_due(tenant_id: Any, schedule_id: str, tick: datetime) -> None:
    with scoped_to(tenant_id):
        db.session.execute(update(Schedule).where(Schedule.id == schedule_id)
                           .values(next_fire_at=tick))
        db.session.commit()


def fires_of(tenant_id: Any, schedule_id: str) -> list[tuple[datetime, Any]]:
    with scoped_to(tenant_id):
        rows = db.session.execute(select(ScheduleFire.fire_at, ScheduleFire.run_id).where(
            ScheduleFire.schedule_id == schedule_id).order_by(ScheduleFire.fire_at)).all()
        db.session.rollback()
    return [(r.fire_at, r.run_id) for r in rows]


def schedule_runs(tenant_id: Any, workflow_id: str) -> list[tuple[Any, str]]:
    with scoped_to(tenant_id):
        rows = db.session.execute(select(Run.id, Run.idempotency_key).where(
            Run.workflow_id == workflow_id, Run.trigger == "schedule")).all()
        db.session.rollback()
    return [(r.id, r.idempotency_key) for r in rows]


def fire_in_own_context(app) -> int:
    """One scheduler round, as another process would run it."""
    with app.app_context():
        return scheduler.fire_all()


def test_engine_two_schedulers_fire_each_tick_once(app, world, workers):
    a = world.tenants["a"].id
    admin = as_key(app, world, "a_admin")
    wid = publish_via_api(admin, ECHO)["id"]
    sid = ok(admin.post(f"/workflows/{wid}/schedules",
                        json={"cron": "0 0 1 1 *", "input": {"name": "tick"}}), 201)["id"]
    ticks = []
    for round_ in range(3):
        tick = (datetime.now(UTC) - timedelta(seconds=10 - round_)).replace(microsecond=0)
        ticks.append(tick)
        make_due(a, sid, tick)
        fired = at_once(*[lambda: fire_in_own_context(app)] * 2)
        assert sorted(fired) == [0, 1], round_
    fires = fires_of(a, sid)
    assert [f for f, _ in fires] == ticks
    runs = schedule_runs(a, wid)
    assert sorted(str(r) for r, _ in runs) == sorted(str(r) for _, r in fires)
    schedule = ok(admin.get(f"/schedules/{sid}"))
    assert when(schedule["last_fired_at"]) == ticks[-1]
    assert when(schedule["next_fire_at"]).strftime("%m-%d %H:%M") == "01-01 00:00"
    for run_id, _ in runs:
        done = wait_run(admin, str(run_id))
        assert done["output"] == {"hello": "tick", "trigger": "schedule"}

    # A disabled schedule does not fire, however overdue.
    ok(admin.patch(f"/schedules/{sid}", json={"enabled": False}))
    make_due(a, sid, datetime.now(UTC) - timedelta(minutes=5))
    with app.app_context():
        assert scheduler.fire_all() == 0
    assert len(fires_of(a, sid)) == 3


def test_engine_scheduler_skips_broken_schedules_and_resting_tenants(app, world, workers):
    a, b = world.tenants["a"].id, world.tenants["b"].id
    a_admin, b_admin = as_key(app, world, "a_admin"), as_key(app, world, "b_admin")
    a_wf, b_wf = publish_via_api(a_admin, ECHO)["id"], publish_via_api(b_admin, ECHO)["id"]
    broken, fine = (ok(a_admin.post(f"/workflows/{a_wf}/schedules",
                                    json={"cron": "0 0 1 1 *", "input": {"name": name}}),
                       201)["id"] for name in ("broken", "fine"))
    in_b = ok(b_admin.post(f"/workflows/{b_wf}/schedules",
                           json={"cron": "0 0 1 1 *", "input": {"name": "b"}}), 201)
    assert a_admin.post(f"/workflows/{a_wf}/schedules",
                        json={"cron": "* * * * *",
                              "input": {"blob": "x" * 1_000_001}}).status_code == 422
    with scoped_to(a):  # an input no run may take (the API refuses it; a migration may not)
        db.session.execute(update(Schedule).where(Schedule.id == broken)
                           .values(input={"blob": "x" * 1_000_001}))
        db.session.commit()
    past = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    for tenant, sid in ((a, broken), (a, fine), (b, in_b["id"])):
        make_due(tenant, sid, past)

    # The workspace's agency is suspended: none of its workspaces' schedules fire.
    root = as_user(app, world, "platform")
    assert root.post(f"/tenants/{world.tid('northwind')}/suspend").status_code == 200
    assert fire_in_own_context(app) == 0
    assert root.post(f"/tenants/{world.tid('northwind')}/resume").status_code == 200

    # The broken schedule fails alone; the others fire.
    assert fire_in_own_context(app) == 2
    assert fires_of(a, broken) == [] and len(fires_of(a, fine)) == 1
    assert len(fires_of(b, in_b["id"])) == 1
    assert ok(a_admin.get(f"/schedules/{broken}"))["next_fire_at"] == past.isoformat()
    for api, tenant, wf in ((a_admin, a, a_wf), (b_admin, b, b_wf)):
        [(run_id, _)] = schedule_runs(tenant, wf)
        assert wait_run(api, str(run_id))["output"]["trigger"] == "schedule"


def test_engine_two_scheduler_processes_one_run_per_tick(app, world, settings, workers):
    a = world.tenants["a"].id
    admin = as_key(app, world, "a_admin")
    wid = publish_via_api(admin, ECHO)["id"]
    sid = ok(admin.post(f"/workflows/{wid}/schedules",
                        json={"cron": "* * * * * *", "input": {"name": "every second"}}),
             201)["id"]
    procs = [subprocess.Popen([sys.executable, "-m", "overture.cli", "scheduler",
                               "--interval", "0.05"], env=settings_env(settings), cwd=ROOT,
                              start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for _ in range(2)]
    try:
        deadline = time.monotonic() + 60  # two app boots on a busy machine
        while len(fires_of(a, sid)) < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert all(p.poll() is None for p in procs), "a scheduler died"
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=20) for p in procs]
    errors = [p.stderr.read().decode() for p in procs]
    assert codes == [0, 0], errors

    fires = fires_of(a, sid)
    ticks = [f for f, _ in fires]
    assert len(ticks) >= 5 and all(t.microsecond == 0 for t in ticks)
    runs = schedule_runs(a, wid)
    # One run per tick: as many runs as ticks, each made for its own tick.
    assert len(runs) == len(ticks)
    assert sorted(str(r) for r, _ in runs) == sorted(str(r) for _, r in fires)
    assert sorted(k for _, k in runs) == sorted(f"schedule:{sid}:{t.isoformat()}"
                                                for t in ticks)
    for run_id, _ in runs:
        assert wait_run(admin, str(run_id))["status"] == "succeeded"
