"""Signing in and out, CSRF, cookie flags, rate limits and redirects after login."""

from __future__ import annotations

import importlib.util
import re
from urllib.parse import urljoin, urlsplit

import argon2
import dramatiq
import pytest

from overture.platform.db import db
from overture.tenants import passwords
from overture.tenants.models import UserStatus
from overture.web.app import create_app
from tests.conftest import pg_settings
from tests.support import PASSWORD, Api, as_key, as_user, csrf_token, login

PROBLEM = "application/problem+json"


@pytest.fixture
def make_app(database):
    """Another app on the suite's database, with some settings changed."""
    previous = dramatiq.get_broker()  # create_app installs its broker process-wide
    yield lambda **overrides: create_app(pg_settings(database, **overrides))
    dramatiq.set_broker(previous)


def post_login(client, email: str, password: str = PASSWORD, next_url: str | None = None):
    path = "/login" if next_url is None else f"/login?next={next_url}"
    return client.post(path, data={"email": email, "password": password,
                                   "csrf_token": csrf_token(client)})


def me_status(client) -> int:
    return client.get("/api/v1/me").status_code


def test_login_succeeds_and_the_session_reaches_the_api(app, world):
    client = app.test_client()
    assert me_status(client) == 401
    r = post_login(client, "a.admin@people.example.com")
    assert r.status_code == 302
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    body = me.get_json()
    assert body["user"]["email"] == "a.admin@people.example.com"
    assert body["auth"] == "session"
    assert [t["slug"] for t in body["tenants"]] == ["ws-a"]


def test_login_email_is_case_insensitive(app, world):
    client = app.test_client()
    assert post_login(client, "  A.Admin@People.Example.COM").status_code == 302
    assert me_status(client) == 200


def test_invited_user_without_a_password_cannot_log_in(app, world):
    r = as_user(app, world, "a_admin").post("/members", json={"email": "invitee@example.com",
                                                              "role": "viewer"})
    assert r.status_code == 202
    for password in ("", PASSWORD):
        client = app.test_client()
        assert post_login(client, "invitee@example.com", password).status_code == 401
        assert me_status(client) == 401


def test_login_with_a_wrong_password_fails(app, world):
    client = app.test_client()
    r = post_login(client, "a.admin@people.example.com", "wrong password!")
    assert r.status_code == 401
    assert "Invalid email or password." in r.get_data(as_text=True)
    assert me_status(client) == 401


def test_failed_logins_do_not_say_which_part_was_wrong(app, world):
    wrong_password = post_login(app.test_client(), "a.admin@people.example.com", "not it at all")
    unknown_email = post_login(app.test_client(), "nobody@people.example.com", PASSWORD)
    assert wrong_password.status_code == unknown_email.status_code == 401
    # The pages differ only in the echoed email and the per-session CSRF token.
    def strip(r, email: str) -> str:
        page = r.get_data(as_text=True).replace(email, "EMAIL")
        return "\n".join(line for line in page.splitlines() if "csrf_token" not in line)

    assert strip(wrong_password, "a.admin@people.example.com") == \
        strip(unknown_email, "nobody@people.example.com")


def test_login_without_csrf_token_is_refused(app, world):
    client = app.test_client()
    client.get("/login")
    r = client.post("/login", data={"email": "a.admin@people.example.com",
                                    "password": PASSWORD})
    assert r.status_code == 400
    assert r.get_json()["type"] == "urn:overture:problem:csrf-failed"
    assert me_status(client) == 401


def test_login_with_a_forged_csrf_token_is_refused(app, world):
    client = app.test_client()
    client.get("/login")
    r = client.post("/login", data={"email": "a.admin@people.example.com",
                                    "password": PASSWORD, "csrf_token": "forged"})
    assert r.status_code == 400
    assert me_status(client) == 401


def test_session_api_mutation_needs_the_csrf_header(app, world):
    me = as_user(app, world, "a_admin")
    without = Api(me.client)  # same session cookie, no X-CSRFToken
    r = without.post("/api-keys", json={"name": "no csrf"})
    assert r.status_code == 400
    assert r.mimetype == PROBLEM
    assert r.get_json()["type"] == "urn:overture:problem:csrf-failed"
    assert "no csrf" not in me.get("/api-keys").get_data(as_text=True)

    r = me.post("/api-keys", json={"name": "with csrf"})
    assert r.status_code == 201, r.get_json()


def test_session_reads_need_no_csrf_header(app, world):
    me = as_user(app, world, "a_admin")
    assert Api(me.client).get("/members").status_code == 200


def test_bearer_api_keys_need_no_csrf(app, world):
    r = as_key(app, world, "a_admin").post("/api-keys", json={"name": "from a key"})
    assert r.status_code == 201, r.get_json()
    r = as_key(app, world, "a_admin").delete(f"/api-keys/{r.get_json()['id']}")
    assert r.status_code == 200, r.get_json()


def test_login_rate_limit_answers_429(make_app, world):
    limited = make_app(OVERTURE_LOGIN_RATE_LIMIT="3 per minute")
    client = limited.test_client()
    for _ in range(3):
        assert post_login(client, "a.admin@people.example.com", "wrong password!").status_code \
            == 401
    r = post_login(client, "a.admin@people.example.com")  # even the right password now
    assert r.status_code == 429
    assert r.mimetype == PROBLEM
    body = r.get_json()
    assert body["type"] == "urn:overture:problem:rate-limited"
    assert body["status"] == 429 and body["title"] and body["detail"]
    assert me_status(client) == 401
    # Showing the form is not an attempt.
    assert client.get("/login").status_code == 200


