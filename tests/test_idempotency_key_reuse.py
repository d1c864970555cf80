"""An Idempotency-Key names one request: the same key with the same input gives the
first run again; with another input it is refused with a 422 problem
(`idempotency-key-reused`, as Stripe does) and starts nothing, through the API and
through webhooks (`-k idempotency`)."""

from __future__ import annotations

from urllib.parse import urlparse

from sqlalchemy import func, select

from overture.orchestration.models import Run
from overture.platform.db import db, scoped_to
from tests.engine_api_support import at_once, publish_via_api, send
from tests.support import as_key, unique

ECHO = {"steps": [{"id": "echo", "type": "transform", "output": {"n": "{{ input.n }}"}}]}
JSON = {"Content-Type": "application/json"}


def runs_of(world, workflow_id: str) -> int:
    with scoped_to(world.tenants["a"].id):
        count = db.session.scalar(select(func.count()).select_from(Run)
                                  .where(Run.workflow_id == workflow_id))
        db.session.rollback()
    return count


def reused(response, first_run_id: str) -> None:
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["type"] == "urn:overture:problem:idempotency-key-reused"
    assert problem["run_id"] == first_run_id
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert "different input" in problem["detail"]


def test_idempotency_key_reused_with_another_input_through_the_api(app, world):
    api = as_key(app, world, "a_admin")
    wid = publish_via_api(api, ECHO)["id"]
    path, key = f"/workflows/{wid}/runs", f"order-{unique()}"
    first = send(api, "POST", path, {**JSON, "Idempotency-Key": key},
                 data='{"input": {"n": 1, "tags": ["a", "b"], "who": {"x": 1, "y": 2}}}')
    assert first.status_code == 202, first.get_data(as_text=True)
    # The same input, keys in another order and spaced otherwise: the same request.
    same = send(api, "POST", path, {**JSON, "Idempotency-Key": key},
                data='{"input":{"who":{"y":2,"x":1},"tags":["a","b"],"n":1}}')
    assert same.status_code == 200 and same.get_json()["id"] == first.get_json()["id"]

    for other in ({"n": 2, "tags": ["a", "b"], "who": {"x": 1, "y": 2}},
                  {"n": 1, "tags": ["b", "a"], "who": {"x": 1, "y": 2}}, {}, [], "1"):
        reused(send(api, "POST", path, {"Idempotency-Key": key}, json={"input": other}),
               first.get_json()["id"])
    assert runs_of(world, wid) == 1

    # Two requests racing with one key and different inputs: one run, one refusal.
    raced = at_once(*[lambda n=n: send(as_key(app, world, "a_admin"), "POST", path,
                                       {"Idempotency-Key": key + "-race"},
                                       json={"input": {"n": n}}) for n in (1, 2)])
    assert sorted(r.status_code for r in raced) == [202, 422], [r.get_json() for r in raced]
    assert runs_of(world, wid) == 2


def test_idempotency_key_reused_with_another_body_through_a_webhook(app, world):
    workflow = publish_via_api(as_key(app, world, "a_admin"), ECHO)
    path, caller = urlparse(workflow["webhook_url"]).path, app.test_client()
    first = caller.post(path, json={"n": 1}, headers={"Idempotency-Key": "hook-1"})
    assert first.status_code == 202
    run_id = first.get_json()["run_id"]
    again = caller.post(path, data='{ "n" : 1 }', headers={**JSON, "Idempotency-Key": "hook-1"})
    assert again.get_json() == {"run_id": run_id, "status": "existing"}
    reused(caller.post(path, json={"n": 2}, headers={"Idempotency-Key": "hook-1"}), run_id)
    reused(caller.post(path, data=b"n=1", headers={"Content-Type": "text/plain",
                                                   "Idempotency-Key": "hook-1"}), run_id)
    # A new event under the reused key is refused whole: its id is not taken, so the
    # sender can deliver it again with a key of its own.
    reused(caller.post(path, json={"n": 3}, headers={"Idempotency-Key": "hook-1",
                                                     "X-Event-Id": "evt-3"}), run_id)
    assert runs_of(world, workflow["id"]) == 1
    fresh = caller.post(path, json={"n": 3}, headers={"Idempotency-Key": "hook-3",
                                                      "X-Event-Id": "evt-3"})
    assert fresh.get_json()["status"] == "queued"
    # An event redelivered with a changed body is still that event (no key was reused).
    redelivered = caller.post(path, json={"n": 3, "attempt": 2}, headers={"X-Event-Id": "evt-3"})
    assert redelivered.get_json() == {**fresh.get_json(), "status": "existing"}
    assert runs_of(world, workflow["id"]) == 2
