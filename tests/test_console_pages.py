"""The console's pages through HTTP, as a browser uses them: the chosen workspace, the
agency home, workspaces, members, API keys, the profile, and the same permission
checks as the API (a forged form post is refused by the server)."""

from __future__ import annotations

import re

from overture.platform.db import db, scoped_to
from overture.tenants.models import Membership
from overture.tenants.roles import Role
from tests.console_support import HTML, browse, page_text, region, seed_activity
from tests.support import as_user


def test_agency_owner_sees_each_client_workspace_and_can_find_and_sort_them(app, world):
    owner = browse(app, world, "nw_owner")
    table = region(owner.get("/"), "workspaces")
    assert "Workspace A" in table and "Workspace B" in table
    assert "Workspace C" not in page_text(owner.get("/"))  # Contoso's client
    found = region(owner.get("/?q=ws-b"), "workspaces")
    assert "Workspace B" in found and "Workspace A" not in found
    descending = region(owner.get("/?sort=name&dir=desc"), "workspaces")
    assert descending.index("Workspace B") < descending.index("Workspace A")
    assert "No workspace matches" in page_text(owner.get("/?q=nothing-like-this"))
    # A platform admin, in no tenant, sees every tenant.
    every = region(browse(app, world, "platform").get("/"), "workspaces")
    assert all(name in every for name in ("Northwind", "Contoso", "Workspace C"))


def test_the_console_carries_the_chosen_workspace(app, world):
    owner = browse(app, world, "nw_owner")
    assert owner.post("/switch", {"tenant": world.tid("a")}).status_code == 302
    home = page_text(owner.get("/"))
    assert "Workspace A" in home and "Recent runs" in home and "No runs yet" in home
    members = page_text(owner.get("/members"))
    assert "a.viewer@people.example.com" in members
    assert "b.viewer@people.example.com" not in members
    # Contoso's workspace is not reachable: not found, and the choice stays.
    refused = owner.post("/switch", {"tenant": world.tid("c")})
    assert refused.status_code == 404 and "Page not found" in page_text(refused)
    assert "Workspace A" in page_text(owner.get("/"))
    # The header still wins, as in the API.
    b_home = owner.client.get("/", headers={**HTML, "X-Overture-Tenant": "ws-b"})
    assert "Workspace B" in page_text(b_home)


def test_someone_in_several_workspaces_chooses_one_and_the_api_names_the_choices(app, world):
    with scoped_to(world.tenants["b"].id):
        db.session.add(Membership(user_id=world.users["a_viewer"].id, role=Role.VIEWER))
        db.session.commit()
    person = browse(app, world, "a_viewer")
    chooser = page_text(person.get("/"))
    assert "Choose a workspace" in chooser and "Workspace A" in chooser and "Workspace B" in chooser
    api = as_user(app, world, "a_viewer")
    refused = api.get("/workflows")
    assert refused.status_code == 400
    problem = refused.get_json()
    assert problem["type"] == "urn:overture:problem:tenant-required"
    assert {c["name"] for c in problem["choices"]} == {"Workspace A", "Workspace B"}
    assert {c["kind"] for c in problem["choices"]} == {"workspace"}
    person.post("/switch", {"tenant": world.tid("b")})
    assert "Workspace B" in page_text(person.get("/settings"))


def test_a_viewer_sees_no_edit_controls_and_a_forged_post_is_refused(app, world):
    viewer = browse(app, world, "a_viewer")
    members = viewer.get("/members")
    assert members.status_code == 200
    html = members.get_data(as_text=True)
    assert "Send invitation" not in html and "Remove" not in html
    forged = viewer.post("/members/invite", {"email": "mallory@example.com", "role": "owner"})
    assert forged.status_code == 403
    assert "You do not have access to this" in page_text(forged)
    assert forged.headers["Content-Type"].startswith("text/html")
    assert viewer.post(f"/members/{world.members['a_owner'].id}/remove").status_code == 403
    assert viewer.get("/api-keys").status_code == 403  # apikey.read: not a viewer's
    assert "a.owner@people.example.com" in page_text(viewer.get("/members"))
    nav = viewer.get("/").get_data(as_text=True)
    assert 'href="/members"' in nav and 'href="/api-keys"' not in nav