def test_api_key_rate_limit_answers_429_per_key(make_app, world):
    limited = make_app(OVERTURE_API_RATE_LIMIT="3 per minute")
    key = Api(limited.test_client(), token=world.keys["a_admin"][1])
    for _ in range(3):
        assert key.get("/members").status_code == 200
    r = key.get("/members")
    assert r.status_code == 429
    assert r.mimetype == PROBLEM
    assert r.get_json()["type"] == "urn:overture:problem:rate-limited"
    # Another key has its own allowance.
    other = Api(limited.test_client(), token=world.keys["b_admin"][1])
    assert other.get("/members").status_code == 200


def test_api_rate_limit_of_one_app_does_not_leak_into_another(app, make_app, world):
    make_app(OVERTURE_API_RATE_LIMIT="2 per minute")
    key = as_key(app, world, "a_admin")
    statuses = {key.get("/members").status_code for _ in range(5)}
    assert statuses == {200}


def test_failed_key_attempts_are_limited_per_address(app, make_app, world):
    make_app()  # a second app in the process must not make this one stricter
    guesser = Api(app.test_client(), token=world.keys["a_admin"][0].prefix + "_guess")
    statuses = [guesser.get("/members").status_code for _ in range(31)]
    assert statuses[:30] == [401] * 30
    r = guesser.get("/members")
    assert r.status_code == 429
    assert r.mimetype == PROBLEM


def session_cookie_header(app, world) -> str:
    client = app.test_client()
    r = post_login(client, world.users["a_admin"].email)
    assert r.status_code == 302
    cookies = [c for c in r.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, r.headers
    return cookies[-1]


def test_session_cookie_is_httponly_and_samesite_lax(app, world):
    cookie = session_cookie_header(app, world)
    attrs = {a.strip().lower() for a in cookie.split(";")}
    assert "httponly" in attrs
    assert "samesite=lax" in attrs
    assert "secure" not in attrs


def test_session_cookie_is_secure_when_configured(make_app, world):
    secure = make_app(OVERTURE_SESSION_COOKIE_SECURE="true")
    cookie = session_cookie_header(secure, world)
    attrs = {a.strip().lower() for a in cookie.split(";")}
    assert {"secure", "httponly", "samesite=lax"} <= attrs


def test_logout_ends_the_session(app, world):
    client = app.test_client()
    token = login(client, world.users["a_admin"].email)
    assert me_status(client) == 200
    r = client.post("/logout", data={"csrf_token": token})
    assert r.status_code == 302
    assert me_status(client) == 401


def test_logout_without_csrf_token_is_refused(app, world):
    client = app.test_client()
    login(client, world.users["a_admin"].email)
    assert client.post("/logout").status_code == 400
    assert me_status(client) == 200


def production_passwords():
    """A fresh copy of the passwords module: the suite runs on cheap parameters."""
    spec = importlib.util.spec_from_file_location("production_passwords", passwords.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_passwords_are_stored_as_argon2id_at_production_cost(world):
    stored = world.users["a_admin"].password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    prod = production_passwords()
    hashed = prod.hash_password(PASSWORD)
    params = argon2.extract_parameters(hashed)
    assert params.type is argon2.Type.ID
    # OWASP's floor for argon2id: 19 MiB of memory and two passes.
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2
    assert prod.verify_password(hashed, PASSWORD)
    assert not prod.verify_password(hashed, PASSWORD + "!")
    assert not prod.verify_password(None, PASSWORD)


def disable(world, handle: str) -> None:
    user = world.users[handle]
    user.status = UserStatus.DISABLED
    db.session.commit()


def test_disabled_user_cannot_log_in(app, world):
    disable(world, "a_viewer")
    r = post_login(app.test_client(), world.users["a_viewer"].email)
    assert r.status_code == 401
    assert "Invalid email or password." in r.get_data(as_text=True)


def test_disabled_user_loses_an_open_session_at_once(app, world):
    viewer = as_user(app, world, "a_viewer")
    assert viewer.get("/me").status_code == 200
    disable(world, "a_viewer")
    assert viewer.get("/me").status_code == 401
    assert viewer.get("/members").status_code == 401


def test_disabled_users_api_keys_are_refused(app, world):
    assert as_key(app, world, "a_admin").get("/members").status_code == 200
    disable(world, "a_admin")
    assert as_key(app, world, "a_admin").get("/members").status_code == 401


@pytest.mark.parametrize("target", ["//evil.example", "//evil.example/path",
                                    "https://evil.example", "/\\evil.example",
                                    "%2F%2Fevil.example", "/%09/evil.example"])
def test_login_never_redirects_off_site(app, world, target):
    r = post_login(app.test_client(), world.users["a_admin"].email, next_url=target)
    assert r.status_code == 302
    location = r.headers["Location"]
    # Resolve it as a browser would: tabs and newlines dropped, backslashes as slashes.
    browser_view = re.sub(r"[\t\n\r]", "", location).replace("\\", "/")
    assert urlsplit(urljoin("http://localhost/", browser_view)).netloc == "localhost", location


def test_login_follows_a_same_site_next(app, world):
    r = post_login(app.test_client(), world.users["a_admin"].email, next_url="/api/v1/docs")
    assert r.status_code == 302
    assert urlsplit(r.headers["Location"]).path == "/api/v1/docs"
