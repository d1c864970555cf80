"""Members: invite by email (a pending invitation), change role, remove; a tenant always
keeps an owner."""

from __future__ import annotations

from overture.platform.db import db, scoped_to
from overture.tenants.models import Membership
from overture.tenants.roles import Role
from overture.tenants.users import create_user, find_user_by_email
from tests.support import as_key, as_user


def field_names(response) -> set[str]:
    return {e["field"] for e in response.get_json()["errors"]}


def emails(api) -> set[str]:
    r = api.get("/members", query_string={"limit": 200})
    assert r.status_code == 200, r.get_json()
    return {m["user"]["email"] for m in r.get_json()["items"]}


INVITATION_FIELDS = {"id", "tenant_id", "email", "role", "status", "expires_at", "created_at",
                     "last_sent_at", "send_count"}


def pending(api) -> dict[str, dict]:
    r = api.get("/invitations")
    assert r.status_code == 200, r.get_json()
    return {i["email"]: i for i in r.get_json()["items"]}


def test_invite_by_email_creates_a_pending_invitation_not_a_member(app, world):
    admin = as_user(app, world, "a_admin")
    r = admin.post("/members", json={"email": "New.Person@Example.com", "role": "builder",
                                     "name": "New Person"})
    assert r.status_code == 202, r.get_json()
    invitation = r.get_json()
    assert set(invitation) == INVITATION_FIELDS
    assert invitation["email"] == "new.person@example.com"
    assert (invitation["role"], invitation["status"]) == ("builder", "pending")
    assert invitation["tenant_id"] == world.tid("a") and invitation["send_count"] == 1
    assert "new.person@example.com" not in emails(admin), "a member only once accepted"
    assert pending(admin)["new.person@example.com"]["id"] == invitation["id"]
    assert find_user_by_email("new.person@example.com") is None, "no user is made either"


def test_inviting_a_member_conflicts_and_inviting_twice_sends_again(app, world):
    admin = as_user(app, world, "a_admin")
    for email in ("a.viewer@people.example.com", "A.Viewer@People.Example.com"):
        r = admin.post("/members", json={"email": email, "role": "builder"})
        assert r.status_code == 409, (email, r.get_json())
        assert r.mimetype == "application/problem+json"
    first = admin.post("/members", json={"email": "twice@example.com", "role": "viewer"})
    again = admin.post("/members", json={"email": "Twice@Example.com", "role": "builder"})
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.get_json()["id"] == first.get_json()["id"], "the same invitation, re-sent"
    assert (again.get_json()["send_count"], again.get_json()["role"]) == (2, "builder")
    assert len([e for e in pending(admin) if e == "twice@example.com"]) == 1
    viewer = next(m for m in admin.get("/members").get_json()["items"]
                  if m["user"]["email"] == "a.viewer@people.example.com")
    assert viewer["role"] == "viewer"


def test_invalid_role_is_refused(app, world):
    r = as_user(app, world, "a_admin").post("/members", json={"email": "x@example.com",
                                                              "role": "emperor"})
    assert r.status_code == 422
    assert field_names(r) == {"role"}


def test_invalid_email_is_refused(app, world):
    admin = as_user(app, world, "a_admin")
    for bad in ("not-an-email", "two@@example.com", "spaces in@example.com"):
        r = admin.post("/members", json={"email": bad, "role": "viewer"})
        assert r.status_code == 422, (bad, r.get_json())
        assert field_names(r) == {"email"}