def test_an_admin_manages_members_keys_and_workspaces(app, world):
    admin = browse(app, world, "a_admin")
    sent = admin.post("/members/invite", {"email": "new.person@example.com", "role": "builder"},
                      follow_redirects=True)
    assert "Invitation sent to new.person@example.com" in page_text(sent)
    pending = region(sent, "invitations-title")
    assert "new.person@example.com Builder" in pending
    invitation_id = re.search(r'/members/invitations/([^/]+)/revoke', sent.get_data(as_text=True))
    withdrawn = admin.post(f"/members/invitations/{invitation_id.group(1)}/revoke",
                           follow_redirects=True)
    assert "The invitation to new.person@example.com is withdrawn" in page_text(withdrawn)
    assert "No invitation is waiting" in page_text(withdrawn)
    bad = admin.post("/members/invite", {"email": "not-an-email", "role": "builder"})
    assert bad.status_code == 422 and "not-an-email" in bad.get_data(as_text=True)
    viewer = world.members["a_viewer"]
    changed = admin.post(f"/members/{viewer.id}/role", {"role": "operator"},
                         follow_redirects=True)
    assert "is now operator" in page_text(changed)

    created = admin.post("/api-keys", {"name": "CRM sync", "expires": "30"})
    assert created.status_code == 200 and created.headers["Cache-Control"] == "no-store"
    assert "only time it is shown" in page_text(created)
    assert 'value="ovt_' in created.get_data(as_text=True)
    listed = admin.get("/api-keys").get_data(as_text=True)
    assert "CRM sync" in listed and 'value="ovt_' not in listed

    agency = browse(app, world, "nw_owner")
    made = agency.post("/workspaces/new", {"name": "Fabrikam", "slug": "", "switch": "on"},
                       follow_redirects=True)
    assert "Workspace Fabrikam created" in page_text(made)
    assert "Fabrikam" in page_text(agency.get("/settings"))  # switched into it
    agency.post("/switch", {"tenant": world.tid("northwind")})
    taken = agency.post("/workspaces/new", {"name": "Other", "slug": "ws-a"})
    assert taken.status_code == 422 and "is taken" in page_text(taken)
    suspended = agency.post(f"/workspaces/{world.tid('b')}/suspend", follow_redirects=True)
    assert "Workspace B is suspended" in page_text(suspended)
    assert browse(app, world, "b_viewer").get("/").status_code == 403
    agency.post(f"/workspaces/{world.tid('b')}/resume")
    assert browse(app, world, "b_viewer").get("/").status_code == 200


def test_profile_name_password_and_errors_as_pages(app, world):
    person = browse(app, world, "a_builder")
    renamed = person.post("/profile/name", {"name": "Ada Builder"}, follow_redirects=True)
    assert "Ada Builder" in page_text(renamed)
    wrong = person.post("/profile/password", {"current_password": "not it",
                                              "new_password": "a much longer phrase 42",
                                              "new_password_again": "a much longer phrase 42"})
    assert wrong.status_code == 422 and "not your current password" in page_text(wrong)
    profile = page_text(person.get("/profile"))
    assert "This session" in profile
    missing = person.get("/no-such-page")
    assert missing.status_code == 404 and "Page not found" in page_text(missing)
    assert person.client.get("/no-such-page").headers["Content-Type"].startswith(
        "application/problem+json")  # programs still get problem JSON
    assert person.client.get("/api/v1/nothing", headers=HTML).headers[
        "Content-Type"].startswith("application/problem+json")


def test_the_homes_summarise_runs_approvals_usage_and_the_last_failure(app, world):
    seed_activity(world.tenants["a"].id, "Refunds", succeeded=3, failed=2, waiting=True,
                  cost="1.25")
    seed_activity(world.tenants["b"].id, "Invoices", succeeded=1, failed=0)
    owner = browse(app, world, "nw_owner")
    home = owner.get("/?sort=failed&dir=desc")
    table = region(home, "workspaces")
    a_row = table[table.index("Workspace A"):table.index("Workspace B")]
    # succeeded, failed, waiting, approvals, tokens, cost, last failure (what went wrong,
    # in words; the error's code only on hover)
    assert "Active 3 2 1 1 12k $1.25 3 h ago CRM answered 503" in a_row
    assert "http_5xx" not in a_row
    assert 'title="CRM answered 503 · http_5xx"' in home.get_data(as_text=True)
    assert "Active 1 0 0 0 12k $0.00 None" in table
    workspace = page_text(browse(app, world, "a_operator").get("/"))
    assert "Refunds" in workspace and "Refund 120 EUR to order 4411?" in workspace


def test_an_operator_decides_an_approval_once_with_an_edit(app, world):
    seed_activity(world.tenants["a"].id, "Refunds", succeeded=0, failed=0, waiting=True)
    viewer = browse(app, world, "a_viewer")
    seen = viewer.get("/approvals")
    assert "Refund 120 EUR to order 4411?" in page_text(seen)
    assert "Approve" not in seen.get_data(as_text=True)
    approval_id = re.search(r'id="approval-([^"]+)"', seen.get_data(as_text=True)).group(1)
    forged = viewer.post(f"/approvals/{approval_id}/decision", {"decision": "approve"})
    assert forged.status_code == 403

    operator = browse(app, world, "a_operator")
    decided = operator.post(f"/approvals/{approval_id}/decision",
                            {"decision": "approve", "edit.amount": "100", "note": "partial"},
                            follow_redirects=True)
    assert "Approved: Refund 120 EUR to order 4411?" in page_text(decided)
    assert "Nothing is waiting for a decision" in page_text(decided)
    again = operator.post(f"/approvals/{approval_id}/decision", {"decision": "reject"})
    assert again.status_code == 422 and "already decided" in page_text(again)
    details = as_user(app, world, "a_operator", "a").get(f"/approvals/{approval_id}").get_json()
    assert details["status"] == "approved" and details["edited_values"] == {"amount": 100}
