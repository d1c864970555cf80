"""A tenant's public address (`-k mail`): every absolute link Overture shows or mails for
a tenant is on its own verified domain when it has one (only its own: not its agency's,
not one still pending, not while it is suspended), else on the installation's address;
and the mail about nobody in particular (the platform's own) stays the platform's."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from overture.billing.alerts import send_budget_alert, send_usage_alert
from overture.orchestration import flow, runs, workflows
from overture.orchestration.models import RunStatus
from overture.platform.db import db, scoped_to
from overture.platform.errors import ValidationFailed
from overture.tenants import domains
from tests.console_support import browse
from tests.domain_support import add_verified
from tests.engine_api_support import ok
from tests.mail_support import follow, links, signed_in_on
from tests.recovery_support import (
    mails,
    outbox,  # noqa: F401  (fixture)
    post_form,
)
from tests.support import as_key, as_user

DOMAIN = "portal.ws-a.example"
AGENCY_DOMAIN = "cloud.northwind.example"


def public(app: Any) -> str:
    return str(app.extensions["overture.settings"].public_url)


def portal_home(app: Any, world: Any, handle: str) -> str:
    return str(ok(as_key(app, world, handle).get("/portal/publications"))["portal_url"])


def test_links_shown_for_a_tenant_are_on_its_own_verified_domain(app, world, dns_zone):
    pending = as_key(app, world, "a_admin").post("/domains", json={"hostname": DOMAIN})
    assert pending.status_code == 201
    assert portal_home(app, world, "a_admin") == f"{public(app)}/portal/ws-a/", \
        "a pending domain is not served: links stay on the installation's address"

    record = pending.get_json()["record"]
    dns_zone.txt(record["name"], record["value"])
    verified = as_key(app, world, "a_admin").post(f"/domains/{pending.get_json()['id']}/verify")
    assert ok(verified)["status"] == "verified"
    add_verified(world, "nw_admin", "northwind", AGENCY_DOMAIN, dns_zone)
    assert portal_home(app, world, "a_admin") == f"https://{DOMAIN}/portal/ws-a/"
    assert portal_home(app, world, "b_admin") == f"{public(app)}/portal/ws-b/", \
        "a workspace without a domain is not sent to its agency's"

    # The console's "Open the portal", and a webhook's address, which works there.
    admin = browse(app, world, "a_admin")
    html = admin.text("/portal-settings")
    assert f'href="https://{DOMAIN}/portal/ws-a/">Open the portal' in html
    flow_ = ok(as_key(app, world, "a_admin").post("/workflows", json={
        "name": "intake", "definition": {"steps": [{"id": "t", "type": "transform",
                                                    "output": "ok"}]}}), 201)
    hook = flow_["webhook_url"]
    assert hook.startswith(f"https://{DOMAIN}/hooks/{world.tid('a')}/")
    ok(as_key(app, world, "a_admin").post(f"/workflows/{flow_['id']}/publish"), 201)
    called = app.test_client().post(hook.removeprefix(f"https://{DOMAIN}"), json={"n": 1},
                                    base_url=f"https://{DOMAIN}")
    assert called.status_code == 202, called.get_data(as_text=True)
    assert hook in admin.text("/triggers")

    # Suspended, its domain is not served: what is mailed then (an alert, say) points
    # at the installation's address; resumed, at the domain again.
    agency = as_key(app, world, "nw_admin")
    assert agency.post(f"/tenants/{world.tid('a')}/suspend").status_code == 200
    db.session.expire_all()  # this test's session read the tenant before
    assert domains.public_base_url(world.tenants["a"].id) == public(app)
    assert agency.post(f"/tenants/{world.tid('a')}/resume").status_code == 200
    db.session.expire_all()
    assert domains.public_base_url(world.tenants["a"].id) == f"https://{DOMAIN}"


@pytest.mark.usefixtures("outbox")
def test_links_mailed_from_a_tenants_domain_stay_there_and_the_platforms_stay_its_own(
        app, world, dns_zone):
    add_verified(world, "a_admin", "a", DOMAIN, dns_zone)
    viewer = world.users["a_viewer"].email
    on_domain = app.test_client()
    page = on_domain.get("/login/link", base_url=f"https://{DOMAIN}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    asked = on_domain.post("/login/link", base_url=f"https://{DOMAIN}",
                           headers={"Referer": f"https://{DOMAIN}/login/link"},
                           data={"email": viewer, "csrf_token": token.group(1)})
    assert asked.status_code == 200, asked.get_data(as_text=True)
    (mail,) = mails(viewer)
    assert mail.sender_tenant_id == world.tenants["a"].id
    assert f"https://{DOMAIN}/login/link/" in mail.text_body

    # Asked on the installation's own address: the platform's mail, its own sender.
    post_form(app.test_client(), "/password/forgot", email=world.users["b_viewer"].email)
    (mail,) = mails(world.users["b_viewer"].email)
    assert mail.sender_tenant_id is None and (mail.sender_name, mail.reply_to) == (None, None)
    assert f"{public(app)}/password/reset/" in mail.text_body
    assert mail.subject == "Reset your Overture password"


def end_run(world: Any, workflow_id: str, status: RunStatus) -> str:
    """A run of the workflow, ended with `status` as the engine ends one."""
    with scoped_to(world.tenants["a"].id):
        workflow = workflows.get_workflow(workflow_id)
        workflows.publish(workflow, None)
        run, _ = runs.start_run(workflow, {}, "api")
        flow.finish_run(run, status, error={"code": "declined",
                                            "message": "the card was declined"})
        db.session.commit()
        return str(run.id)


@pytest.mark.usefixtures("outbox")
def test_a_mailed_run_link_opens_the_run_on_the_domain_for_agency_staff_too(
        app, world, dns_zone):
    add_verified(world, "a_admin", "a", DOMAIN, dns_zone)
    builder = as_user(app, world, "a_builder")
    made = ok(builder.post("/workflows", json={"name": "Charges", "definition": {
        "steps": [{"id": "t", "type": "transform", "output": "ok"}]}}), 201)
    ok(builder.patch(f"/workflows/{made['id']}", json={
        "failure_alerts": True, "failure_recipients": ["a.admin@people.example.com"]}))
    run_id = end_run(world, made["id"], RunStatus.FAILED)
    (mail,) = mails()
    (link,) = [u for u in links(mail.text_body) if "/runs/" in u]
    assert link == f"https://{DOMAIN}/runs/{run_id}"
    # Northwind's owner reaches A through the agency (one membership: Northwind's): on
    # A's domain the console acts in A, so the link opens the run.
    for handle in ("a_admin", "nw_owner"):
        page = follow(signed_in_on(app, f"https://{DOMAIN}", world.users[handle].email),
                      link)
        assert page.status_code == 200, (handle, page.status_code)
        assert "Charges" in page.get_data(as_text=True) and run_id in page.get_data(
            as_text=True)


@pytest.mark.usefixtures("outbox")
def test_failure_alerts_go_to_the_workspaces_staff_the_workflow_names(app, world):
    builder = as_user(app, world, "a_builder")
    made = ok(builder.post("/workflows", json={"name": "Charges", "definition": {
        "steps": [{"id": "t", "type": "transform", "output": "ok"}]}}), 201)
    path = f"/workflows/{made['id']}"
    assert made["failure_alerts"] is False and made["failure_recipients"] == []

    for strangers in (["c.owner@people.example.com"], ["a.member@people.example.com"],
                      ["nobody@people.example.com"]):
        refused = builder.patch(path, json={"failure_alerts": True,
                                            "failure_recipients": strangers})
        assert refused.status_code == 422, strangers
        assert strangers[0] in refused.get_json()["errors"][0]["message"]
    assert as_user(app, world, "a_viewer").patch(path, json={
        "failure_alerts": True}).status_code == 403
    assert ok(builder.get(path))["failure_alerts"] is False, "nothing half-saved"

    saved = ok(builder.patch(path, json={"failure_alerts": True, "failure_recipients": [
        "A.Operator@people.example.com", "a.admin@people.example.com"]}))
    assert saved["failure_recipients"] == ["a.operator@people.example.com",
                                           "a.admin@people.example.com"]

    def fail(status: RunStatus) -> None:
        end_run(world, made["id"], status)

    fail(RunStatus.FAILED)
    assert sorted(m.to_address for m in mails()) == ["a.admin@people.example.com",
                                                     "a.operator@people.example.com"]
    assert all(m.subject == "Run failed: Charges" for m in mails())
    fail(RunStatus.CANCELLED)  # someone stopped it on purpose: nothing to tell
    fail(RunStatus.TIMED_OUT)
    timed_out = [m for m in mails() if m.subject == "Run timed out: Charges"]
    assert len(timed_out) == 2 and len(mails()) == 4

    # An empty list: the person who made it; turned off: nobody.
    ok(builder.patch(path, json={"failure_recipients": []}))
    fail(RunStatus.FAILED)
    assert [m.to_address for m in mails()[4:]] == ["a.builder@people.example.com"]
    ok(builder.patch(path, json={"failure_alerts": False}))
    fail(RunStatus.FAILED)
    assert len(mails()) == 5


@pytest.mark.usefixtures("outbox")
def test_usage_alerts_go_once_per_tenant_meter_threshold_and_month(app, world):
    a, b = world.tenants["a"].id, world.tenants["b"].id
    december = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    assert send_usage_alert(a, "steps", 80, 8, 10, now=december) is True
    db.session.rollback()  # the fact it reported did not happen: neither did the alert
    assert mails() == []
    assert send_usage_alert(a, "steps", 80, 8, 10, now=december) is True
    assert send_usage_alert(a, "steps", 80, 9, 10, now=december + timedelta(days=20)) is False
    assert send_usage_alert(a, "steps", 100, 10, 10, now=december) is True
    assert send_usage_alert(a, "llm_cost", 80, 8, 10, now=december) is True
    assert send_usage_alert(a, "steps", 80, 8, 10, now=datetime(2027, 1, 2, tzinfo=UTC))
    assert send_usage_alert(b, "steps", 80, 8, 10, now=december) is True
    assert send_budget_alert(a, 80, Decimal("40.5"), Decimal("50"), "EUR",
                             now=december) is True
    assert send_budget_alert(a, 80, Decimal("41"), Decimal("50"), "EUR",
                             now=december) is False
    db.session.commit()
    sent = mails()
    to_a = {world.users[h].email for h in ("a_owner", "a_admin")}
    to_b = {world.users[h].email for h in ("b_owner", "b_admin")}
    assert len(sent) == 2 * 6 and {m.to_address for m in sent} == to_a | to_b
    subjects = {m.subject for m in sent if m.to_address in to_a}
    assert subjects == {"Workspace A has used 80% of its steps for December 2026",
                        "Workspace A has used 100% of its steps for December 2026",
                        "Workspace A has used 80% of its llm cost for December 2026",
                        "Workspace A has used 80% of its steps for January 2027",
                        "Workspace A has spent 80% of its budget for December 2026"}
    budget = next(m for m in sent if "budget" in m.subject)
    assert "40.50 EUR of 50.00 EUR" in budget.text_body
    for bad in (0, 1001, True):
        with pytest.raises(ValidationFailed):
            send_usage_alert(a, "steps", bad, 1, 1)