def test_change_role(app, world):
    admin = as_user(app, world, "a_admin")
    member_id = world.members["a_viewer"].id
    r = admin.patch(f"/members/{member_id}", json={"role": "operator"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["role"] == "operator"
    assert admin.get(f"/members/{member_id}").get_json()["role"] == "operator"
    # The new role is what the person can now do.
    operator = as_user(app, world, "a_viewer")
    assert operator.get("/api-keys").status_code == 200  # apikey.read: operators, not viewers


def test_change_role_refuses_an_invalid_role(app, world):
    r = as_user(app, world, "a_admin").patch(f"/members/{world.members['a_viewer'].id}",
                                             json={"role": "emperor"})
    assert r.status_code == 422
    assert field_names(r) == {"role"}


def test_remove_member(app, world):
    admin = as_user(app, world, "a_admin")
    viewer = as_user(app, world, "a_viewer")
    assert viewer.get("/members").status_code == 200
    member_id = world.members["a_viewer"].id
    r = admin.delete(f"/members/{member_id}")
    assert r.status_code == 204
    assert admin.get(f"/members/{member_id}").status_code == 404
    assert "a.viewer@people.example.com" not in emails(admin)
    # The removed person can no longer enter the workspace.
    assert viewer.get("/members", tenant=world.tid("a")).status_code == 404


def test_viewer_cannot_manage_members(app, world):
    viewer = as_user(app, world, "a_viewer")
    assert viewer.post("/members", json={"email": "x@example.com",
                                         "role": "viewer"}).status_code == 403
    assert viewer.patch(f"/members/{world.members['a_builder'].id}",
                        json={"role": "admin"}).status_code == 403
    assert viewer.delete(f"/members/{world.members['a_builder'].id}").status_code == 403


def test_last_owner_can_be_neither_removed_nor_demoted(app, world):
    owner = as_user(app, world, "a_owner")
    owner_id = world.members["a_owner"].id
    r = owner.delete(f"/members/{owner_id}")
    assert r.status_code == 409
    assert r.get_json()["type"] == "urn:overture:problem:conflict"
    r = owner.patch(f"/members/{owner_id}", json={"role": "admin"})
    assert r.status_code == 409
    # Not through the agency's owner either.
    agency_owner = as_user(app, world, "nw_owner", tenant="a")
    assert agency_owner.delete(f"/members/{owner_id}").status_code == 409
    assert owner.get(f"/members/{owner_id}").get_json()["role"] == "owner"


def test_an_owner_can_step_down_once_there_is_another(app, world):
    owner = as_user(app, world, "a_owner")
    r = owner.patch(f"/members/{world.members['a_admin'].id}", json={"role": "owner"})
    assert r.status_code == 200, r.get_json()
    r = owner.patch(f"/members/{world.members['a_owner'].id}", json={"role": "admin"})
    assert r.status_code == 200, r.get_json()
    # Now a_admin is the last owner.
    r = as_user(app, world, "a_admin").delete(f"/members/{world.members['a_admin'].id}")
    assert r.status_code == 409


def test_admin_cannot_grant_owner(app, world):
    admin = as_user(app, world, "a_admin")
    r = admin.post("/members", json={"email": "boss@example.com", "role": "owner"})
    assert r.status_code == 403
    assert "boss@example.com" not in pending(admin)
    r = admin.patch(f"/members/{world.members['a_viewer'].id}", json={"role": "owner"})
    assert r.status_code == 403
    r = admin.patch(f"/members/{world.members['a_admin'].id}", json={"role": "owner"})
    assert r.status_code == 403
    assert admin.get(f"/members/{world.members['a_viewer'].id}").get_json()["role"] == "viewer"


def test_admin_cannot_demote_or_remove_an_owner(app, world):
    admin = as_user(app, world, "a_admin")
    owner_id = world.members["a_owner"].id
    assert admin.patch(f"/members/{owner_id}", json={"role": "viewer"}).status_code == 403
    assert admin.delete(f"/members/{owner_id}").status_code == 403
    assert admin.get(f"/members/{owner_id}").get_json()["role"] == "owner"


def add_members(world, tenant: str, count: int) -> None:
    with scoped_to(world.tenants[tenant].id):
        for n in range(count):
            user = create_user(f"bulk{n}@example.com")
            db.session.add(Membership(user_id=user.id, role=Role.VIEWER))
        db.session.commit()


def test_cursor_pagination_returns_every_member_exactly_once(app, world):
    add_members(world, "a", 55)
    admin = as_key(app, world, "a_admin")
    first = admin.get("/members").get_json()
    assert len(first["items"]) == 50  # the default page
    assert first["next_cursor"]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": 17} | ({"cursor": cursor} if cursor else {})
        r = admin.get("/members", query_string=query)
        assert r.status_code == 200, r.get_json()
        page = r.get_json()
        assert len(page["items"]) <= 17
        seen += [m["id"] for m in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
        assert pages < 10, "pagination does not end"
    total = 7 + 55  # the world's seven members of A, and the bulk
    assert len(seen) == len(set(seen)) == total
    assert pages == 4
    assert {m["tenant_id"] for m in first["items"]} == {world.tid("a")}


def test_bad_cursor_is_refused(app, world):
    admin = as_key(app, world, "a_admin")
    for cursor in ("not-a-cursor", "!!!", "AAAA"):
        r = admin.get("/members", query_string={"cursor": cursor})
        assert r.status_code == 422, (cursor, r.get_json())
        assert field_names(r) == {"cursor"}


def test_out_of_range_limit_is_refused(app, world):
    admin = as_key(app, world, "a_admin")
    for limit in (0, 201, "many"):
        r = admin.get("/members", query_string={"limit": limit})
        assert r.status_code == 422, (limit, r.get_json())
        assert field_names(r) == {"limit"}


def test_platform_admin_must_name_the_tenant_whose_members_to_manage(app, world):
    root = as_user(app, world, "platform")
    invite = {"email": "helper@example.com", "role": "viewer"}
    for r in (root.get("/members"), root.post("/members", json=invite)):
        assert r.status_code == 400, r.get_json()
        assert r.get_json()["type"] == "urn:overture:problem:tenant-required"
    r = root.post("/members", json=invite, tenant=world.tid("a"))
    assert r.status_code == 202, r.get_json()
    assert r.get_json()["tenant_id"] == world.tid("a")
    assert "helper@example.com" in pending(as_user(app, world, "a_admin"))
