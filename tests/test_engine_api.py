"""Workflows, versions and runs through API v1, on real worker processes (`-k engine`)."""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest

from tests.engine_api_support import (
    at_once,
    create_workflow,
    ok,
    publish_via_api,
    send,
    settle,
    start_via_api,
    step_runs,
    wait_run,
)
from tests.engine_support import running_workers
from tests.support import as_key, as_user, unique

V1 = {"steps": [{"id": "hello", "type": "transform", "output": "v1 {{ input.name }}"}]}
V2 = {"steps": [
    {"id": "pause", "type": "delay", "seconds": "{{ input.pause }}", "next": "hello"},
    {"id": "hello", "type": "transform", "output": "v2 {{ input.name }}"}]}
INVALID = {"steps": [
    {"id": "gate", "type": "condition", "if": "input.ok", "then": "notify"},
    {"id": "notify", "type": "condition", "if": "input.count >>> 2"}]}
FAILING = {"steps": [{"id": "boom", "type": "transform", "output": "{{ input.nope.x }}"}]}


@pytest.fixture(scope="module")
def workers(settings):
    with running_workers(settings, processes=1, threads=8) as worker:
        yield worker


@pytest.fixture(autouse=True)
def _settled(world):
    """Each test ends with the workers idle: the next test's TRUNCATE meets no
    transaction of theirs."""
    yield
    settle([world.tenants[t].id for t in ("a", "b", "c")])


def problem_fields(response, status: int = 422) -> set[str]:
    assert response.status_code == status, response.get_data(as_text=True)
    return {e["field"] for e in response.get_json()["errors"]}


# --------------------------------------------------------------------------- workflows


def test_engine_api_workflow_drafts_versions_publish_and_rollback(app, world, workers):
    builder = as_user(app, world, "a_builder")
    created = create_workflow(builder, {"steps": [{"id": "x", "type": "transform"}]},
                              name="refunds")
    wid = created["id"]
    assert created["current_version"] is None
    assert urlparse(created["webhook_url"]).path.startswith(f"/hooks/{world.tid('a')}/")
    # A draft that was never published cannot run.
    assert builder.post(f"/workflows/{wid}/runs", json={}).status_code == 409

    updated = ok(builder.patch(f"/workflows/{wid}", json={"definition": V1,
                                                          "description": "pays back"}))
    assert updated["definition"] == V1 and updated["description"] == "pays back"
    assert ok(builder.post(f"/workflows/{wid}/publish"), 201)["number"] == 1
    ok(builder.patch(f"/workflows/{wid}", json={"definition": V2}))
    assert ok(builder.get(f"/workflows/{wid}"))["current_version"] == 1  # drafts run nowhere
    assert ok(builder.post(f"/workflows/{wid}/publish"), 201)["number"] == 2

    # An invalid draft is refused at publish, naming the step and the field.
    ok(builder.patch(f"/workflows/{wid}", json={"definition": INVALID}))
    refused = builder.post(f"/workflows/{wid}/publish")
    assert "steps.notify.if" in problem_fields(refused)
    assert ok(builder.get(f"/workflows/{wid}"))["current_version"] == 2
    versions = ok(builder.get(f"/workflows/{wid}/versions"))["items"]
    assert [(v["number"], v["definition"]) for v in versions] == [(1, V1), (2, V2)]

    on_v2 = start_via_api(builder, wid, {"name": "Ada", "pause": 1})
    assert (on_v2["version"], on_v2["status"]) == (2, "running")
    assert ok(builder.post(f"/workflows/{wid}/rollback", json={"version": 1}))["number"] == 1
    assert ok(builder.get(f"/workflows/{wid}"))["current_version"] == 1
    on_v1 = start_via_api(builder, wid, {"name": "Bo", "pause": 1})
    assert on_v1["version"] == 1
    done_v1, done_v2 = wait_run(builder, on_v1["id"]), wait_run(builder, on_v2["id"])
    assert (done_v1["version"], done_v1["output"]) == (1, "v1 Bo")
    # The run started before the rollback finished on the version it started with.
    assert (done_v2["version"], done_v2["output"]) == (2, "v2 Ada")
    assert builder.post(f"/workflows/{wid}/rollback", json={"version": 9}).status_code == 404

    # Archived: gone from lists and lookups, cannot run; its runs stay readable.
    assert builder.delete(f"/workflows/{wid}").status_code == 204
    assert builder.get(f"/workflows/{wid}").status_code == 404
    assert wid not in [w["id"] for w in ok(builder.get("/workflows"))["items"]]
    assert builder.post(f"/workflows/{wid}/runs", json={}).status_code == 404
    assert ok(builder.get(f"/runs/{on_v1['id']}"))["output"] == "v1 Bo"


