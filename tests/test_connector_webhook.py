"""The Webhook trigger: a call that names its event starts one run per event, however
often (and however concurrently) the sender delivers it (`-k connector`)."""

from __future__ import annotations

import threading
from urllib.parse import urlparse

from sqlalchemy import select

from overture.connectors.models import TriggerEvent
from overture.orchestration.models import Run
from overture.platform.db import db, scoped_to
from tests.engine_api_support import ok, publish_via_api
from tests.support import as_key, as_user

ECHO = {"steps": [{"id": "echo", "type": "transform", "output": {"n": "{{ input.n }}"}}]}


def runs_and_events(world, workflow_id):
    with scoped_to(world.tenants["a"].id):
        runs = db.session.scalars(select(Run).where(Run.workflow_id == workflow_id)).all()
        events = db.session.scalars(select(TriggerEvent)).all()
        out = ({str(r.id): r.input for r in runs},
               {e.dedupe_key: str(e.run_id) for e in events})
        db.session.rollback()
    return out


def test_connector_webhook_same_event_id_starts_one_run(app, world):
    admin = as_key(app, world, "a_admin")
    workflow = publish_via_api(admin, ECHO)
    path, caller = urlparse(workflow["webhook_url"]).path, app.test_client()

    first = caller.post(path, json={"n": 1}, headers={"X-Event-Id": "evt-1"})
    again = caller.post(path, json={"n": 1}, headers={"x-event-id": "evt-1"})
    assert first.status_code == again.status_code == 202
    assert first.get_json()["status"] == "queued" and again.get_json()["status"] == "existing"
    assert again.get_json()["run_id"] == first.get_json()["run_id"]

    # Other spellings of an event id: the Standard Webhooks header, a body field.
    other = caller.post(path, json={"n": 2}, headers={"webhook-id": "msg_2"})
    body_id = caller.post(path, json={"n": 3, "event_id": "e-3"})
    body_again = caller.post(path, json={"n": 3, "event_id": "e-3"})
    assert body_again.get_json()["run_id"] == body_id.get_json()["run_id"]
    # A call that names no event is not deduplicated (as before).
    plain = [caller.post(path, json={"n": 4}).get_json()["run_id"] for _ in range(2)]
    assert plain[0] != plain[1]

    runs, events = runs_and_events(world, workflow["id"])
    assert len(runs) == 5
    # One namespace of delivery ids, whichever header or body field named it.
    assert events == {"id:evt-1": first.get_json()["run_id"],
                      "id:msg_2": other.get_json()["run_id"],
                      "id:e-3": body_id.get_json()["run_id"]}
    listed = ok(admin.get("/connectors/webhook"))
    assert listed["triggers"][0]["kind"] == "webhook"


def test_connector_webhook_concurrent_deliveries_start_one_run(app, world):
    workflow = publish_via_api(as_key(app, world, "a_admin"), ECHO)
    path = urlparse(workflow["webhook_url"]).path
    answers, barrier = [], threading.Barrier(6)

    def deliver():
        client = app.test_client()
        barrier.wait(10)
        r = client.post(path, json={"n": 9}, headers={"X-GitHub-Delivery": "d-9"})
        answers.append((r.status_code, r.get_json()))

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [status for status, _ in answers] == [202] * 6, answers
    assert len({body["run_id"] for _, body in answers}) == 1
    assert sorted(body["status"] for _, body in answers) == ["existing"] * 5 + ["queued"]
    runs, events = runs_and_events(world, workflow["id"])
    assert len(runs) == 1 and list(events) == ["id:d-9"]
    # The same event id in another workflow is another event.
    second = publish_via_api(as_user(app, world, "a_admin"), ECHO)
    r = app.test_client().post(urlparse(second["webhook_url"]).path, json={"n": 9},
                               headers={"X-GitHub-Delivery": "d-9"})
    assert r.get_json()["status"] == "queued"
