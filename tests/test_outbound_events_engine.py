"""Outbound events of real runs on real worker processes: a workflow published, a run
started, its approval requested and decided, the run succeeded, each POSTed by the
workers' `events` actor to a local receiver, signed so the `standardwebhooks` verifier
accepts it, each event once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from tests.engine_api_support import (
    ok,
    publish_via_api,
    settle,
    start_via_api,
    wait_approval,
    wait_run,
)
from tests.engine_support import running_workers
from tests.events_support import Receiver, subscribe
from tests.support import World, as_key, as_user

FLOW = {"steps": [
    {"id": "prepare", "type": "transform", "next": "review", "output": "{{ input.n }}"},
    {"id": "review", "type": "approval", "next": "done", "prompt": "Go on?",
     "assignee": {"role": "operator"}},
    {"id": "done", "type": "transform", "output": "done"},
]}
EXPECTED = ["workflow.published", "run.started", "approval.requested", "approval.decided",
            "run.succeeded"]


@pytest.fixture(scope="module")
def workers(settings: Any) -> Iterator[Any]:
    with running_workers(settings, processes=1, threads=4) as worker_process:
        yield worker_process


@pytest.fixture(autouse=True)
def _settled(world: World) -> Iterator[None]:
    yield
    settle([world.tenants[t].id for t in ("a", "b", "c")])


def received(receiver: Receiver, count: int, timeout: float = 30.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while len(receiver.got) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return list(receiver.got)


def test_engine_run_events_reach_the_receiver_signed_each_once(
        app: Any, world: World, workers: Any, httpserver: HTTPServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.0/8")
    receiver = Receiver(httpserver)
    _, secret = subscribe(world, receiver.url, ["*"])
    receiver.secrets = [secret]
    admin = as_key(app, world, "a_admin")
    workflow = publish_via_api(admin, FLOW)
    run_id = start_via_api(admin, workflow["id"], {"n": 1})["id"]
    approval = wait_approval(admin, run_id)
    operator = as_user(app, world, "a_operator")
    ok(operator.post(f"/approvals/{approval['id']}/decision", json={"decision": "approve"}))
    assert wait_run(admin, run_id)["status"] == "succeeded"

    got = received(receiver, len(EXPECTED))
    assert sorted(r.type for r in got) == sorted(EXPECTED)
    assert all(r.verified_with == [secret] for r in got)
    assert len({r.webhook_id for r in got}) == len(EXPECTED)
    by_type = {r.type: r.data for r in got}
    assert by_type["run.succeeded"]["run_id"] == run_id
    assert by_type["run.started"]["workflow_id"] == workflow["id"]
    assert by_type["run.succeeded"]["finished_at"].endswith("Z")  # ISO 8601, UTC
    assert by_type["approval.decided"]["status"] == "approved"
    assert by_type["workflow.published"]["version"] == 1
    assert {d["workspace_id"] for d in by_type.values()} == {world.tid("a")}

    log = ok(admin.get(f"/event-subscriptions/{_only_subscription(admin)}/deliveries"))
    assert sorted(d["status"] for d in log["items"]) == ["delivered"] * len(EXPECTED)
    assert all(d["log"][0]["status_code"] == 204 for d in log["items"])


def _only_subscription(api: Any) -> str:
    (subscription,) = ok(api.get("/event-subscriptions"))["items"]
    return str(subscription["id"])
