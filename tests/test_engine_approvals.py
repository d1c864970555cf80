"""Approval steps on real worker processes (`-k engine`): approved with edits, rejected
(with and without `on_reject`), timed out (approve, reject, escalate), decided twice at
the same moment, decided through the signed single-use link, and by the wrong role."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlparse

import pytest

from overture.orchestration import worker
from tests.engine_api_support import (
    at_once,
    audit_events,
    ok,
    publish_via_api,
    settle,
    start_via_api,
    step_runs,
    wait_approval,
    wait_run,
)
from tests.engine_support import running_workers
from tests.support import as_key, as_user


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


def refund_flow(**review: Any) -> dict[str, Any]:
    """prepare -> review (an approval; `amount` editable) -> pay, using the reviewed data."""
    return {"steps": [
        {"id": "prepare", "type": "transform", "next": "review",
         "output": {"amount": "{{ input.amount }}", "customer": "{{ input.customer }}"}},
        {"id": "review", "type": "approval", "next": "pay",
         "prompt": "Refund {{ input.amount }} to {{ input.customer }}?",
         "data": {"amount": "{{ steps.prepare.amount }}",
                  "customer": "{{ steps.prepare.customer }}"},
         "editable": ["amount"], "assignee": {"role": "operator"}, "timeout_seconds": 3600,
         **review},
        {"id": "pay", "type": "transform",
         "output": "paid {{ steps.review.data.amount }} to {{ steps.review.data.customer }} "
                   "({{ steps.review.decision }})"},
        {"id": "notify", "type": "transform", "output": "refused: {{ steps.review.note }}"},
    ]}


def started(api, definition: dict[str, Any], amount: int = 120) -> tuple[str, dict[str, Any]]:
    wid = publish_via_api(api, definition)["id"]
    run_id = start_via_api(api, wid, {"amount": amount, "customer": "acme"})["id"]
    return run_id, wait_approval(api, run_id)


def decide(api, approval: dict[str, Any], decision: str, **body: Any) -> Any:
    return api.post(f"/approvals/{approval['id']}/decision",
                    json={"decision": decision, **body})


def test_engine_approval_approved_with_edits_flows_on_and_is_audited(app, world, workers):
    admin = as_key(app, world, "a_admin")
    run_id, approval = started(admin, refund_flow())
    assert approval["prompt"] == "Refund 120 to acme?"
    assert approval["data"] == {"amount": 120, "customer": "acme"}
    assert (approval["assignee_role"], approval["editable_fields"]) == ("operator", ["amount"])
    waiting = ok(admin.get(f"/runs/{run_id}"))
    assert waiting["status"] == "running"
    assert [(s["step_id"], s["status"]) for s in waiting["steps"]][-1] == ("review", "waiting")

    operator = as_user(app, world, "a_operator")
    refused = decide(operator, approval, "approve", edits={"customer": "evil corp"})
    assert refused.status_code == 422  # only the editable fields may change
    decided = ok(decide(operator, approval, "approve", edits={"amount": 80}, note="partial"))
    assert decided["status"] == "approved" and decided["edited_values"] == {"amount": 80}
    assert decided["decided_by_id"] == str(world.users["a_operator"].id)

    run = wait_run(admin, run_id)
    assert (run["status"], run["output"]) == ("succeeded", "paid 80 to acme (approved)")
    review = step_runs(run, "review")[0]
    assert review["output"]["data"] == {"amount": 80, "customer": "acme"}
    events = [e for e in audit_events(world.tenants["a"].id, "approval.approved")
              if e["target_id"] == approval["id"]]
    assert len(events) == 1
    assert events[0]["details"]["edited"] == {"amount": 80}
    assert events[0]["details"]["note"] == "partial"
    assert events[0]["actor_id"] == str(world.users["a_operator"].id)
    assert decide(operator, approval, "reject").status_code == 409


def test_engine_approval_rejected_fails_the_run_or_follows_on_reject(app, world, workers):
    admin = as_key(app, world, "a_admin")
    plain_run, plain = started(admin, refund_flow())
    routed_run, routed = started(admin, refund_flow(on_reject="notify"))

    ok(decide(admin, plain, "reject", note="no"))
    failed = wait_run(admin, plain_run)
    assert failed["status"] == "failed" and failed["error"]["code"] == "rejected"
    assert failed["error"]["step"] == "review" and step_runs(failed, "pay") == []

    ok(decide(admin, routed, "reject", note="duplicate claim"))
    run = wait_run(admin, routed_run)
    assert (run["status"], run["output"]) == ("succeeded", "refused: duplicate claim")
    assert step_runs(run, "pay") == []
    assert len(audit_events(world.tenants["a"].id, "approval.rejected")) == 2


def sweep_until_decided(app, api, approval_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """Run the sweeper (as `overture scheduler` does) until the approval is no longer
    pending, or its assignee changes (escalated)."""
    deadline = time.monotonic() + timeout
    before = ok(api.get(f"/approvals/{approval_id}"))
    while True:
        with app.app_context():
            worker.sweep_all()
        now = ok(api.get(f"/approvals/{approval_id}"))
        if now["status"] != "pending" or now["assignee_role"] != before["assignee_role"]:
            return now
        assert time.monotonic() < deadline, f"approval {approval_id} never timed out"
        time.sleep(0.2)


def test_engine_approval_timeouts_approve_reject_or_escalate(app, world, workers):
    admin = as_key(app, world, "a_admin")
    runs = {action: started(admin, refund_flow(
        timeout_seconds=1 if action != "escalate" else 2, timeout_action=action,
        **({"escalate_to_role": "admin"} if action == "escalate" else {})))
        for action in ("approve", "reject", "escalate")}
    patient_run, patient = started(admin, refund_flow(timeout_action="approve"))

    # Escalated: handed to admins with a fresh deadline, still pending.
    escalated = sweep_until_decided(app, admin, runs["escalate"][1]["id"])
    assert (escalated["status"], escalated["assignee_role"]) == ("pending", "admin")
    assert escalated["timeout_action"] == "reject"
    assert escalated["deadline_at"] > runs["escalate"][1]["deadline_at"]
    # The operator it was first assigned to may no longer decide; an admin may.
    assert decide(as_user(app, world, "a_operator"), escalated, "approve").status_code == 403
    ok(decide(admin, escalated, "approve"))
    assert len(audit_events(world.tenants["a"].id, "approval.escalated")) == 1
    run = wait_run(admin, runs["escalate"][0])
    assert (run["status"], run["output"]) == ("succeeded", "paid 120 to acme (approved)")

    approved = sweep_until_decided(app, admin, runs["approve"][1]["id"])
    assert approved["status"] == "approved" and approved["decided_by_id"] is None
    run = wait_run(admin, runs["approve"][0])
    assert (run["status"], run["output"]) == ("succeeded", "paid 120 to acme (approved)")

    rejected = sweep_until_decided(app, admin, runs["reject"][1]["id"])
    assert rejected["status"] == "rejected"
    run = wait_run(admin, runs["reject"][0])
    assert run["status"] == "failed" and run["error"]["code"] == "rejected"
    timeouts = [e["details"] for e in audit_events(world.tenants["a"].id, "approval.approved")
                + audit_events(world.tenants["a"].id, "approval.rejected")
                if e["details"]["via"] == "timeout"]
    assert len(timeouts) == 2

    # Nothing happens to an approval before its deadline (an hour), however often swept.
    assert ok(admin.get(f"/approvals/{patient['id']}"))["status"] == "pending"
    assert ok(admin.get(f"/runs/{patient_run}"))["status"] == "running"


def test_engine_approval_double_click_resumes_exactly_once(app, world, workers):
    admin = as_key(app, world, "a_admin")
    for attempt in range(3):  # a few rounds: the two requests really do collide
        run_id, approval = started(admin, refund_flow())
        callers = [as_user(app, world, "a_operator"), as_user(app, world, "a_admin")]
        answers = at_once(*[lambda c=c, a=approval: decide(c, a, "approve") for c in callers])
        assert sorted(r.status_code for r in answers) == [200, 409], attempt
        run = wait_run(admin, run_id)
        assert run["status"] == "succeeded"
        assert len(step_runs(run, "pay")) == 1
        assert len(step_runs(run, "review")) == 1
        assert [e for e in audit_events(world.tenants["a"].id, "approval.approved")
                if e["target_id"] == approval["id"]].__len__() == 1


def test_engine_approval_signed_link_decides_once(app, world, workers):
    admin = as_key(app, world, "a_admin")
    run_id, approval = started(admin, refund_flow())
    viewer = as_user(app, world, "a_viewer")
    assert viewer.post(f"/approvals/{approval['id']}/link").status_code == 403
    url = ok(admin.post(f"/approvals/{approval['id']}/link"))["url"]
    path = urlparse(url).path
    browser = app.test_client()

    page = browser.get(path)  # what a mail scanner's prefetch does
    assert page.status_code == 200
    assert "Refund 120 to acme?" in page.get_data(as_text=True)
    assert ok(admin.get(f"/approvals/{approval['id']}"))["status"] == "pending"
    assert ok(admin.get(f"/runs/{run_id}"))["status"] == "running"

    token = path.rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert browser.post(f"/approve/{tampered}", data={"decision": "approve"}).status_code == 404
    assert browser.get("/approve/not-a-token").status_code == 404

    decided = browser.post(path, data={"decision": "approve", "note": "by mail"})
    assert decided.status_code == 200 and "approved" in decided.get_data(as_text=True)
    again = app.test_client().post(path, data={"decision": "reject"})
    assert again.status_code == 409
    assert ok(admin.get(f"/approvals/{approval['id']}"))["status"] == "approved"
    run = wait_run(admin, run_id)
    assert run["status"] == "succeeded" and len(step_runs(run, "pay")) == 1
    events = [e for e in audit_events(world.tenants["a"].id, "approval.approved")
              if e["target_id"] == approval["id"]]
    assert [e["details"]["via"] for e in events] == ["link"]
    # Still readable afterwards, and it says the link is spent.
    assert "cannot be used again" in browser.get(path).get_data(as_text=True)
    # The links of a suspended workspace rest with it.
    agency = as_key(app, world, "nw_admin")
    assert agency.post(f"/tenants/{world.tid('a')}/suspend").status_code == 200
    assert browser.get(path).status_code == 404


def test_engine_approval_assigned_role_refuses_weaker_roles(app, world, workers):
    admin = as_key(app, world, "a_admin")
    run_id, approval = started(admin, refund_flow(assignee={"role": "admin"}))
    operator = as_user(app, world, "a_operator")
    assert decide(operator, approval, "approve").status_code == 403
    # ... nor hand out a link that would decide it for them.
    assert operator.post(f"/approvals/{approval['id']}/link").status_code == 403
    assert decide(as_user(app, world, "a_builder"), approval, "approve").status_code == 403
    assert decide(as_user(app, world, "a_viewer"), approval, "approve").status_code == 403
    assert decide(as_key(app, world, "b_admin"), approval, "approve").status_code == 404
    assert ok(admin.get(f"/approvals/{approval['id']}"))["status"] == "pending"
    ok(decide(as_user(app, world, "a_owner"), approval, "approve"))
    assert wait_run(admin, run_id)["status"] == "succeeded"
