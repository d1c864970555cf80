"""Which host a request is for, and what that means for it.

- `X-Forwarded-Host`, `-Proto` and `-For` count only from a trusted proxy
  (OVERTURE_TRUSTED_PROXIES), and then only their last value.
- Unknown and unverified hosts are the platform's: `/` is its sign-in, never a
  tenant's portal; a verified host is its own tenant's, never another's.
- A session cookie belongs to the host it was made on: copied to another tenant's
  domain (or from the platform's host to a domain) it signs no one in, while the
  session goes on working where it was made. Cookies carry no Domain attribute.
- Staff use the console on a tenant's domain as anywhere else: there `/` is the
  console's home for the tenant's staff and its agency's, the portal for everyone else.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import jsonify, request

from tests.conftest import IsolatedClient, pg_settings
from tests.dns_server import Zone
from tests.domain_support import HTML, OnHost, add_verified
from tests.support import PASSWORD, as_key

HOST, OTHER = "portal.acme.example", "portal.bravo.example"
PROXY, STRANGER = "10.1.2.3", "10.9.9.9"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def proxied_app(database: str) -> Iterator[Any]:
    """The app behind a proxy at 10.1.2.0/24, with a page that says what it sees."""
    from overture.web.app import create_app
    from overture.web.extensions import client_address

    app = create_app(pg_settings(database, OVERTURE_TRUSTED_PROXIES="10.1.2.0/24"))
    app.test_client_class = IsolatedClient

    @app.get("/test-only/where")
    def where() -> Any:
        return jsonify(host=request.host, scheme=request.scheme, client=client_address(),
                       forwarded_host=request.headers.get("X-Forwarded-Host"))

    yield app


def portal_of(response: Any) -> str | None:
    location = response.headers.get("Location", "")
    return location if response.status_code == 302 and location.startswith("/portal/") else None


def from_peer(app: Any, peer: str, path: str = "/", **headers: str) -> Any:
    client = app.test_client()
    return client.get(path, headers={**HTML, "Host": "overture-web:8000", **headers},
                      environ_base={"REMOTE_ADDR": peer})


# --------------------------------------------------------------------------- proxies


def test_forwarded_host_counts_only_from_a_trusted_proxy(app, proxied_app, world,
                                                         dns_zone: Zone):
    add_verified(world, "a_admin", "a", HOST, dns_zone)
    assert portal_of(from_peer(proxied_app, PROXY, **{"X-Forwarded-Host": HOST})) \
        == "/portal/ws-a/"
    assert portal_of(from_peer(proxied_app, STRANGER, **{"X-Forwarded-Host": HOST})) is None
    # The last value is the one the proxy next to us wrote; earlier ones came with the
    # request and prove nothing.
    assert portal_of(from_peer(proxied_app, PROXY,
                               **{"X-Forwarded-Host": f"evil.example, {HOST}"})) \
        == "/portal/ws-a/"
    assert portal_of(from_peer(proxied_app, PROXY,
                               **{"X-Forwarded-Host": f"{HOST}, evil.example"})) is None
    # With no trusted proxy configured (the test session's app), nobody is believed.
    assert portal_of(from_peer(app, "127.0.0.1", **{"X-Forwarded-Host": HOST})) is None
    # Garbage from a trusted proxy is ignored, not passed on as a host.
    seen = from_peer(proxied_app, PROXY, "/test-only/where",
                     **{"X-Forwarded-Host": "a b/c"}).get_json()
    assert seen["host"] == "overture-web:8000"


def test_a_trusted_proxy_vouches_for_host_scheme_and_client(proxied_app):
    forwarded = {"X-Forwarded-Host": HOST, "X-Forwarded-Proto": "https",
                 "X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
    seen = from_peer(proxied_app, PROXY, "/test-only/where", **forwarded).get_json()
    assert seen == {"host": HOST, "scheme": "https", "client": "203.0.113.9",
                    "forwarded_host": None}
    seen = from_peer(proxied_app, STRANGER, "/test-only/where", **forwarded).get_json()
    # A stranger's claims are dropped before the app sees the request.
    assert seen == {"host": "overture-web:8000", "scheme": "http", "client": STRANGER,
                    "forwarded_host": None}


# --------------------------------------------------------------------------- whose host


def test_unknown_and_unverified_hosts_are_the_platforms(app, world, dns_zone: Zone):
    add_verified(world, "b_admin", "b", OTHER, dns_zone)
    pending = as_key(app, world, "a_admin", "a").post(
        "/domains", json={"hostname": "pending.acme.example"})
    assert pending.status_code == 201
    for host in ("pending.acme.example", "nobody.example", "127.0.0.1", "localhost"):
        response = OnHost(app, host).get("/")
        assert response.status_code == 302 and response.headers["Location"].startswith(
            "/login"), host  # the platform's sign-in, not a portal
    assert portal_of(OnHost(app, OTHER).get("/")) == "/portal/ws-b/"  # B's, never A's


# --------------------------------------------------------------------------- sessions


def sign_in(client: OnHost, email: str) -> str:
    """Sign in through the form on the client's host; the session cookie's header."""
    token = CSRF_RE.search(client.get("/login").get_data(as_text=True)).group(1)
    response = client.post("/login", data={"email": email, "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    (cookie,) = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    return cookie


def signed_in(app: Any, host: str, cookie_value: str) -> bool:
    """Whether the copied cookie signs someone in on `host`: the console and the API."""
    client = app.test_client()
    client.set_cookie("session", cookie_value, domain=host)  # as a thief would paste it
    page = client.get("/profile", base_url=f"http://{host}", headers=HTML)
    api = client.get("/api/v1/me", base_url=f"http://{host}", headers=HTML)
    assert (page.status_code == 200) == (api.status_code == 200), (page.status_code,
                                                                   api.status_code)
    return page.status_code == 200


def test_a_session_cookie_from_one_domain_is_refused_on_another(app, world, dns_zone: Zone):
    add_verified(world, "a_admin", "a", HOST, dns_zone)
    add_verified(world, "b_admin", "b", OTHER, dns_zone)
    # The agency owner may act in both workspaces: still, a session is one host's.
    cookie = sign_in(OnHost(app, HOST), world.users["nw_owner"].email)
    assert "domain=" not in cookie.lower()  # host-only
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    assert signed_in(app, HOST, value)
    assert not signed_in(app, OTHER, value)
    assert not signed_in(app, "localhost", value)  # nor the platform's own host
    assert signed_in(app, HOST, value)  # refused there, not ended here


def test_a_platform_session_is_refused_on_a_tenants_domain(app, world, dns_zone: Zone):
    add_verified(world, "a_admin", "a", HOST, dns_zone)
    cookie = sign_in(OnHost(app, "localhost"), world.users["a_admin"].email)
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    assert signed_in(app, "localhost", value)
    assert not signed_in(app, HOST, value)


# --------------------------------------------------------------------------- staff


def test_staff_use_the_console_on_a_tenants_domain(app, world, dns_zone: Zone):
    add_verified(world, "a_admin", "a", HOST, dns_zone)
    browser = OnHost(app, HOST)
    sign_in(browser, world.users["a_admin"].email)
    page = browser.get("/domains")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert HOST in text and "Verified" in text
    # The console's "Home" leads to the console's home here too, not to the portal.
    assert 'href="/"' in text
    home = browser.get("/")
    assert home.status_code == 200, home.headers.get("Location")
    assert "Recent runs" in home.get_data(as_text=True)


def test_the_front_door_is_the_console_for_staff_and_the_portal_for_everyone_else(
        app, world, dns_zone: Zone):
    """`/` on A's domain: the console's home of workspace A for A's staff and for its
    agency's (the domain's workspace is the default there), the portal for A's customers,
    for staff of another workspace, and for anyone not signed in."""
    add_verified(world, "a_admin", "a", HOST, dns_zone)
    assert portal_of(OnHost(app, HOST).get("/")) == "/portal/ws-a/"
    doors = {}
    for handle in ("a_admin", "a_viewer", "nw_owner", "a_member", "b_admin"):
        browser = OnHost(app, HOST)
        sign_in(browser, world.users[handle].email)
        doors[handle] = browser.get("/")
    homes = {"a_admin": "Recent runs", "a_viewer": "Recent runs", "nw_owner": "Recent runs"}
    for staff, heading in homes.items():
        assert doors[staff].status_code == 200, (staff, doors[staff].headers.get("Location"))
        assert heading in doors[staff].get_data(as_text=True), staff
        assert "Workspace A" in doors[staff].get_data(as_text=True), staff
    for other in ("a_member", "b_admin"):
        assert portal_of(doors[other]) == "/portal/ws-a/", other
    # Elsewhere `/` is what it always was: the platform's console for staff.
    assert OnHost(app, "localhost").get("/").headers["Location"].startswith("/login")