def test_engine_api_workflow_json_schema_errors_name_step_and_field(app, world):
    admin = as_key(app, world, "a_admin")
    wid = create_workflow(admin, {"steps": [
        {"id": "fetch", "type": "transform", "next": "ghost"},
        {"id": "wait", "type": "delay", "seconds": -1},
        {"id": "ask", "type": "approval", "assignee": {"role": "boss"}},
        {"id": "ask_user", "type": "approval", "assignee": {"user_id": "bob"}},
        {"id": "sub", "type": "subworkflow", "workflow_id": "not-an-id"},
        {"id": "odd", "type": "teleport"}]})["id"]
    fields = problem_fields(admin.post(f"/workflows/{wid}/publish"))
    assert {"steps.fetch", "steps.wait.seconds", "steps.ask.assignee.role",
            "steps.ask_user.assignee.user_id", "steps.sub.workflow_id",
            "steps.odd.type"} <= fields
    # An approval may route a rejection (to a step that exists) and escalate (to someone).
    ok(admin.patch(f"/workflows/{wid}", json={"definition": {"steps": [
        {"id": "ask", "type": "approval", "on_reject": "nowhere", "timeout_action": "escalate"}]}}))
    refused = admin.post(f"/workflows/{wid}/publish")
    assert problem_fields(refused) == {"steps.ask"}
    assert {"refers to unknown step 'nowhere'", "'escalate_to_role' is a required property"} == {
        e["message"] for e in refused.get_json()["errors"]}
    assert admin.get(f"/workflows/{wid}/versions").get_json()["items"] == []


def test_engine_api_a_step_that_leads_back_is_refused_at_publish(app, world):
    """A step runs once per block: a route back to an earlier step could never run, so
    publishing says so (and points at loop steps) instead of the run failing later."""
    admin = as_key(app, world, "a_admin")
    wid = create_workflow(admin, {"steps": [
        {"id": "draft", "type": "transform", "output": 1, "next": "check"},
        {"id": "check", "type": "condition", "if": "steps.draft == 1", "then": "send",
         "else": "draft"},
        {"id": "send", "type": "transform", "output": 2}]})["id"]
    refused = admin.post(f"/workflows/{wid}/publish")
    assert problem_fields(refused) == {"steps.check"}
    assert "draft -> check -> draft" in refused.get_json()["errors"][0]["message"]
    assert admin.get(f"/workflows/{wid}/versions").get_json()["items"] == []


def test_engine_api_concurrent_publishes_take_consecutive_numbers(app, world):
    admin = as_key(app, world, "a_admin")
    wid = create_workflow(admin, V1)["id"]
    callers = [as_key(app, world, "a_admin") for _ in range(2)]
    for round_ in range(3):  # a few rounds, so the two requests really do collide
        answers = at_once(*[lambda c=c: c.post(f"/workflows/{wid}/publish") for c in callers])
        assert sorted(r.status_code for r in answers) == [201, 201]
        assert sorted(r.get_json()["number"] for r in answers) == [2 * round_ + 1, 2 * round_ + 2]


def test_engine_api_other_tenants_and_weaker_roles_are_refused(app, world, workers):
    a_admin = as_key(app, world, "a_admin")
    wf = publish_via_api(a_admin, V1)
    wid = wf["id"]
    run = wait_run(a_admin, start_via_api(a_admin, wid, {"name": "A"})["id"])

    b = as_key(app, world, "b_admin")
    for method, path, body in [
            ("GET", f"/workflows/{wid}", None), ("PATCH", f"/workflows/{wid}", {"name": "x"}),
            ("POST", f"/workflows/{wid}/publish", None),
            ("POST", f"/workflows/{wid}/rollback", {"version": 1}),
            ("GET", f"/workflows/{wid}/versions", None), ("DELETE", f"/workflows/{wid}", None),
            ("POST", f"/workflows/{wid}/runs", {"input": {}}),
            ("GET", f"/workflows/{wid}/schedules", None),
            ("POST", f"/workflows/{wid}/schedules", {"cron": "* * * * *"}),
            ("GET", f"/runs/{run['id']}", None), ("POST", f"/runs/{run['id']}/cancel", None),
            ("POST", f"/runs/{run['id']}/replay", {"from_step": "hello"})]:
        r = b.call(method, path, json=body)
        assert r.status_code == 404, (method, path, r.status_code)
    assert ok(b.get("/workflows"))["items"] == []
    assert ok(b.get("/runs"))["items"] == []
    assert ok(b.get("/runs", query_string={"workflow_id": wid}))["items"] == []

    viewer = as_user(app, world, "a_viewer")
    assert ok(viewer.get(f"/workflows/{wid}"))["id"] == wid
    assert ok(viewer.get(f"/runs/{run['id']}"))["status"] == "succeeded"
    for method, path, body in [
            ("POST", "/workflows", {"name": "mine", "definition": V1}),
            ("PATCH", f"/workflows/{wid}", {"definition": V1}),
            ("POST", f"/workflows/{wid}/publish", None),
            ("POST", f"/workflows/{wid}/rollback", {"version": 1}),
            ("DELETE", f"/workflows/{wid}", None),
            ("POST", f"/workflows/{wid}/runs", {"input": {}}),
            ("POST", f"/runs/{run['id']}/replay", {"from_step": "hello"})]:
        r = viewer.call(method, path, json=body)
        assert r.status_code == 403, (method, path, r.status_code)
    assert ok(a_admin.get(f"/workflows/{wid}/versions"))["items"][0]["number"] == 1
    assert len(ok(a_admin.get("/runs", query_string={"workflow_id": wid}))["items"]) == 1


