"""Test mode (issue 18): a test run sends nothing outside (the receiver standing in for
the app sees no request), answers its world-changing action with the mock, and writes
no usage and no outbound event; it is marked "test" and audited."""

from __future__ import annotations

import pytest

from tests.agent_fakes import create_agent
from tests.engine_api_support import audit_events, ok, publish_via_api, start_via_api
from tests.events_support import subscribe
from tests.support import as_key
from tests.testmode_support import (
    deliveries,
    flow,
    problem,
    run_of,
    step,
    usage_of,
    writer,
)

pytestmark = pytest.mark.usefixtures("loopback_allowed")  # the receiver is on loopback


def test_test_mode_run_sends_nothing_bills_nothing_and_answers_with_the_mock(
        app, world, inbox, receiver):
    a = world.tenants["a"].id
    create_agent(world, writer("Hello from v1"))
    subscribe(world, receiver.url("/events"), ["run.started", "run.succeeded"])
    api = as_key(app, world, "a_admin")
    wf = publish_via_api(api, flow(receiver))

    live = start_via_api(api, wf["id"], {"n": 1})
    inbox.drain()
    assert run_of(api, live["id"])["status"] == "succeeded"
    assert len(receiver.hits_to("/notify")) == 1  # a live run calls the app
    assert usage_of(a, live["id"]) > 0
    assert sorted(deliveries(a, live["id"])) == ["run.started", "run.succeeded"]

    mocked = {"status": 201, "headers": {}, "body": {"id": "mock-1"}}
    started = ok(api.post(f"/workflows/{wf['id']}/test-runs", json={
        "input": {"n": 2}, "mocks": {"notify": {"output": mocked}}}), 202)
    assert started["mode"] == "test" and started["trigger"] == "test"
    inbox.drain()
    run = run_of(api, started["id"])
    assert run["status"] == "succeeded", run
    assert step(run, "notify")["output"] == mocked
    assert step(run, "write")["output"]["output"] == "Hello from v1"
    assert step(run, "write")["tokens"] == 120  # kept on the run, billed nowhere
    assert len(receiver.hits_to("/notify")) == 1  # still only the live run's request
    assert usage_of(a, started["id"]) == 0
    assert deliveries(a, started["id"]) == []
    assert any(e["target_id"] == started["id"] and e["details"].get("mode") == "test"
               for e in audit_events(a, "run.started"))

    # Nothing declared: the action answers with a synthetic output naming what it
    # would have sent; still nothing reaches the app.
    bare = ok(api.post(f"/workflows/{wf['id']}/test-runs", json={"input": {"n": 3}}), 202)
    inbox.drain()
    notify = step(run_of(api, bare["id"]), "notify")["output"]
    assert notify["mocked"] is True and notify["note"] == "mocked: no response declared"
    assert notify["would_send"]["json"] == {"text": "Hello from v1"}
    assert len(receiver.hits_to("/notify")) == 1

    # A declared error fails the step as the app's error would.
    failing = ok(api.post(f"/workflows/{wf['id']}/test-runs", json={
        "input": {"n": 4}, "mocks": {"notify": {"error": {"code": "rate_limited_x",
                                                          "message": "no"}}}}), 202)
    inbox.drain()
    assert run_of(api, failing["id"])["status"] == "failed"

    listed = ok(api.get(f"/runs?workflow_id={wf['id']}&mode=test"))["items"]
    assert {r["id"] for r in listed} == {started["id"], bare["id"], failing["id"]}
    assert {r["mode"] for r in ok(api.get(f"/runs?workflow_id={wf['id']}&mode=live"))[
        "items"]} == {"live"}


def test_test_mode_scripted_model_replies_replace_the_agent(app, world, inbox, receiver):
    create_agent(world, writer("Hello from v1"))
    api = as_key(app, world, "a_admin")
    wf = publish_via_api(api, flow(receiver))
    started = ok(api.post(f"/workflows/{wf['id']}/test-runs", json={
        "input": {"n": 1}, "models": {"write": [
            {"answer": {"status": "ok", "confidence": 1, "output": "scripted here"}}]}}), 202)
    inbox.drain()
    run = run_of(api, started["id"])
    assert step(run, "write")["output"]["output"] == "scripted here"
    assert run["output"] == "scripted here"
    assert receiver.hits_to("/notify") == []


def test_test_mode_bad_input_is_a_problem(app, world, inbox, receiver):
    create_agent(world, writer("x"))
    api = as_key(app, world, "a_admin")
    wf = publish_via_api(api, flow(receiver))
    base = f"/workflows/{wf['id']}/test-runs"
    fields = {e["field"] for e in problem(api.post(base, json={
        "mocks": {"nope": {"output": 1}, "notify": {"output": 1, "error": {}}},
        "models": {"write": [{"bogus": 1}]}}), 422)["errors"]}
    assert {"mocks.nope", "mocks.notify"} <= fields and any(f.startswith("models.write")
                                                            for f in fields)
    assert "source_run_id" in {e["field"] for e in problem(api.post(base, json={
        "source_run_id": "8d6c1f8e-5a0e-4a53-9f5e-2f4b8f6a3c11"}), 422)["errors"]}
    problem(api.post("/workflows/8d6c1f8e-5a0e-4a53-9f5e-2f4b8f6a3c11/test-runs", json={}),
            404)
    # Another tenant's workflow is not found.
    other = as_key(app, world, "b_admin")
    problem(other.post(base, json={}), 404)
