"""Tenants: an agency runs its client workspaces; platform admins run every tenant."""

from __future__ import annotations

from overture.platform.db import db, scoped_to
from overture.tenants.models import Membership
from overture.tenants.roles import Role
from tests.support import Api, as_key, as_user


def field_names(response) -> set[str]:
    return {e["field"] for e in response.get_json()["errors"]}


def agency(app, world) -> Api:
    return as_user(app, world, "nw_admin", tenant="northwind")


def create(api: Api, **body) -> dict:
    r = api.post("/tenants", json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def listed_ids(api: Api, limit: int = 200, **query) -> list[str]:
    """Every id across all pages."""
    ids: list[str] = []
    cursor = None
    for _ in range(50):
        q = {"limit": limit, **query} | ({"cursor": cursor} if cursor else {})
        r = api.get("/tenants", query_string=q)
        assert r.status_code == 200, r.get_json()
        ids += [t["id"] for t in r.get_json()["items"]]
        cursor = r.get_json()["next_cursor"]
        if not cursor:
            return ids
    raise AssertionError("pagination does not end")


def test_agency_admin_creates_a_client_workspace(app, world):
    nw = agency(app, world)
    ws = create(nw, name="Initech Support", slug="initech")
    assert ws["kind"] == "workspace"
    assert ws["parent_id"] == world.tid("northwind")
    assert ws["slug"] == "initech" and ws["status"] == "active"
    assert nw.get(f"/tenants/{ws['id']}").get_json()["name"] == "Initech Support"
    # The agency's people reach it, by id or slug.
    r = nw.get("/tenant", tenant="initech")
    assert r.status_code == 200 and r.get_json()["id"] == ws["id"]


def test_slug_is_derived_from_the_name_when_omitted(app, world):
    nw = agency(app, world)
    first = create(nw, name="Globex Sales!")
    second = create(nw, name="Globex Sales!")
    assert first["slug"] == "globex-sales"
    assert second["slug"] not in ("globex-sales", "")


def test_agency_lists_its_own_clients_with_a_cursor(app, world):
    nw = agency(app, world)
    made = [create(nw, name=f"Client {n}")["id"] for n in range(5)]
    ids = listed_ids(nw, limit=2)
    assert len(ids) == len(set(ids))
    assert set(ids) == {world.tid("a"), world.tid("b"), *made}
    first = nw.get("/tenants", query_string={"limit": 2}).get_json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    # The other agency sees none of them.
    contoso = as_user(app, world, "ct_owner", tenant="contoso")
    assert set(listed_ids(contoso)) == {world.tid("c")}


def test_rename_a_client_workspace(app, world):
    nw = agency(app, world)
    r = nw.patch(f"/tenants/{world.tid('a')}", json={"name": "Acme Support"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["name"] == "Acme Support"
    assert as_user(app, world, "a_viewer").get("/tenant").get_json()["name"] == "Acme Support"
    r = nw.patch(f"/tenants/{world.tid('a')}", json={"name": "   "})
    assert r.status_code == 422
    assert field_names(r) == {"name"}


def test_suspend_and_resume_a_client_workspace(app, world):
    nw = agency(app, world)
    viewer = as_user(app, world, "a_viewer")
    key = as_key(app, world, "a_admin")
    r = nw.post(f"/tenants/{world.tid('a')}/suspend")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "suspended"
    assert r.get_json()["suspended_at"]
    for caller in (viewer, key):
        refused = caller.get("/members")
        assert refused.status_code == 403
        assert refused.get_json()["type"] == "urn:overture:problem:tenant-suspended"
    assert [t["id"] for t in nw.get("/tenants", query_string={"status": "suspended"})
            .get_json()["items"]] == [world.tid("a")]
    # B is not affected.
    assert as_user(app, world, "b_viewer").get("/members").status_code == 200

    r = nw.post(f"/tenants/{world.tid('a')}/resume")
    assert r.status_code == 200
    assert r.get_json()["status"] == "active"
    assert r.get_json()["suspended_at"] is None
    assert viewer.get("/members").status_code == 200
    assert key.get("/members").status_code == 200


def test_delete_a_client_workspace(app, world):
    nw = agency(app, world)
    ws = create(nw, name="Short Lived", slug="short-lived")
    r = nw.delete(f"/tenants/{ws['id']}")
    assert r.status_code == 204
    assert nw.get(f"/tenants/{ws['id']}").status_code == 404
    assert ws["id"] not in listed_ids(nw)
    for ref in (ws["id"], "short-lived"):
        assert nw.get("/members", tenant=ref).status_code == 404
    assert nw.delete(f"/tenants/{ws['id']}").status_code == 404
    # The slug is free again.
    again = create(nw, name="Short Lived Again", slug="short-lived")
    assert again["id"] != ws["id"]
    assert nw.get("/tenant", tenant="short-lived").get_json()["id"] == again["id"]


def test_deleted_workspace_shuts_out_its_members_and_keys(app, world):
    viewer = as_user(app, world, "a_viewer")
    key = as_key(app, world, "a_admin")
    assert agency(app, world).delete(f"/tenants/{world.tid('a')}").status_code == 204
    assert viewer.get("/members", tenant=world.tid("a")).status_code == 404
    assert key.get("/members").status_code == 401
    me = viewer.get("/me").get_json()
    assert world.tid("a") not in {t["id"] for t in me["tenants"]}


def test_slug_conflict(app, world):
    nw = agency(app, world)
    for taken in ("ws-a", "ws-c", "northwind"):
        r = nw.post("/tenants", json={"name": "Copy", "slug": taken})
        assert r.status_code == 409, (taken, r.get_json())
        assert r.get_json()["type"] == "urn:overture:problem:conflict"


def test_invalid_slug(app, world):
    nw = agency(app, world)
    for bad in ("Bad Slug", "-leading", "trailing-", "UPPER", "ünïcode", "a" * 65):
        r = nw.post("/tenants", json={"name": "Whatever", "slug": bad})
        assert r.status_code == 422, (bad, r.get_json())
        assert field_names(r) == {"slug"}
    assert set(listed_ids(nw)) == {world.tid("a"), world.tid("b")}


def test_workspace_admin_cannot_create_workspaces(app, world):
    admin = as_user(app, world, "a_admin")
    for kind in ("workspace", "agency"):
        r = admin.post("/tenants", json={"name": "Sneaky", "kind": kind})
        assert 400 <= r.status_code < 500, (kind, r.status_code)
        assert r.mimetype == "application/problem+json"
    assert "Sneaky" not in agency(app, world).get("/tenants").get_data(as_text=True)


def test_agency_viewer_cannot_manage_workspaces(app, world):
    viewer = as_user(app, world, "nw_viewer", tenant="northwind")
    assert viewer.post("/tenants", json={"name": "Nope"}).status_code == 403
    assert viewer.post(f"/tenants/{world.tid('a')}/suspend").status_code == 403
    assert viewer.delete(f"/tenants/{world.tid('a')}").status_code == 403


def test_agency_admin_cannot_create_an_agency(app, world):
    r = agency(app, world).post("/tenants", json={"name": "Rival", "kind": "agency"})
    assert r.status_code in (403, 422)
    assert "Rival" not in as_user(app, world, "platform").get("/tenants").get_data(as_text=True)


def test_platform_admin_lists_every_tenant(app, world):
    root = as_user(app, world, "platform")
    ids = listed_ids(root, limit=2)
    assert set(ids) == {world.tid(t) for t in ("northwind", "contoso", "a", "b", "c")}
    assert len(ids) == len(set(ids))


def test_platform_admin_creates_an_agency(app, world):
    root = as_user(app, world, "platform")
    r = root.post("/tenants", json={"name": "Fabrikam", "kind": "agency", "slug": "fabrikam",
                                    "owner_email": "boss@fabrikam.example"})
    assert r.status_code == 201, r.get_json()
    fab = r.get_json()
    assert fab["kind"] == "agency" and fab["parent_id"] is None
    assert fab["id"] in listed_ids(root)
    # The named owner is its owner.
    owners = [m for m in root.get("/members", tenant=fab["id"]).get_json()["items"]
              if m["role"] == "owner"]
    assert [m["user"]["email"] for m in owners] == ["boss@fabrikam.example"]


def test_platform_admin_agency_rejects_a_bad_owner_email(app, world):
    r = as_user(app, world, "platform").post(
        "/tenants", json={"name": "Fabrikam", "kind": "agency", "owner_email": "nope"})
    assert r.status_code == 422
    assert field_names(r) == {"owner_email"}


def test_current_tenant_read_and_rename(app, world):
    admin = as_user(app, world, "a_admin")
    r = admin.get("/tenant")
    assert r.status_code == 200
    assert r.get_json()["id"] == world.tid("a")
    assert r.get_json()["slug"] == "ws-a"
    r = admin.patch("/tenant", json={"name": "Workspace A, renamed"})
    assert r.status_code == 200, r.get_json()
    assert admin.get("/tenant").get_json()["name"] == "Workspace A, renamed"
    # B keeps its name.
    assert as_user(app, world, "b_viewer").get("/tenant").get_json()["name"] == "Workspace B"


def test_viewer_cannot_rename_the_current_tenant(app, world):
    viewer = as_user(app, world, "a_viewer")
    assert viewer.patch("/tenant", json={"name": "Mine now"}).status_code == 403
    assert viewer.get("/tenant").get_json()["name"] == "Workspace A"


def test_a_user_with_one_membership_acts_there_without_naming_it(app, world):
    nw = as_user(app, world, "nw_admin")  # a direct member of northwind only
    assert nw.get("/tenant").get_json()["id"] == world.tid("northwind")
    assert nw.get("/tenant", tenant="ws-b").get_json()["id"] == world.tid("b")


def test_a_user_in_several_tenants_must_name_one(app, world):
    with scoped_to(world.tenants["a"].id):
        db.session.add(Membership(user_id=world.users["b_viewer"].id, role=Role.VIEWER))
        db.session.commit()
    person = as_user(app, world, "b_viewer")
    r = person.get("/members")
    assert r.status_code == 400
    assert r.get_json()["type"] == "urn:overture:problem:tenant-required"
    for name in ("a", "b"):
        assert person.get("/tenant", tenant=world.tid(name)).get_json()["id"] == world.tid(name)


def test_platform_admin_must_name_the_tenant_to_rename(app, world):
    root = as_user(app, world, "platform")
    r = root.patch("/tenant", json={"name": "Nameless"})
    assert r.status_code == 400, r.get_json()
    assert r.get_json()["type"] == "urn:overture:problem:tenant-required"
    r = root.patch("/tenant", json={"name": "Contoso Ltd"}, tenant="contoso")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["name"] == "Contoso Ltd"


def test_suspending_an_agency_pauses_its_clients(app, world):
    root = as_user(app, world, "platform")
    r = root.post(f"/tenants/{world.tid('northwind')}/suspend")
    assert r.status_code == 200, r.get_json()
    for handle in ("a_admin", "b_viewer"):
        assert as_user(app, world, handle).get("/members").status_code == 403
    assert as_key(app, world, "nw_admin").get("/members", tenant="ws-a").status_code == 403
    assert as_user(app, world, "c_owner").get("/members").status_code == 200  # Contoso's
    assert root.post(f"/tenants/{world.tid('northwind')}/resume").status_code == 200
    assert as_user(app, world, "a_admin").get("/members").status_code == 200


def test_an_agency_with_live_clients_cannot_be_deleted(app, world):
    root = as_user(app, world, "platform")
    r = root.delete(f"/tenants/{world.tid('contoso')}")
    assert r.status_code == 409
    assert root.delete(f"/tenants/{world.tid('c')}").status_code == 204
    assert root.delete(f"/tenants/{world.tid('contoso')}").status_code == 204
    assert as_user(app, world, "ct_owner").get("/members", tenant="contoso").status_code == 404


def test_no_live_slug_can_block_deleting_a_workspace(app, world):
    nw = agency(app, world)
    ws = create(nw, name="Target", slug="target")
    hexid = ws["id"].replace("-", "")
    # Whatever a tombstone looks like, a live slug cannot already hold it.
    for squat in (f"target--deleted-{hexid[:12]}", f"target-deleted-{hexid}", f"target-{hexid}"):
        nw.post("/tenants", json={"name": "Squatter", "slug": squat})
    r = nw.delete(f"/tenants/{ws['id']}")
    assert r.status_code == 204, r.get_data(as_text=True)
    again = create(nw, name="Target", slug="target")
    assert nw.delete(f"/tenants/{again['id']}").status_code == 204