# --------------------------------------------------------------------------- runs


def test_engine_api_same_idempotency_key_gives_the_same_run(app, world, workers):
    api = as_key(app, world, "a_admin")
    wid = publish_via_api(api, V1)["id"]
    key = f"order-{unique()}"
    runs_path = f"/workflows/{wid}/runs"
    first = send(api, "POST", runs_path, {"Idempotency-Key": key}, json={"input": {"name": "A"}})
    again = send(api, "POST", runs_path, {"Idempotency-Key": key}, json={"input": {"name": "A"}})
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.get_json()["id"] == again.get_json()["id"]
    assert again.get_json()["idempotency_key"] == key
    # Another input under the same key is refused (test_idempotency_key_reuse.py).
    other = send(api, "POST", runs_path, {"Idempotency-Key": key}, json={"input": {"name": "B"}})
    assert other.status_code == 422

    # Two clients racing with one key still make one run.
    callers = [as_key(app, world, "a_admin") for _ in range(2)]
    raced = at_once(*[lambda c=c: send(c, "POST", runs_path, {"Idempotency-Key": key + "-race"},
                                       json={"input": {"name": "C"}}) for c in callers])
    assert sorted(r.status_code for r in raced) == [200, 202]
    assert raced[0].get_json()["id"] == raced[1].get_json()["id"]
    wait_run(api, raced[0].get_json()["id"])

    listed = ok(api.get("/runs", query_string={"workflow_id": wid}))["items"]
    assert len(listed) == 2
    assert wait_run(api, first.get_json()["id"])["output"] == "v1 A"
    too_long = send(api, "POST", runs_path, {"Idempotency-Key": "k" * 201}, json={})
    assert "Idempotency-Key" in problem_fields(too_long)
    huge = api.post(runs_path, json={"input": {"blob": "x" * 1_000_001}})
    assert problem_fields(huge) == {"input"}
    assert len(ok(api.get("/runs", query_string={"workflow_id": wid}))["items"]) == 2


