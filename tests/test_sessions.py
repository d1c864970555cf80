"""Signed-in sessions live server-side: they rotate at sign-in, end at sign-out, expire
when idle or old, and can be listed and ended by their user or a platform admin.

ASVS 5.0 requirements each test covers are listed in docs/asvs.md.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import dramatiq
import pytest
from sqlalchemy import select, update

from overture.platform.db import PLATFORM_TENANT_ID, db, utcnow
from overture.tenants.sessions import UserSession
from overture.web.app import create_app
from tests.conftest import pg_settings
from tests.support import (
    PASSWORD,
    Api,
    as_key,
    csrf_token,
    login,
    signed_in_csrf_token,
)

PROBLEM = "application/problem+json"
OPAQUE_ID = re.compile(r"[A-Za-z0-9_-]{43}")


def session_cookie(client) -> str | None:
    cookie = client.get_cookie("session")
    return cookie.value if cookie else None


def client_with_cookie(app, value: str):
    client = app.test_client()
    client.set_cookie("session", value)
    return client


def person(app, world, handle: str) -> Api:
    client = app.test_client()
    return Api(client, csrf=login(client, world.users[handle].email))


def me_status(client) -> int:
    return client.get("/api/v1/me").status_code


def login_status(app, email: str, password: str = PASSWORD) -> int:
    client = app.test_client()
    return client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": csrf_token(client)}).status_code


def rows_of(world, handle: str) -> list[UserSession]:
    db.session.expire_all()
    return list(db.session.scalars(select(UserSession)
                                   .where(UserSession.user_id == world.users[handle].id)
                                   .order_by(UserSession.created_at)))


def set_times(cookie: str, **times) -> None:
    digest = hashlib.sha256(cookie.encode()).hexdigest()
    db.session.execute(update(UserSession).where(UserSession.token_hash == digest)
                       .values(**times))
    db.session.commit()


def audit_actions(prefix: str) -> list[tuple[str, str | None, dict]]:
    from overture.platform.audit import AuditEvent
    from overture.platform.db import scoped_to

    with scoped_to(PLATFORM_TENANT_ID):
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action.startswith(prefix))
                                    .order_by(AuditEvent.seq)).all()
        return [(e.action, e.target_id, e.details) for e in events]


@pytest.fixture
def make_app(database):
    previous = dramatiq.get_broker()  # create_app installs its broker process-wide
    yield lambda **overrides: create_app(pg_settings(database, **overrides))
    dramatiq.set_broker(previous)


# --------------------------------------------------------------------------- sign-in, sign-out


def test_a_cookie_kept_from_before_logout_is_refused_after_logout(app, world):
    client = app.test_client()
    token = login(client, world.users["a_admin"].email)
    kept = session_cookie(client)
    assert me_status(client) == 200
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302

    replayed = client_with_cookie(app, kept)
    r = replayed.get("/api/v1/me")
    assert r.status_code == 401 and r.mimetype == PROBLEM
    page = client_with_cookie(app, kept).get("/")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    (row,) = rows_of(world, "a_admin")
    assert row.revoked_at is not None and row.revoked_reason == "signed_out"


def test_the_cookie_holds_an_opaque_id_and_the_database_only_its_hash(app, world):
    client = app.test_client()
    login(client, world.users["a_admin"].email)
    cookie = session_cookie(client)
    assert OPAQUE_ID.fullmatch(cookie), cookie  # 32 random bytes, nothing readable
    (row,) = rows_of(world, "a_admin")
    assert row.token_hash == hashlib.sha256(cookie.encode()).hexdigest()
    stored = " ".join(str(getattr(row, c.key)) for c in UserSession.__table__.columns)
    assert cookie not in stored


def test_a_signed_cookie_naming_a_user_signs_no_one_in(app, world):
    """A Flask signed cookie with Flask-Login's keys (what sessions were before, or what
    a leaked SECRET_KEY could forge) is not a session."""
    forged = app.session_interface.get_signing_serializer(app).dumps(
        {"_user_id": str(world.users["a_admin"].id), "_fresh": True})
    assert me_status(client_with_cookie(app, forged)) == 401


def test_signing_in_again_issues_a_new_id_and_ends_the_old_session(app, world):
    client = app.test_client()
    login(client, world.users["a_admin"].email)
    first = session_cookie(client)
    r = client.post("/login", data={"email": world.users["b_admin"].email,
                                    "password": PASSWORD,
                                    "csrf_token": signed_in_csrf_token(client)})
    assert r.status_code == 302
    second = session_cookie(client)
    assert second != first
    assert client.get("/api/v1/me").get_json()["user"]["email"] == world.users["b_admin"].email
    assert me_status(client_with_cookie(app, first)) == 401
    assert rows_of(world, "a_admin")[0].revoked_reason == "replaced"


def test_nothing_from_before_sign_in_survives_it(app, world):
    """Session fixation: an attacker who planted their pre-sign-in cookie and knows its
    CSRF token gets neither the session nor a usable token once the victim signs in."""
    attacker = app.test_client()
    planted_csrf = csrf_token(attacker)
    planted_cookie = session_cookie(attacker)

    victim = client_with_cookie(app, planted_cookie)
    r = victim.post("/login", data={"email": world.users["a_admin"].email,
                                    "password": PASSWORD, "csrf_token": planted_csrf})
    assert r.status_code == 302
    assert session_cookie(victim) != planted_cookie
    assert me_status(client_with_cookie(app, planted_cookie)) == 401
    forged = Api(victim, csrf=planted_csrf).post("/api-keys", json={"name": "planted"})
    assert forged.status_code == 400
    assert forged.get_json()["type"] == "urn:overture:problem:csrf-failed"
    fresh = Api(victim, csrf=signed_in_csrf_token(victim)).post("/api-keys",
                                                               json={"name": "mine"})
    assert fresh.status_code == 201, fresh.get_json()


def test_what_a_request_changes_in_the_session_is_kept_server_side(app, world):
    """Flask-Login marks a session no longer fresh when its browser looks different;
    the change lands in the row, not in the cookie."""
    client = app.test_client()
    login(client, world.users["a_admin"].email)
    cookie = session_cookie(client)
    assert '"_fresh":true' in rows_of(world, "a_admin")[0].data
    assert client.get("/api/v1/me", headers={"User-Agent": "another browser"}).status_code \
        == 200
    assert '"_fresh":false' in rows_of(world, "a_admin")[0].data
    assert session_cookie(client) == cookie


# --------------------------------------------------------------------------- lifetimes


def test_an_idle_session_ends(app, world):
    client = app.test_client()
    login(client, world.users["a_admin"].email)
    cookie = session_cookie(client)
    assert me_status(client) == 200
    past = utcnow() - timedelta(seconds=1)
    set_times(cookie, last_seen_at=past - timedelta(minutes=120), idle_expires_at=past)
    assert me_status(client) == 401
    page = client_with_cookie(app, cookie).get("/")
    assert page.status_code == 302 and "/login" in page.headers["Location"]


def test_an_active_session_ends_at_its_absolute_lifetime(app, world):
    client = app.test_client()
    login(client, world.users["a_admin"].email)
    now = utcnow()
    set_times(session_cookie(client), last_seen_at=now, idle_expires_at=now + timedelta(hours=1),
              expires_at=now - timedelta(seconds=1))
    assert me_status(client) == 401


def test_lifetimes_follow_the_settings_and_last_seen_moves_at_most_once_a_minute(
        make_app, world):
    short = make_app(OVERTURE_SESSION_IDLE_MINUTES="5", OVERTURE_SESSION_MAX_HOURS="2")
    client = short.test_client()
    login(client, world.users["a_admin"].email)
    (row,) = rows_of(world, "a_admin")
    assert row.idle_expires_at - row.last_seen_at == timedelta(minutes=5)
    assert row.expires_at - row.last_seen_at == timedelta(hours=2)

    seen = row.last_seen_at
    for _ in range(3):
        assert me_status(client) == 200
    assert rows_of(world, "a_admin")[0].last_seen_at == seen  # no write per request

    earlier = utcnow() - timedelta(minutes=2)
    set_times(session_cookie(client), last_seen_at=earlier,
              idle_expires_at=earlier + timedelta(minutes=5))
    assert me_status(client) == 200
    (row,) = rows_of(world, "a_admin")
    assert row.last_seen_at > earlier + timedelta(minutes=1)
    assert row.idle_expires_at - row.last_seen_at == timedelta(minutes=5)


# --------------------------------------------------------------------------- own sessions


def test_a_person_lists_their_live_sessions_with_the_current_one_marked(app, world):
    laptop, phone = person(app, world, "a_admin"), person(app, world, "a_admin")
    person(app, world, "b_admin")  # someone else's session is not listed
    r = laptop.get("/me/sessions")
    assert r.status_code == 200, r.get_json()
    items = r.get_json()["items"]
    assert len(items) == 2
    assert sorted(i["current"] for i in items) == [False, True]
    rows = {str(row.id) for row in rows_of(world, "a_admin")}
    assert {i["id"] for i in items} == rows
    assert all(i["auth_method"] == "password" and i["ip"] and i["expires_at"] for i in items)
    (current,) = [i["id"] for i in phone.get("/me/sessions").get_json()["items"] if i["current"]]
    assert current != next(i["id"] for i in items if i["current"])


def test_ending_one_session_leaves_the_others(app, world):
    laptop, phone = person(app, world, "a_admin"), person(app, world, "a_admin")
    others = [i["id"] for i in laptop.get("/me/sessions").get_json()["items"]
              if not i["current"]]
    r = laptop.delete(f"/me/sessions/{others[0]}")
    assert r.status_code == 204
    assert me_status(phone.client) == 401
    assert me_status(laptop.client) == 200
    assert [i["current"] for i in laptop.get("/me/sessions").get_json()["items"]] == [True]
    assert ("session.revoked", others[0],
            {"user_id": str(world.users["a_admin"].id)}) in audit_actions("session.")
    # Ended, unknown or another person's sessions are not found.
    stranger = person(app, world, "b_admin")
    (theirs,) = [i["id"] for i in stranger.get("/me/sessions").get_json()["items"]]
    for missing in (others[0], theirs, "not-an-id"):
        r = laptop.delete(f"/me/sessions/{missing}")
        assert r.status_code == 404 and r.mimetype == PROBLEM
    assert me_status(stranger.client) == 200


def test_ending_the_current_session_signs_out(app, world):
    laptop = person(app, world, "a_admin")
    (mine,) = [i["id"] for i in laptop.get("/me/sessions").get_json()["items"]]
    assert laptop.delete(f"/me/sessions/{mine}").status_code == 204
    assert me_status(laptop.client) == 401


def test_ending_a_session_needs_a_recent_sign_in_or_the_password_again(app, world):
    laptop, phone = person(app, world, "a_admin"), person(app, world, "a_admin")
    set_times(session_cookie(laptop.client), authenticated_at=utcnow() - timedelta(minutes=11))
    (other,) = [i["id"] for i in laptop.get("/me/sessions").get_json()["items"]
                if not i["current"]]
    r = laptop.delete(f"/me/sessions/{other}")
    assert r.status_code == 403 and r.mimetype == PROBLEM
    assert r.get_json()["type"] == "urn:overture:problem:reauthentication-required"
    r = laptop.post("/me/reauthenticate", json={"password": "not my password at all"})
    assert r.status_code == 422
    assert r.get_json()["errors"] == [{"field": "password",
                                       "message": "is not your current password"}]
    assert laptop.delete(f"/me/sessions/{other}").status_code == 403
    assert me_status(phone.client) == 200

    assert laptop.post("/me/reauthenticate", json={"password": PASSWORD}).status_code == 204
    assert laptop.delete(f"/me/sessions/{other}").status_code == 204
    assert me_status(phone.client) == 401
    assert [a for a, *_ in audit_actions("auth.reauth")] == ["auth.reauthentication_failed",
                                                             "auth.reauthenticated"]


def test_an_api_key_cannot_see_or_end_sessions_or_change_the_password(app, world):
    person(app, world, "a_admin")
    key = as_key(app, world, "a_admin")
    r = key.get("/me/sessions")
    assert r.status_code == 403 and r.mimetype == PROBLEM
    (row,) = rows_of(world, "a_admin")
    assert key.delete(f"/me/sessions/{row.id}").status_code == 403
    assert key.post("/me/password", json={"current_password": PASSWORD,
                                          "new_password": "a fresh long passphrase"}
                    ).status_code == 403
    assert rows_of(world, "a_admin")[0].revoked_at is None


def test_sessions_need_a_signed_in_caller(app, world):
    assert app.test_client().get("/api/v1/me/sessions").status_code == 401


# --------------------------------------------------------------------------- password change


def test_changing_the_password_ends_the_other_sessions_and_keeps_this_one(app, world):
    laptop, phone = person(app, world, "a_viewer"), person(app, world, "a_viewer")
    new = "tandem kayak at dawn"
    r = laptop.post("/me/password", json={"current_password": PASSWORD, "new_password": new})
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {"other_sessions_ended": 1}
    assert me_status(laptop.client) == 200
    assert me_status(phone.client) == 401
    email = world.users["a_viewer"].email
    assert login_status(app, email, PASSWORD) == 401
    assert login_status(app, email, new) == 302
    assert [a for a, *_ in audit_actions("auth.password")] == ["auth.password_changed"]


def test_a_wrong_current_password_changes_nothing(app, world):
    laptop, phone = person(app, world, "a_viewer"), person(app, world, "a_viewer")
    r = laptop.post("/me/password", json={"current_password": "not my password at all",
                                          "new_password": "tandem kayak at dawn"})
    assert r.status_code == 422 and r.mimetype == PROBLEM
    assert r.get_json()["errors"] == [{"field": "current_password",
                                       "message": "is not your current password"}]
    assert me_status(phone.client) == 200
    assert login_status(app, world.users["a_viewer"].email) == 302
    assert [a for a, *_ in audit_actions("auth.password")] == ["auth.password_change_failed"]


def test_a_weak_new_password_is_refused_with_the_reason(app, world):
    laptop = person(app, world, "a_viewer")
    for weak, reason in (("short one", "at least 12 characters"),
                         ("PasswordPassword", "most common passwords")):
        r = laptop.post("/me/password", json={"current_password": PASSWORD,
                                              "new_password": weak})
        assert r.status_code == 422, r.get_json()
        (error,) = r.get_json()["errors"]
        assert error["field"] == "new_password" and reason in error["message"]
    assert login_status(app, world.users["a_viewer"].email) == 302


def test_guessing_the_password_from_a_session_is_rate_limited(make_app, world):
    """Password changes and reauthentications share one allowance per user."""
    limited = make_app(OVERTURE_LOGIN_RATE_LIMIT="2 per minute")
    client = limited.test_client()
    laptop = Api(client, csrf=login(client, world.users["a_viewer"].email))
    wrong = {"current_password": "guess number one", "new_password": "tandem kayak at dawn"}
    assert laptop.post("/me/password", json=wrong).status_code == 422
    assert laptop.post("/me/reauthenticate", json={"password": "guess two"}).status_code == 422
    r = laptop.post("/me/password", json={**wrong, "current_password": PASSWORD})
    assert r.status_code == 429 and r.mimetype == PROBLEM
    assert laptop.post("/me/reauthenticate", json={"password": PASSWORD}).status_code == 429
    assert login_status(limited, world.users["a_viewer"].email) == 302  # unchanged


def test_the_password_change_needs_the_csrf_token(app, world):
    laptop = person(app, world, "a_viewer")
    r = Api(laptop.client).post("/me/password", json={"current_password": PASSWORD,
                                                      "new_password": "tandem kayak at dawn"})
    assert r.status_code == 400
    assert r.get_json()["type"] == "urn:overture:problem:csrf-failed"


# --------------------------------------------------------------------------- platform admins


def test_an_admin_signs_a_user_out_everywhere(app, world):
    laptop, phone = person(app, world, "a_viewer"), person(app, world, "a_viewer")
    bystander = person(app, world, "a_admin")
    admin = person(app, world, "platform")
    target = world.users["a_viewer"].id
    r = admin.post(f"/users/{target}/sign-out-everywhere")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["sessions_ended"] == 2
    assert me_status(laptop.client) == 401 and me_status(phone.client) == 401
    assert me_status(bystander.client) == 200 and me_status(admin.client) == 200
    assert ("user.signed_out_everywhere", str(target), {"sessions_ended": 2}) \
        in audit_actions("user.")
    assert login_status(app, world.users["a_viewer"].email) == 302  # may sign in again


def test_an_admin_disables_a_user_whose_sessions_end_and_enables_them_again(app, world):
    viewer = person(app, world, "a_viewer")
    admin = person(app, world, "platform")
    target = world.users["a_viewer"].id
    r = admin.post(f"/users/{target}/disable")
    assert r.status_code == 200 and r.get_json()["status"] == "disabled"
    assert me_status(viewer.client) == 401
    assert rows_of(world, "a_viewer")[0].revoked_reason == "user_disabled"
    assert login_status(app, world.users["a_viewer"].email) == 401

    r = admin.post(f"/users/{target}/enable")
    assert r.status_code == 200 and r.get_json()["status"] == "active"
    assert me_status(viewer.client) == 401  # an ended session stays ended
    assert login_status(app, world.users["a_viewer"].email) == 302
    assert [a for a, *_ in audit_actions("user.")] == ["user.disabled", "user.enabled"]


def test_only_platform_admins_manage_users_and_not_themselves(app, world):
    target = world.users["a_viewer"].id
    viewer = person(app, world, "a_viewer")
    tenant_admin = person(app, world, "a_admin")
    for path in ("sign-out-everywhere", "disable", "enable"):
        r = tenant_admin.post(f"/users/{target}/{path}")
        assert r.status_code == 403 and r.mimetype == PROBLEM
        assert as_key(app, world, "a_admin").post(f"/users/{target}/{path}").status_code == 403
    assert me_status(viewer.client) == 200
    admin = person(app, world, "platform")
    r = admin.post(f"/users/{world.users['platform'].id}/disable")
    assert r.status_code == 409 and r.mimetype == PROBLEM
    assert admin.post("/users/00000000-0000-0000-0000-00000000abcd/disable").status_code == 404
    assert me_status(admin.client) == 200
