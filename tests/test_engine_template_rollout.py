"""Runs in flight in a client workspace during a template roll-out and its rollback, on
real worker processes (`-k engine`): a run keeps the workflow version it started on
through both and finishes on it, while new runs take whatever version is live."""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine_api_support import (
    ok,
    settle,
    start_via_api,
    wait_approval,
    wait_run,
)
from tests.engine_support import running_workers
from tests.support import Api, as_key


@pytest.fixture(scope="module")
def workers(settings):
    with running_workers(settings, processes=1, threads=4) as worker_process:
        yield worker_process


def refund(tag: str) -> dict[str, Any]:
    """review (a human approval parks the run) -> pay, which says which version ran."""
    return {"steps": [
        {"id": "review", "type": "approval", "next": "pay", "prompt": "Pay {{ input.amount }}?",
         "data": {"amount": "{{ input.amount }}"}, "assignee": {"role": "operator"},
         "timeout_seconds": 3600},
        {"id": "pay", "type": "transform",
         "output": tag + ": paid {{ steps.review.data.amount }}"},
    ]}


def test_engine_runs_in_flight_keep_their_version_through_a_rollout_and_its_rollback(
        app, world, workers):
    nw = as_key(app, world, "nw_admin", tenant="northwind")
    a = world.tid("a")
    source = ok(nw.post("/workflows", tenant=a,
                        json={"name": "refund", "definition": refund("v1")}), 201)
    ok(nw.post(f"/workflows/{source['id']}/publish", tenant=a), 201)
    template = ok(nw.post("/templates", json={"workspace_id": a, "name": "Refunds"}), 201)
    ws = ok(nw.post(f"/templates/{template['id']}/provision",
                    json={"name": "Client"}), 201)["workspace"]["id"]
    client = Api(app.test_client(), token=world.keys["nw_admin"][1], tenant=ws)
    try:
        flow = ok(client.get("/workflows"))["items"][0]
        first = start_via_api(client, flow["id"], {"amount": 10})["id"]
        waiting_first = wait_approval(client, first)

        ok(nw.patch(f"/workflows/{source['id']}", tenant=a,
                    json={"definition": refund("v2")}))
        ok(nw.post(f"/workflows/{source['id']}/publish", tenant=a), 201)
        ok(nw.post(f"/templates/{template['id']}/versions", json={"workspace_id": a}), 201)
        rollout = ok(nw.post(f"/templates/{template['id']}/rollouts",
                             json={"version": 2, "workspace_ids": [ws]}), 201)
        assert rollout["status"] == "completed"
        assert ok(client.get(f"/workflows/{flow['id']}"))["current_version"] == 2
        second = start_via_api(client, flow["id"], {"amount": 20})["id"]
        waiting_second = wait_approval(client, second)
        assert (ok(client.get(f"/runs/{first}"))["version"],
                ok(client.get(f"/runs/{second}"))["version"]) == (1, 2)

        back = ok(nw.post(f"/rollouts/{rollout['id']}/rollback"))
        assert back["status"] == "rolled_back"
        assert ok(client.get(f"/workflows/{flow['id']}"))["current_version"] == 1

        # Both went through the rollback parked on their approval; now they go on.
        for approval in (waiting_second, waiting_first):
            decided = ok(client.post(f"/approvals/{approval['id']}/decision",
                                     json={"decision": "approve"}))
            assert decided["status"] == "approved"
        done_first, done_second = wait_run(client, first), wait_run(client, second)
        assert (done_first["status"], done_first["version"], done_first["output"]) == (
            "succeeded", 1, "v1: paid 10")
        assert (done_second["status"], done_second["version"], done_second["output"]) == (
            "succeeded", 2, "v2: paid 20")
        # A run started now takes the live version again: v1.
        third = start_via_api(client, flow["id"], {"amount": 30})["id"]
        ok(client.post(f"/approvals/{wait_approval(client, third)['id']}/decision",
                       json={"decision": "approve"}))
        assert wait_run(client, third)["output"] == "v1: paid 30"
    finally:
        settle([world.tenants["a"].id, ws])