def test_engine_api_list_runs_filters_and_cursor(app, world, workers):
    api = as_key(app, world, "a_admin")
    good = publish_via_api(api, V1)
    bad = publish_via_api(api, FAILING)
    ids = [start_via_api(api, good["id"], {"name": str(i)})["id"] for i in range(3)]
    ids += [start_via_api(api, bad["id"])["id"] for _ in range(2)]
    hook = app.test_client().post(urlparse(good["webhook_url"]).path, json={"name": "hook"})
    assert hook.status_code == 202, hook.get_data(as_text=True)
    ids.append(hook.get_json()["run_id"])
    for run_id in ids:
        wait_run(api, run_id)

    def listed(**query) -> list[str]:
        return [r["id"] for r in ok(api.get("/runs", query_string=query))["items"]]

    assert sorted(listed(workflow_id=good["id"])) == sorted(ids[:3] + ids[5:])
    assert sorted(listed(workflow_id=bad["id"], status="failed")) == sorted(ids[3:5])
    assert listed(workflow_id=bad["id"], status="succeeded") == []
    assert sorted(listed(status="succeeded")) == sorted(ids[:3] + ids[5:])
    assert listed(trigger="webhook") == [ids[5]]
    assert sorted(listed(trigger="api", workflow_id=good["id"])) == sorted(ids[:3])
    assert "status" in problem_fields(api.get("/runs", query_string={"status": "sleeping"}))
    assert "workflow_id" in problem_fields(api.get("/runs",
                                                   query_string={"workflow_id": "nope"}))

    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        page = ok(api.get("/runs", query_string=query))
        seen += [r["id"] for r in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 2 and sorted(seen) == sorted(ids) and len(seen) == len(set(seen))


def test_engine_api_run_timeline_shows_every_step_run(app, world, workers):
    api = as_key(app, world, "a_admin")
    wid = publish_via_api(api, {"steps": [
        {"id": "fetch", "type": "transform", "output": {"n": "{{ input.n }}"}, "next": "risky"},
        {"id": "risky", "type": "transform", "output": "{{ input.nope.x }}",
         "on_error": "recover"},
        {"id": "recover", "type": "transform", "output": "recovered {{ steps.fetch.n }}"}]})["id"]
    run = wait_run(api, start_via_api(api, wid, {"n": 3})["id"])
    assert (run["status"], run["output"], run["version"]) == ("succeeded", "recovered 3", 1)
    assert run["trigger"] == "api" and run["steps_executed"] == 3
    assert run["started_at"] and run["finished_at"] and run["tokens"] == 0
    assert [(s["step_id"], s["status"]) for s in run["steps"]] == [
        ("fetch", "succeeded"), ("risky", "failed"), ("recover", "succeeded")]
    for step in run["steps"]:
        assert {"id", "step_id", "path", "type", "status", "attempt", "input", "output",
                "error", "started_at", "finished_at", "tokens", "cost"} <= set(step)
        assert step["attempt"] == 1 and step["type"] == "transform"
        assert step["started_at"] <= step["finished_at"]
        assert step["tokens"] == 0 and float(step["cost"]) == 0
    fetch, risky, recover = run["steps"]
    assert fetch["output"] == {"n": 3} and fetch["error"] is None
    assert risky["output"] is None
    assert risky["error"]["code"] == "expression" and risky["error"]["step"] == "risky"
    assert recover["input"]["error"]["step"] == "risky"


def test_engine_api_cancel_a_run(app, world, workers):
    api = as_key(app, world, "a_admin")
    wid = publish_via_api(api, {"steps": [
        {"id": "wait", "type": "delay", "seconds": 30, "next": "after"},
        {"id": "after", "type": "transform", "output": "too late"}]})["id"]
    run_id = start_via_api(api, wid)["id"]
    # Once the delay step has run once it sits queued until its time.
    wait_run(api, run_id, until=("running",))
    for _ in range(200):
        steps = ok(api.get(f"/runs/{run_id}"))["steps"]
        if steps and steps[0]["attempt"] >= 1 and steps[0]["status"] == "queued":
            break
        time.sleep(0.05)
    viewer = as_user(app, world, "a_viewer")
    assert viewer.post(f"/runs/{run_id}/cancel").status_code == 403
    cancelled = ok(as_user(app, world, "a_operator").post(f"/runs/{run_id}/cancel"))
    assert cancelled["status"] == "cancelled" and cancelled["error"]["code"] == "cancelled"
    run = ok(api.get(f"/runs/{run_id}"))
    assert [(s["step_id"], s["status"]) for s in run["steps"]] == [("wait", "cancelled")]
    assert api.post(f"/runs/{run_id}/cancel").status_code == 409


def test_engine_api_replay_from_a_step_reuses_earlier_outputs(app, world, workers):
    api = as_key(app, world, "a_admin")
    wid = publish_via_api(api, {"steps": [
        {"id": "first", "type": "transform", "output": "{{ run.id }}", "next": "second"},
        {"id": "second", "type": "transform", "output": "{{ run.id }}", "next": "third"},
        {"id": "third", "type": "transform",
         "output": {"first": "{{ steps.first }}", "second": "{{ steps.second }}",
                    "x": "{{ input.x }}"}}]})["id"]
    original = wait_run(api, start_via_api(api, wid, {"x": 7})["id"])
    assert original["output"] == {"first": original["id"], "second": original["id"], "x": 7}

    assert "from_step" in problem_fields(api.post(f"/runs/{original['id']}/replay",
                                                  json={"from_step": "nowhere"}))
    replay = ok(api.post(f"/runs/{original['id']}/replay", json={"from_step": "second"}), 202)
    assert replay["replay_of_id"] == original["id"] and replay["trigger"] == "replay"
    done = wait_run(api, replay["id"])
    # `first` was reused (it still names the original run), the rest ran again.
    assert done["output"] == {"first": original["id"], "second": replay["id"], "x": 7}
    assert [(s["step_id"], s["status"]) for s in done["steps"]] == [
        ("first", "skipped"), ("second", "succeeded"), ("third", "succeeded")]
    assert len(step_runs(done, "second")) == 1
    assert sorted(r["id"] for r in ok(api.get("/runs", query_string={
        "trigger": "replay"}))["items"]) == [replay["id"]]
