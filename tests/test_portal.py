"""The end customer's portal over HTTP (`-k portal`): who gets in (portal users of the
workspace, by password or emailed link, never staff nor another workspace's people),
the form made from a workflow's input schema (messages beside the fields), their own
runs only, the approvals assigned to them, a chat answered as server-sent events,
their data as JSON, and that nothing internal (other steps, step inputs, errors,
connector responses, costs, other customers) reaches them. Runs execute on real
worker processes."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from typing import Any

import pytest
from flask import g
from sqlalchemy import select

from overture.billing import meters, reports
from overture.orchestration import runs, workflows
from overture.orchestration.agents.models import ConversationMessage
from overture.orchestration.models import Run
from overture.orchestration.portal import publishing
from overture.platform.db import db, scoped_to
from tests.brand_support import png, upload
from tests.engine_api_support import ok, settle
from tests.engine_support import running_workers
from tests.portal_support import (
    HTML,
    PORTAL,
    REFUND,
    SECRET,
    Customer,
    customer,
    set_up,
    sign_in,
    sse,
    text,
)
from tests.recovery_support import link_in, mails, outbox  # noqa: F401  (fixture)
from tests.support import PASSWORD, as_key, as_user

GOOD = {"f_order": "1042", "f_reason": "damaged", "f_amount": "120",
        "f_email": "ada@example.com", "f_gift": "on"}


@pytest.fixture(scope="module")
def workers(settings):
    with running_workers(settings, processes=1, threads=4) as worker_process:
        yield worker_process


@pytest.fixture(autouse=True)
def _settled(world):
    yield
    settle([world.tenants[t].id for t in ("a", "b", "c")])


def run_row(world: Any, run_id: Any) -> Run:
    with scoped_to(world.tenants["a"].id):
        run = db.session.get(Run, run_id, populate_existing=True)
        db.session.expunge(run)
        db.session.rollback()
    return run


def wait_page(person: Any, path: str, words: str, timeout: float = 30.0) -> Any:
    """The page once it says `words` (a run moves on in a worker process meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        response = person.get(path)
        if words in text(response):
            return response
        assert time.monotonic() < deadline, (path, words, text(response))
        time.sleep(0.1)


def run_id_of(response: Any) -> str:
    return response.headers["Location"].rsplit("/", 1)[1]


# --------------------------------------------------------------------------- who gets in


def test_the_portal_asks_for_sign_in_and_lets_in_its_customers_only(app, world):
    set_up(world)
    anonymous = app.test_client()
    asked = anonymous.get(PORTAL + "/runs", headers=HTML)
    assert asked.status_code == 302
    assert asked.headers["Location"] == PORTAL + "/login?next=/portal/ws-a/runs"
    assert anonymous.get("/portal/no-such-workspace/login", headers=HTML).status_code == 404
    assert anonymous.get("/portal/platform/login", headers=HTML).status_code == 404

    member = sign_in(app, world)
    home = member.get("/")
    assert home.status_code == 200
    assert "Request a refund" in text(home) and "Help desk" in text(home)

    # Staff hold other roles: the portal is not theirs (they use the console).
    staff = sign_in_anyway(app, world, "a_admin")
    refused = staff.get("/")
    assert refused.status_code == 403 and "staff use the console" in text(refused)
    # Someone of another workspace is not a customer here.
    stranger = sign_in_anyway(app, world, "b_owner")
    refused = stranger.get("/")
    assert refused.status_code == 403 and "who is not a customer here" in text(refused)
    assert stranger.get("/runs").status_code == 403


def sign_in_anyway(app: Any, world: Any, handle: str) -> Any:
    """Sign in on the portal's page as someone who then is refused its pages."""
    person = Customer(app.test_client())
    person.get("/login")
    assert person.post("/login", {"email": world.users[handle].email,
                                  "password": PASSWORD}).status_code == 302
    return person


def test_a_wrong_password_is_refused_on_the_portal_page(app, world):
    person = Customer(app.test_client())
    person.get("/login")
    refused = person.post("/login", {"email": world.users["a_member"].email,
                                     "password": "not the password"})
    assert refused.status_code == 401 and "Invalid email or password." in text(refused)
    assert person.get("/").status_code == 302


@pytest.mark.usefixtures("outbox")
def test_an_emailed_link_signs_a_customer_in_to_the_portal(app, world):
    user = world.users["a_member"]
    person = Customer(app.test_client())
    person.get("/login/link")
    asked = person.post("/login/link", {"email": user.email})
    assert asked.status_code == 200 and "we have sent a link" in text(asked)
    [message] = mails(user.email)
    path = link_in(message)
    assert re.fullmatch(r"/portal/ws-a/login/link/[\w-]+", path), path
    shown = person.client.get(path, headers=HTML)
    assert shown.status_code == 200 and f"Sign in as {user.email}" in text(shown)
    person.csrf = re.search(r'name="csrf_token" value="([^"]+)"',
                            shown.get_data(as_text=True)).group(1)
    signed_in = person.client.post(path, data={"csrf_token": person.csrf}, headers=HTML)
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == PORTAL + "/"
    assert person.get("/").status_code == 200
    again = person.client.post(path, data={"csrf_token": person.csrf}, headers=HTML)
    assert again.status_code == 410 and "This link cannot be used" in text(again)


def test_signing_out_ends_the_session(app, world):
    member = sign_in(app, world)
    out = member.post("/logout")
    assert out.status_code == 302 and out.headers["Location"] == PORTAL + "/login"
    assert member.get("/").status_code == 302


def test_a_portal_user_gets_403_on_every_console_page_and_the_api(app, world):
    member = sign_in(app, world)
    for path in ("/", "/workflows", "/runs", "/approvals", "/agents", "/profile",
                 "/portal-settings", "/members", "/settings"):
        response = member.client.get(path, headers=HTML)
        assert response.status_code == 403, (path, response.status_code)
        assert "staff" in text(response)
    for path in ("/me", "/me/sessions", "/workflows", "/runs", "/portal/publications"):
        response = member.client.get("/api/v1" + path)
        assert response.status_code == 403, (path, response.get_json())
        assert response.get_json()["type"] == "urn:overture:problem:forbidden"
    forged = member.client.post("/api/v1/workflows", json={"name": "x"},
                                headers={"X-CSRFToken": member.csrf})
    assert forged.status_code == 403


def test_a_custom_domain_serves_only_its_own_tenants_portal(app, world):
    """The domains part sets `g.host_tenant_id` for a verified domain: a slug of
    another tenant is not found there."""
    set_up(world)
    host = {"id": None}

    def pretend_domain() -> None:
        g.host_tenant_id = host["id"]

    # Last of the app's own hooks: after the one that reads the real Host, before the
    # portal's, which looks the workspace up.
    app.before_request_funcs.setdefault(None, []).append(pretend_domain)
    try:
        member = sign_in(app, world)
        host["id"] = world.tenants["b"].id
        assert member.get("/").status_code == 404
        assert member.get("/login").status_code == 404
        host["id"] = world.tenants["a"].id
        assert member.get("/").status_code == 200
    finally:
        app.before_request_funcs[None].remove(pretend_domain)


# --------------------------------------------------------------------------- starting a run


def test_the_form_comes_from_the_input_schema_and_says_what_is_wrong(app, world):
    portal = set_up(world)
    member = sign_in(app, world)
    form = member.get(f"/start/{portal.workflow_id}")
    html = form.get_data(as_text=True)
    assert form.status_code == 200
    for label in ("Order number", "Reason", "Amount (EUR)", "Email for the receipt",
                  "It was a gift"):
        assert label in html
    assert 'type="number"' in html and 'type="email"' in html and 'type="checkbox"' in html
    assert "<select" in html and "the four digits on your receipt" in html

    refused = member.post(f"/start/{portal.workflow_id}", {
        "f_order": "10x2", "f_amount": "many", "f_email": "not-an-address"})
    page = text(refused)
    assert refused.status_code == 422
    assert "Please check the fields marked below." in page
    # Each message beside its field, all at once.
    assert "the four digits on your receipt Is not in the expected format." in page
    assert "Reason * Choose… damaged late other Is required." in page
    assert "Amount (EUR) Must be a whole number." in page
    assert "Email for the receipt Must be a valid email." in page
    assert refused.get_data(as_text=True).count('aria-invalid="true"') == 4
    assert 'value="10x2"' in refused.get_data(as_text=True)  # what was typed stays

    refused = member.post(f"/start/{portal.workflow_id}", {**GOOD, "f_amount": "900"})
    assert refused.status_code == 422
    assert "Amount (EUR) Must be at most 500." in text(refused)
    with scoped_to(world.tenants["a"].id):
        assert db.session.scalars(select(Run)).all() == []
        db.session.rollback()

    started = member.post(f"/start/{portal.workflow_id}", GOOD)
    assert started.status_code == 302
    run = run_row(world, run_id_of(started))
    assert (run.trigger, run.started_by_id) == ("portal", world.users["a_member"].id)
    assert run.input == {"order": "1042", "reason": "damaged", "amount": 120,
                         "email": "ada@example.com", "gift": True}


def test_unpublished_and_unknown_workflows_are_not_found(app, world):
    portal = set_up(world)
    with scoped_to(world.tenants["a"].id):
        other = workflows.create_workflow("internal", draft={"steps": [
            {"id": "x", "type": "transform", "output": 1}]})
        workflows.publish(other, None)
        db.session.commit()
    member = sign_in(app, world)
    assert member.get(f"/start/{other.id}").status_code == 404
    assert member.post(f"/start/{other.id}", {}).status_code == 404
    assert member.get("/start/not-an-id").status_code == 404
    builder = as_user(app, world, "a_builder")
    assert builder.put(f"/portal/workflows/{portal.workflow_id}",
                       json={"published": False}).status_code == 200
    assert member.get(f"/start/{portal.workflow_id}").status_code == 404
    assert "Request a refund" not in text(member.get("/"))


def test_the_api_refuses_an_input_that_breaks_the_schema(app, world):
    portal = set_up(world)
    operator = as_user(app, world, "a_operator")
    refused = operator.post(f"/workflows/{portal.workflow_id}/runs",
                            json={"input": {"order": "12"}})
    assert refused.status_code == 422
    fields = {e["field"]: e["message"] for e in refused.get_json()["errors"]}
    assert fields == {"input.order": "is not in the expected format",
                      "input.reason": "is required"}


# --------------------------------------------------------------------------- their runs


def start_refund(member: Any, portal: Any, order: str = "1042") -> str:
    started = member.post(f"/start/{portal.workflow_id}", {**GOOD, "f_order": order})
    assert started.status_code == 302, text(started)
    return run_id_of(started)


def test_a_customer_follows_their_run_answers_its_approval_and_sees_it_finish(
        app, world, workers):
    portal = set_up(world)
    member = sign_in(app, world)
    run_id = start_refund(member, portal)

    page = member.get(f"/runs/{run_id}")
    assert page.status_code == 200 and "Request a refund" in text(page)
    live = member.get(f"/runs/{run_id}/live")
    assert 'hx-trigger="every 2s"' in live.get_data(as_text=True)  # polled while it goes on

    waiting = wait_page(member, f"/runs/{run_id}/live", "Your answer is needed")
    assert "Your request" in text(waiting) and "1042" in text(waiting)
    approvals = member.get("/approvals")
    assert "Refund order 1042?" in text(approvals)
    assert "Approvals 1 waiting" in text(member.get("/"))

    # Another customer of the same workspace sees neither the run nor the approval.
    other = sign_in(app, world, handle_of(customer(world)))
    assert other.get(f"/runs/{run_id}").status_code == 404
    assert other.get(f"/runs/{run_id}/live").status_code == 404
    assert "Refund order 1042?" not in text(other.get("/approvals"))
    approval_id = re.search(r"/approvals/([0-9a-f-]{36})",
                            approvals.get_data(as_text=True)).group(1)
    assert other.post(f"/approvals/{approval_id}", {"decision": "approve"}).status_code == 404

    decided = member.post(f"/approvals/{approval_id}", {"decision": "approve",
                                                        "note": "Thanks, that is right."})
    assert decided.status_code == 302
    assert "Approved. Thank you." in text(member.get("/approvals"))
    again = member.post(f"/approvals/{approval_id}", {"decision": "reject"})
    assert again.status_code == 409 and "already answered" in text(again)

    done = wait_page(member, f"/runs/{run_id}/live", "Status: Done")
    assert "hx-trigger" not in done.get_data(as_text=True)  # polling stops
    assert "Refund for order 1042 is on its way." in text(done)
    run = run_row(world, run_id)
    assert run.status == "succeeded"
    with scoped_to(world.tenants["a"].id):
        decision = runs.timeline(runs.get_run(run_id))[2].output
        db.session.rollback()
    assert decision["decided_by"] == str(world.users["a_member"].id)
    assert decision["note"] == "Thanks, that is right."

    listed = member.get("/runs")
    assert "Request a refund" in text(listed) and "Done" in text(listed)
    assert run_id not in other.get("/runs").get_data(as_text=True)


def handle_of(user: Any) -> str:
    return user.name


def test_nothing_internal_reaches_a_customer(app, world, workers):
    """Only the chosen step's output and the final output: never the hidden step's
    output, a step's input, an error, the cost, or another customer's data."""
    failing = {"input_schema": REFUND["input_schema"], "steps": [
        {"id": "lookup", "type": "transform", "output": {"token": SECRET}, "next": "check"},
        {"id": "check", "type": "stop", "status": "failed",
         "error": {"code": "crm_down", "message": f"CRM answered 503 with key {SECRET}"}}]}
    portal = set_up(world)
    with scoped_to(world.tenants["a"].id, user_id=world.users["a_builder"].id):
        broken = workflows.create_workflow("broken", draft=failing)
        workflows.publish(broken, None)
        publishing.set_workflow(broken, publishing.Settings(
            published=True, label="Broken", visible_steps=["check"], show_output=True), None)
        db.session.commit()
    member = sign_in(app, world)
    other = sign_in(app, world, handle_of(customer(world)))
    theirs = start_refund(other, portal, order="7777")
    ok_run = start_refund(member, portal)
    bad_started = member.post(f"/start/{broken.id}", GOOD)
    bad_run = run_id_of(bad_started)
    wait_page(member, f"/runs/{ok_run}/live", "Your answer is needed")
    failed = wait_page(member, f"/runs/{bad_run}/live", "Could not be completed")
    assert "This could not be completed." in text(failed)

    pages = [member.get(p) for p in ("/", "/runs", f"/runs/{ok_run}", f"/runs/{ok_run}/live",
                                     f"/runs/{bad_run}", "/approvals")]
    exported = member.client.get(PORTAL + "/my-data")
    assert exported.status_code == 200
    assert exported.headers["Content-Disposition"].startswith('attachment; filename="my-data-')
    data = exported.get_json()
    bodies = [p.get_data(as_text=True) for p in pages] + [exported.get_data(as_text=True)]
    for body in bodies:
        assert SECRET not in body
        assert "customer_tier" not in body and "CRM lookup" not in body  # the hidden step
        assert "crm_down" not in body and "CRM answered" not in body  # the error
        assert "7777" not in body  # the other customer's order
        for internal in ("cost", "tokens", "\"input\": {\"token", "step_type", "attempt",
                         "idempotency", "lease_until"):
            assert internal not in body, internal
    assert [r["id"] for r in data["runs"]] == [bad_run, ok_run]
    assert set(data["runs"][1]) == {"id", "workflow_id", "label", "status", "created_at",
                                    "finished_at", "steps", "waiting_for_you", "input"}
    assert data["runs"][1]["steps"] == [{"step": "summary", "name": "Your request",
                                         "status": "succeeded",
                                         "output": {"order": "1042", "reason": "damaged"}}]
    assert data["runs"][1]["input"]["order"] == "1042"  # what they sent is theirs
    assert data["runs"][0]["status"] == "failed" and "output" not in data["runs"][0]
    assert data["account"]["email"] == world.users["a_member"].email
    assert theirs not in json.dumps(data)


# --------------------------------------------------------------------------- chat


def test_a_chat_answer_arrives_as_server_sent_events_and_is_kept(app, world):
    portal = set_up(world)
    member = sign_in(app, world)
    page = member.get(f"/chat/{portal.agent_id}")
    assert page.status_code == 200 and "Ask a question to start." in text(page)

    answered = member.post(f"/chat/{portal.agent_id}", {"content": "I want a refund"},
                           headers={"Accept": "text/event-stream"})
    assert answered.status_code == 200
    assert answered.mimetype == "text/event-stream"
    events = sse(answered)
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert len(deltas) > 3  # in pieces, as written
    answer = "Refunds take 3 to 5 days. Which order is it?"
    assert "".join(deltas) == answer
    assert events[-1] == ("done", {"message": answer})

    again = member.get(f"/chat/{portal.agent_id}")
    assert "I want a refund" in text(again) and answer in text(again)
    # Kept server-side, per customer and agent: another customer starts afresh.
    other = sign_in(app, world, handle_of(customer(world)))
    assert "I want a refund" not in text(other.get(f"/chat/{portal.agent_id}"))

    # Without the page's script the form posts and the page shows the answer.
    posted = member.post(f"/chat/{portal.agent_id}", {"content": "refund again"})
    assert posted.status_code == 302
    with scoped_to(world.tenants["a"].id):
        stored = db.session.scalars(select(ConversationMessage.content)
                                    .order_by(ConversationMessage.id)).all()
        db.session.rollback()
    assert stored == ["I want a refund", answer, "refund again", answer]


def test_a_failing_agent_says_so_without_its_details(app, world):
    broken = {"name": "desk", "model": {"provider": "scripted", "model": "script"},
              "script": [{"when": "busy", "error": "rate_limited"}],
              "limits": {"max_iterations": 1}}
    portal = set_up(world, agent=broken)
    member = sign_in(app, world)
    for content, said in (("are you busy", "The assistant is busy right now."),
                          ("anything else", "The assistant could not answer this time.")):
        answered = member.post(f"/chat/{portal.agent_id}", {"content": content},
                               headers={"Accept": "text/event-stream"})
        [(name, data)] = [e for e in sse(answered) if e[0] != "delta"]
        assert name == "error" and data["message"].startswith(said)
        assert "script" not in answered.get_data(as_text=True)
    empty = member.post(f"/chat/{portal.agent_id}", {"content": "  "},
                        headers={"Accept": "text/event-stream"})
    assert empty.status_code == 422 and sse(empty) == [("error",
                                                        {"message": "Type a message first."})]


def test_an_unpublished_agent_is_not_found(app, world):
    portal = set_up(world)
    member = sign_in(app, world)
    builder = as_user(app, world, "a_builder")
    assert builder.put(f"/portal/agents/{portal.agent_id}",
                       json={"published": False}).status_code == 200
    assert member.get(f"/chat/{portal.agent_id}").status_code == 404
    assert member.post(f"/chat/{portal.agent_id}", {"content": "refund"},
                       headers={"Accept": "text/event-stream"}).status_code == 404


def test_an_invited_customer_lands_in_the_portal(app, world):
    from tests.test_invitations import GOOD as STRONG
    from tests.test_invitations import form_csrf, invite, link_for

    set_up(world)
    invite(as_user(app, world, "a_admin"), "new.customer@example.com", "member")
    link = link_for("new.customer@example.com")
    client = app.test_client()
    token = form_csrf(client.get(link))
    done = client.post(link, data={"csrf_token": token, "name": "Cleo", "password": STRONG,
                                   "confirm": STRONG})
    assert done.status_code == 302 and done.headers["Location"] == PORTAL + "/"
    home = client.get(PORTAL + "/", headers=HTML)
    assert home.status_code == 200 and "Hello Cleo" in text(home)


def test_the_portal_is_in_the_workspaces_brand(app, world):
    """The portal shows the workspace's brand (over its agency's) the way every page
    does: `brand_css` in the page's one inline style, allowed by its hash and by nothing
    broader, and the names and links of the frame; with white-label on nothing says
    "Overture". There is no separate brand stylesheet."""
    set_up(world)
    member = sign_in(app, world)
    plain = member.get("/").get_data(as_text=True)
    assert "<title>Home · Workspace A · Overture</title>" in plain
    assert "<style>:root{--brand-primary:#3451d1;" in plain  # the platform's

    brand = as_key(app, world, "nw_admin").patch("/brand", json={
        "product_name": "Acme Care", "white_label": True, "support_email": "help@acme.example",
        "legal_footer": "Acme Ltd, 1 Main St"})
    assert brand.status_code == 200, brand.get_data(as_text=True)
    workspace = as_key(app, world, "a_admin")
    assert workspace.patch("/brand", json={"primary": "#0b6e4f", "font": "open-sans"}
                           ).status_code == 200
    assert upload(workspace, "favicon", png(32, 32)).status_code == 200
    favicon = ok(workspace.get("/brand"))["effective"]["favicon_url"]

    for path in ("/", "/runs", f"/runs/{uuid.uuid4()}", "/login"):
        page = member.get(path) if path != "/login" else app.test_client().get(
            PORTAL + "/login", headers=HTML)
        html = page.get_data(as_text=True)
        assert page.status_code in (200, 404), (path, page.status_code)
        (css,) = re.findall(r"<style>(.*?)</style>", html, re.S)
        assert css.startswith(":root{--brand-primary:#0b6e4f;") and '"Open Sans"' in css, path
        digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
        assert f"style-src 'self' 'sha256-{digest}';" in page.headers["Content-Security-Policy"]
        assert f'rel="icon" href="{favicon}"' in html, path
        assert "help@acme.example" in html and "Acme Ltd, 1 Main St" in html, path
        assert "overture" not in html.lower(), path
        assert "brand.css" not in html, path
    assert "<title>Home · Workspace A · Acme Care</title>" in member.get("/").get_data(
        as_text=True)
    assert member.get("/brand.css").status_code == 404


def test_each_customer_who_uses_the_portal_counts_once_a_month(app, world):
    """The `portal_active_users` meter: a customer signed in twice and visiting several
    pages is one active user this month; a second customer makes two."""
    set_up(world)
    customer(world)
    first = sign_in(app, world)
    first.get("/runs")
    sign_in(app, world).get("/")  # the same person again, in another session
    with scoped_to(world.tenants["a"].id):
        assert reports.month_total(meters.PORTAL_USERS) == 1
    sign_in(app, world, "a_member2")
    with scoped_to(world.tenants["a"].id):
        assert reports.month_total(meters.PORTAL_USERS) == 2
    with scoped_to(world.tenants["b"].id):
        assert reports.month_total(meters.PORTAL_USERS) == 0
