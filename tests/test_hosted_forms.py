"""Hosted forms (`-k hosted_form`): a form trigger's public page, made from the input
schema of the workflow's published version, on the workspace's portal and its domain,
in its brand. A valid submission starts one run (trigger `form`), however often the
same page is sent; a refused one keeps what was typed and says what is wrong beside
each field; a forged post, a filled honeypot, a flood, another tenant's host, a closed
or deleted form, an unpublished workflow and a workspace past its limits start nothing,
each with a page that says so (never a 500)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import select

from overture.billing import policy_cache, standing
from overture.orchestration import workflows
from overture.platform.db import db, scoped_to, utcnow
from tests.console_support import browse, page_text
from tests.dns_server import Zone
from tests.domain_support import add_verified
from tests.engine_api_support import audit_events, ok, publish_via_api
from tests.portal_support import REFUND_SCHEMA
from tests.support import as_key

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SUBMISSION_RE = re.compile(r'name="submission" value="([^"]+)"')
FORM_DEF = {"input_schema": REFUND_SCHEMA,
            "steps": [{"id": "ack", "type": "transform",
                       "output": {"order": "{{ input.order }}"}}]}
GOOD = {"f_order": "1042", "f_reason": "damaged", "f_amount": "120",
        "f_email": "ada@example.com", "f_gift": "on"}
HOST, OTHER = "forms.acme.example", "forms.bravo.example"


def make_form(app: Any, world: Any, definition: dict[str, Any] | None = None,
              publish: bool = True, **settings: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A workflow of workspace A with a hosted form: (workflow, form as the API shows it)."""
    admin = as_key(app, world, "a_admin")
    if publish:
        workflow = publish_via_api(admin, definition or FORM_DEF)
    else:
        workflow = ok(admin.post("/workflows", json={"name": "draft only",
                                                     "definition": definition or FORM_DEF}),
                      201)
    body = {"title": "Request a refund", "description": "We check your order and pay back.",
            "success_message": "Thanks! We will write within two days.", **settings}
    form = ok(admin.post(f"/workflows/{workflow['id']}/form-triggers", json=body), 201)
    return workflow, form


class Visitor:
    """Someone on the form's page: a browser-like client (its own session) for one host."""

    def __init__(self, app: Any, host: str | None = None, address: str = "127.0.0.1") -> None:
        self.client = app.test_client()
        self.base_url = f"http://{host}" if host else "http://localhost"
        self.environ = {"REMOTE_ADDR": address}
        self.csrf = self.submission = ""

    def get(self, path: str) -> Any:
        response = self.client.get(path, headers=HTML, base_url=self.base_url,
                                   environ_base=self.environ)
        html = response.get_data(as_text=True)
        if (found := CSRF_RE.search(html)) is not None:
            self.csrf = found.group(1)
        if (found := SUBMISSION_RE.search(html)) is not None:
            self.submission = found.group(1)
        return response

    def post(self, path: str, data: dict[str, str], csrf: str | None = None,
             submission: str | None = None) -> Any:
        body = {"csrf_token": self.csrf if csrf is None else csrf,
                "submission": self.submission if submission is None else submission, **data}
        return self.client.post(path, data=body, headers=HTML, base_url=self.base_url,
                                environ_base=self.environ)


def path_of(form: dict[str, Any]) -> str:
    return urlparse(form["url"]).path


