"""Test helpers: a world with several agencies and workspaces, and an API client.

Every test runs with several organisations present (Redash's habit), so a
missing tenant filter shows up as another tenant's data in a response.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from flask.testing import FlaskClient

from overture.platform.db import db, scoped_to
from overture.tenants.access import Principal, access_to
from overture.tenants.apikeys import create_key
from overture.tenants.lifecycle import create_tenant
from overture.tenants.models import ApiKey, Membership, Tenant, TenantKind, User
from overture.tenants.roles import Role
from overture.tenants.users import create_user

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class World:
    tenants: dict[str, Tenant] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    members: dict[str, Membership] = field(default_factory=dict)
    keys: dict[str, tuple[ApiKey, str]] = field(default_factory=dict)

    def tid(self, name: str) -> str:
        return str(self.tenants[name].id)


# (user handle, tenant handle, role)
PEOPLE = [
    ("nw_owner", "northwind", Role.OWNER), ("nw_admin", "northwind", Role.ADMIN),
    ("nw_viewer", "northwind", Role.VIEWER),
    ("a_owner", "a", Role.OWNER), ("a_admin", "a", Role.ADMIN), ("a_builder", "a", Role.BUILDER),
    ("a_operator", "a", Role.OPERATOR), ("a_viewer", "a", Role.VIEWER),
    ("a_auditor", "a", Role.AUDITOR), ("a_member", "a", Role.MEMBER),
    ("b_owner", "b", Role.OWNER), ("b_admin", "b", Role.ADMIN), ("b_viewer", "b", Role.VIEWER),
    ("ct_owner", "contoso", Role.OWNER), ("c_owner", "c", Role.OWNER),
]


def build_world() -> World:
    """Two agencies: Northwind (workspaces A and B) and Contoso (workspace C).

    The rows stay readable after commit (no expiry), outside any tenant scope.
    """
    db.session().expire_on_commit = False
    w = World()
    root = create_user("root@platform.example.com", PASSWORD, "Root", is_platform_admin=True)
    w.users["platform"] = root
    nw = create_tenant("Northwind", TenantKind.AGENCY, root, slug="northwind")
    ct = create_tenant("Contoso", TenantKind.AGENCY, root, slug="contoso")
    w.tenants.update(
        northwind=nw, contoso=ct,
        a=create_tenant("Workspace A", TenantKind.WORKSPACE, root, parent=nw, slug="ws-a"),
        b=create_tenant("Workspace B", TenantKind.WORKSPACE, root, parent=nw, slug="ws-b"),
        c=create_tenant("Workspace C", TenantKind.WORKSPACE, root, parent=ct, slug="ws-c"),
    )
    for handle, tenant, role in PEOPLE:
        user = create_user(f"{handle.replace('_', '.')}@people.example.com", PASSWORD,
                           handle)
        w.users[handle] = user
        with scoped_to(w.tenants[tenant].id):
            m = Membership(user_id=user.id, role=role, invited_by_id=root.id)
            db.session.add(m)
            db.session.flush()
        w.members[handle] = m
    for handle in ("a_admin", "b_admin", "nw_admin", "c_owner"):
        tenant = next(t for h, t, _ in PEOPLE if h == handle)
        w.keys[handle] = make_key(w, handle, tenant)
    w.keys["a_readonly"] = make_key(w, "a_admin", "a", ["tenant.read", "member.read"])
    db.session.commit()
    return w


def make_key(w: World, handle: str, tenant: str, scopes: list[str] | None = None,
             **kwargs: Any) -> tuple[ApiKey, str]:
    t = w.tenants[tenant]
    with scoped_to(t.id, user_id=w.users[handle].id):
        access = access_to(Principal(w.users[handle]), t)
        key, token = create_key(access, f"{handle} key", scopes, **kwargs)
        db.session.commit()
    return key, token


class Api:
    """A caller of API v1: a signed-in person (session + CSRF) or an API key."""

    def __init__(self, client: FlaskClient, token: str | None = None,
                 csrf: str | None = None, tenant: str | None = None) -> None:
        self.client, self.token, self.csrf, self.tenant = client, token, csrf, tenant

    def headers(self, tenant: str | None) -> dict[str, str]:
        h: dict[str, str] = {}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if self.csrf:
            h["X-CSRFToken"] = self.csrf
        if tenant or self.tenant:
            h["X-Overture-Tenant"] = str(tenant or self.tenant)
        return h

    def call(self, method: str, path: str, tenant: str | None = None, **kwargs: Any) -> Any:
        return self.client.open("/api/v1" + path, method=method,
                                headers=self.headers(tenant), **kwargs)

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.call("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.call("PATCH", path, **kw)

    def put(self, path: str, **kw: Any) -> Any:
        return self.call("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.call("DELETE", path, **kw)


def csrf_token(client: FlaskClient) -> str:
    page = client.get("/login").get_data(as_text=True)
    match = CSRF_RE.search(page)
    assert match, "login page carries a CSRF token"
    return match.group(1)


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the CSRF token for later session calls (signing
    in issues a new one, shown on the pages a signed-in person sees)."""
    response = client.post("/login", data={"email": email, "password": password,
                                           "csrf_token": csrf_token(client)})
    assert response.status_code == 302, response.get_data(as_text=True)
    return signed_in_csrf_token(client)


def signed_in_csrf_token(client: FlaskClient) -> str:
    # As a browser asks: a portal user is refused the console's home, by a page that
    # still carries the token (in its sign-out form).
    page = client.get("/", headers={"Accept": "text/html"})
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, "the signed-in home page carries a CSRF token"
    return match.group(1)


def as_user(app: Any, w: World, handle: str, tenant: str | None = None) -> Api:
    client = app.test_client()
    token = login(client, w.users[handle].email)
    return Api(client, csrf=token, tenant=w.tid(tenant) if tenant else None)


def as_key(app: Any, w: World, handle: str, tenant: str | None = None) -> Api:
    return Api(app.test_client(), token=w.keys[handle][1],
               tenant=w.tid(tenant) if tenant else None)


def unique() -> str:
    return uuid.uuid4().hex[:8]