def form_runs(app: Any, world: Any, workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return ok(as_key(app, world, "a_admin").get("/runs", query_string={
        "workflow_id": workflow["id"], "limit": 200}))["items"]


# --------------------------------------------------------------------------- the page


def test_hosted_form_renders_the_schemas_fields_in_the_workspaces_brand(app, world):
    assert as_key(app, world, "a_admin").patch(
        "/brand", json={"product_name": "Acme Refunds", "primary": "#0f766e"}).status_code == 200
    _, form = make_form(app, world)
    assert form["url"].startswith("http") and "/portal/ws-a/forms/" in form["url"]
    assert form["enabled"] and form["honeypot"] and form["submissions"] == 0

    visitor = Visitor(app)
    page = visitor.get(path_of(form))
    assert page.status_code == 200, page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    html, words = page.get_data(as_text=True), page_text(page)
    assert "Request a refund" in words and "We check your order and pay back." in words
    # Fields from the schema: labels, required markers, help text, kinds of control.
    assert "Order number *" in words and "the four digits on your receipt" in words
    assert re.search(r'<select id="field-\d" name="f_reason" required aria-required="true">',
                     html)
    assert all(f'<option value="{o}"' in html for o in ("damaged", "late", "other"))
    assert re.search(r'<input type="number"[^>]*name="f_amount"[^>]*min="1" max="500"', html)
    assert re.search(r'<input type="email"[^>]*name="f_email"', html)
    assert re.search(r'<input type="checkbox"[^>]*name="f_gift"', html)
    # The brand: the workspace's name and colour, no portal navigation for a visitor.
    assert "Acme Refunds" in words and "--brand-primary:#0f766e" in html
    assert "My runs" not in words
    # The honeypot: hidden from people and screen readers, out of the tab order.
    assert re.search(r'<div class="p-hp" aria-hidden="true">', html)
    assert re.search(r'name="website" value="" tabindex="-1" autocomplete="off"', html)
    assert visitor.csrf and len(visitor.submission) >= 16


def test_hosted_form_is_served_on_the_workspaces_domain_and_never_on_anothers(
        app, world, dns_zone: Zone):
    add_verified(world, "a_admin", "a", HOST, dns_zone)
    add_verified(world, "b_admin", "b", OTHER, dns_zone)
    workflow, form = make_form(app, world)
    assert form["url"] == f"https://{HOST}{path_of(form)}"  # its domain's address

    on_its_domain = Visitor(app, HOST)
    assert on_its_domain.get(path_of(form)).status_code == 200
    sent = on_its_domain.post(path_of(form), GOOD)
    assert sent.status_code == 303, page_text(sent)

    # Another workspace's domain does not serve it, nor does its portal's address.
    elsewhere = Visitor(app, OTHER)
    refused = elsewhere.get(path_of(form))
    assert refused.status_code == 404
    assert elsewhere.post(path_of(form), GOOD, csrf="x", submission="y" * 32).status_code in (
        400, 404)
    other_slug = path_of(form).replace("/portal/ws-a/", "/portal/ws-b/")
    assert Visitor(app).get(other_slug).status_code == 404
    assert Visitor(app, OTHER).get(other_slug).status_code == 404
    assert len(form_runs(app, world, workflow)) == 1


# --------------------------------------------------------------------------- submissions


def test_hosted_form_a_valid_submission_starts_one_run_with_source_form(app, world):
    workflow, form = make_form(app, world)
    visitor = Visitor(app)
    visitor.get(path_of(form))
    sent = visitor.post(path_of(form), GOOD)
    assert sent.status_code == 303
    assert sent.headers["Location"].endswith(path_of(form) + "/sent")
    thanks = visitor.get(path_of(form) + "/sent")
    assert thanks.status_code == 200
    assert "Thanks! We will write within two days." in page_text(thanks)

    found = form_runs(app, world, workflow)
    assert len(found) == 1 and found[0]["trigger"] == "form"
    run = ok(as_key(app, world, "a_admin").get(f"/runs/{found[0]['id']}"))
    assert run["input"] == {"order": "1042", "reason": "damaged", "amount": 120,
                            "email": "ada@example.com", "gift": True}
    # The run list shows where it came from, as for other triggers.
    admin = browse(app, world, "a_admin")
    assert "Form" in page_text(admin.get("/runs?trigger=form"))
    # Audited: the submission and the run it started, both by the anonymous visitor.
    a = world.tenants["a"].id
    submitted = audit_events(a, "trigger.form_submitted")
    assert len(submitted) == 1 and submitted[0]["target_id"] == form["id"]
    assert submitted[0]["details"]["run_id"] == found[0]["id"]
    assert submitted[0]["details"]["started"] is True
    started = [e for e in audit_events(a, "run.started") if e["target_id"] == found[0]["id"]]
    assert started[0]["details"]["trigger"] == "form"
    shown = ok(as_key(app, world, "a_admin").get(f"/form-triggers/{form['id']}"))
    assert shown["submissions"] == 1 and shown["last_submission_at"]


def test_hosted_form_the_same_page_sent_twice_starts_one_run(app, world):
    workflow, form = make_form(app, world)
    visitor = Visitor(app)
    visitor.get(path_of(form))
    first = visitor.post(path_of(form), GOOD)
    again = visitor.post(path_of(form), GOOD)  # a double click: same CSRF, same page
    assert first.status_code == again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"]
    assert len(form_runs(app, world, workflow)) == 1
    # A new visit of the page is a new submission.
    visitor.get(path_of(form))
    assert visitor.post(path_of(form), GOOD).status_code == 303
    assert len(form_runs(app, world, workflow)) == 2
    shown = ok(as_key(app, world, "a_admin").get(f"/form-triggers/{form['id']}"))
    assert shown["submissions"] == 2


def test_hosted_form_invalid_input_shows_field_messages_and_starts_nothing(app, world):
    workflow, form = make_form(app, world)
    visitor = Visitor(app)
    visitor.get(path_of(form))
    refused = visitor.post(path_of(form), {"f_order": "12", "f_amount": "lots",
                                           "f_email": "ada@example.com"})
    assert refused.status_code == 422
    words, html = page_text(refused), refused.get_data(as_text=True)
    assert "Please check the fields marked below." in words
    assert "Is not in the expected format." in words  # order: the schema's pattern
    assert "Must be a whole number." in words  # amount
    assert "Is required." in words  # reason
    assert 'value="12"' in html and 'value="lots"' in html and 'value="ada@example.com"' in html
    assert 'aria-invalid="true"' in html
    # The same page goes on: its submission token is kept, and a fixed post starts one.
    assert SUBMISSION_RE.search(html).group(1) == visitor.submission
    assert form_runs(app, world, workflow) == []
    assert visitor.post(path_of(form), GOOD).status_code == 303
    assert len(form_runs(app, world, workflow)) == 1


def test_hosted_form_refuses_a_post_without_the_pages_csrf_token(app, world):
    workflow, form = make_form(app, world)
    visitor = Visitor(app)
    visitor.get(path_of(form))
    missing = visitor.post(path_of(form), GOOD, csrf="")
    assert missing.status_code == 400 and "This did not work" in page_text(missing)
    wrong = visitor.post(path_of(form), GOOD, csrf="forged-token")
    assert wrong.status_code == 400
    # Another visitor's token is not this session's.
    other = Visitor(app)
    other.get(path_of(form))
    assert visitor.post(path_of(form), GOOD, csrf=other.csrf).status_code == 400
    # A page without its submission token is refused too.
    assert visitor.post(path_of(form), GOOD, submission="").status_code == 400
    assert form_runs(app, world, workflow) == []


def test_hosted_form_a_filled_honeypot_looks_accepted_but_starts_nothing(app, world):
    workflow, form = make_form(app, world)
    bot = Visitor(app)
    bot.get(path_of(form))
    caught = bot.post(path_of(form), {**GOOD, "website": "http://spam.example"})
    assert caught.status_code == 303
    assert caught.headers["Location"].endswith(path_of(form) + "/sent")
    assert form_runs(app, world, workflow) == []
    shown = ok(as_key(app, world, "a_admin").get(f"/form-triggers/{form['id']}"))
    assert (shown["honeypot_hits"], shown["submissions"]) == (1, 0)
    events = audit_events(world.tenants["a"].id, "trigger.form_honeypot")
    assert len(events) == 1 and events[0]["target_id"] == form["id"]
    assert "f_order" in events[0]["details"]["fields"]

    # With the honeypot off there is no such field, and the value is ignored.
    admin = as_key(app, world, "a_admin")
    ok(admin.patch(f"/form-triggers/{form['id']}", json={"honeypot": False}))
    page = bot.get(path_of(form))
    assert 'name="website"' not in page.get_data(as_text=True)
    assert bot.post(path_of(form), {**GOOD, "website": "x"}).status_code == 303
    assert len(form_runs(app, world, workflow)) == 1


def test_hosted_form_rate_limits_per_address_and_per_form(app, world):
    workflow, form = make_form(app, world)
    flooding = Visitor(app, address="203.0.113.7")
    flooding.get(path_of(form))
    for _ in range(10):
        assert flooding.post(path_of(form), {"f_order": "1"}).status_code == 422
    limited = flooding.post(path_of(form), GOOD)
    assert limited.status_code == 429
    assert "Too many attempts" in page_text(limited)
    assert limited.headers["Retry-After"]
    assert form_runs(app, world, workflow) == []
    # Someone else, from another address, still gets through...
    other = Visitor(app, address="203.0.113.8")
    other.get(path_of(form))
    assert other.post(path_of(form), GOOD).status_code == 303
    # ...until the form itself has had its 60 a minute, from wherever they come.
    for n in range(49):
        visitor = Visitor(app, address=f"198.51.100.{n + 1}")
        visitor.get(path_of(form))
        assert visitor.post(path_of(form), {"f_order": "1"}).status_code == 422, n
    last = Visitor(app, address="198.51.100.200")
    last.get(path_of(form))
    assert last.post(path_of(form), GOOD).status_code == 429
    assert len(form_runs(app, world, workflow)) == 1


# --------------------------------------------------------------------------- closed forms


def test_hosted_form_closed_deleted_or_unpublished_says_so_and_never_500s(app, world):
    workflow, form = make_form(app, world)
    admin = as_key(app, world, "a_admin")
    visitor = Visitor(app)
    visitor.get(path_of(form))

    ok(admin.patch(f"/form-triggers/{form['id']}", json={"enabled": False}))
    closed = visitor.get(path_of(form))
    assert closed.status_code == 410 and "This form is closed" in page_text(closed)
    assert "Back to the portal" not in page_text(closed)
    assert visitor.post(path_of(form), GOOD).status_code == 410
    ok(admin.patch(f"/form-triggers/{form['id']}", json={"enabled": True}))
    assert visitor.get(path_of(form)).status_code == 200

    assert admin.delete(f"/form-triggers/{form['id']}").status_code == 204
    gone = visitor.get(path_of(form))
    assert gone.status_code == 404 and "This form does not exist" in page_text(gone)
    assert visitor.post(path_of(form), GOOD).status_code == 404
    assert visitor.get(path_of(form) + "/sent").status_code == 404
    assert Visitor(app).get("/portal/ws-a/forms/" + "x" * 300).status_code == 404

    draft, unpublished = make_form(app, world, publish=False)
    page = visitor.get(path_of(unpublished))
    assert page.status_code == 404 and "This form is not open yet" in page_text(page)

    archived_wf, archived = make_form(app, world)
    with scoped_to(world.tenants["a"].id):
        workflows.archive_workflow(workflows.get_workflow(archived_wf["id"]))
        db.session.commit()
    assert visitor.get(path_of(archived)).status_code == 404
    assert form_runs(app, world, workflow) == [] and form_runs(app, world, draft) == []


def test_hosted_form_of_a_workspace_past_due_politely_refuses(app, world):
    workflow, form = make_form(app, world)
    a = world.tenants["a"].id
    standing.payment_failed(a, utcnow() - timedelta(days=8), "in_late")
    db.session.commit()
    with scoped_to(a):
        row = db.session.scalars(select(standing.BillingStanding)).one()
        row.past_due_since = row.changed_at = utcnow() - timedelta(days=8)
        db.session.commit()
    policy_cache.forget(a)

    visitor = Visitor(app)
    assert visitor.get(path_of(form)).status_code == 200
    refused = visitor.post(path_of(form), GOOD)
    assert refused.status_code == 402
    assert "This form is not accepting submissions right now" in page_text(refused)
    assert "past due" not in page_text(refused).lower()  # nothing about the bill
    assert form_runs(app, world, workflow) == []
    events = audit_events(a, "trigger.form_refused")
    assert len(events) == 1 and events[0]["details"]["problem"] == "past-due"


# --------------------------------------------------------------------------- managing forms


def test_hosted_form_api_checks_what_it_is_given(app, world):
    workflow, form = make_form(app, world)
    admin = as_key(app, world, "a_admin")
    assert admin.post(f"/workflows/{workflow['id']}/form-triggers",
                      json={"title": ""}).status_code == 422
    assert admin.post(f"/workflows/{workflow['id']}/form-triggers",
                      json={"title": "x", "colour": "red"}).status_code == 422
    listed = ok(admin.get(f"/workflows/{workflow['id']}/form-triggers"))["items"]
    assert [f["id"] for f in listed] == [form["id"]]
    changed = ok(admin.patch(f"/form-triggers/{form['id']}", json={"title": "Refunds"}))
    assert changed["title"] == "Refunds" and changed["url"] == form["url"]
    # Another workspace does not see it.
    assert as_key(app, world, "b_admin").get(f"/form-triggers/{form['id']}").status_code == 404
    actions = [e["details"] for e in audit_events(world.tenants["a"].id,
                                                  "trigger.form_updated")]
    assert actions == [{"title": "Refunds"}]


def test_hosted_form_console_adds_shows_closes_and_deletes_a_form(app, world):
    admin = as_key(app, world, "a_admin")
    workflow = publish_via_api(admin, FORM_DEF)
    console = browse(app, world, "a_admin")
    empty = console.get("/triggers")
    assert "No hosted forms yet" in page_text(empty)
    refused = console.post("/triggers/forms", {"workflow_id": workflow["id"], "title": " ",
                                               "description": "kept"})
    assert refused.status_code == 422 and "Is required." in page_text(refused)
    assert ">kept</textarea>" in refused.get_data(as_text=True)
    added = console.post("/triggers/forms", {"workflow_id": workflow["id"],
                                             "title": "Call me back",
                                             "success_message": "We call you soon.",
                                             "honeypot": "on"})
    assert added.status_code == 302
    page = console.get("/triggers")
    html = page.get_data(as_text=True)
    listed = ok(admin.get(f"/workflows/{workflow['id']}/form-triggers"))["items"]
    assert len(listed) == 1 and listed[0]["honeypot"] is True
    url = listed[0]["url"]
    assert f'value="{url}"' in html and f'href="{url}"' in html
    assert 'data-copy="#form-' in html and "Call me back" in page_text(page)

    form_id = listed[0]["id"]
    assert console.post(f"/triggers/forms/{form_id}", {"title": "", "description": "x"}
                        ).status_code == 422
    assert console.post(f"/triggers/forms/{form_id}/toggle").status_code == 302
    assert ok(admin.get(f"/form-triggers/{form_id}"))["enabled"] is False
    assert "Closed" in page_text(console.get("/triggers"))
    assert console.post(f"/triggers/forms/{form_id}/delete").status_code == 302
    assert ok(admin.get(f"/workflows/{workflow['id']}/form-triggers"))["items"] == []
    # A viewer sees the forms but no buttons, and a forged post is refused.
    viewer = browse(app, world, "a_viewer")
    assert "Add form" not in page_text(viewer.get("/triggers"))
    assert viewer.post("/triggers/forms", {"workflow_id": workflow["id"],
                                           "title": "Mine"}).status_code == 403
