"""Two-factor authentication end to end through HTTP: enrolment (pages and API), the
sign-in challenge with a TOTP code or a recovery code, and a tenant that requires it.

ASVS 5.0 requirements each test covers are listed in docs/asvs.md.
"""

from __future__ import annotations

import hashlib
import re
import time
from datetime import timedelta

from sqlalchemy import select, update

from overture.platform.audit import AuditEvent
from overture.platform.db import PLATFORM_TENANT_ID, db, scoped_to, utcnow
from overture.tenants import totp
from overture.tenants.mfa_models import MfaChallenge, UserMfa
from overture.tenants.sessions import UserSession
from tests.support import CSRF_RE, PASSWORD, as_key, as_user, csrf_token

PROBLEM = "application/problem+json"
CODE_RE = re.compile(r"\b[2-9a-z]{4}-[2-9a-z]{4}-[2-9a-z]{4}\b")


def next_code(secret: str) -> str:
    """A code of the next time step: enrolment (or a sign-in) spent this one."""
    return totp.code_at(secret, time.time() + totp.PERIOD)


def password_step(client, email: str, next_url: str | None = None):
    path = "/login" + (f"?next={next_url}" if next_url else "")
    return client.post(path, data={"email": email, "password": PASSWORD,
                                   "csrf_token": csrf_token(client)})


def challenge_form_token(client) -> str:
    page = client.get("/login/mfa")
    assert page.status_code == 200
    return CSRF_RE.search(page.get_data(as_text=True)).group(1)


def answer(client, code: str, recovery: bool = False):
    data = {"code": code, "csrf_token": challenge_form_token(client)}
    if recovery:
        data["recovery"] = "1"
    return client.post("/login/mfa", data=data)


def me(client) -> int:
    return client.get("/api/v1/me").status_code


def audit_actions(prefix: str) -> list[str]:
    with scoped_to(PLATFORM_TENANT_ID):
        return list(db.session.scalars(select(AuditEvent.action)
                                       .where(AuditEvent.action.startswith(prefix))
                                       .order_by(AuditEvent.seq)))


def sign_out(client) -> None:
    page = client.get("/account/mfa").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": CSRF_RE.search(page).group(1)})
    assert me(client) == 401


def enrol_through_pages(app, world, handle: str):
    """Sign in, enrol on /account/mfa; (client, secret, recovery codes)."""
    person = as_user(app, world, handle)
    client = person.client
    page = client.get("/account/mfa").get_data(as_text=True)
    assert "is <strong>off</strong>" in page
    token = CSRF_RE.search(page).group(1)
    page = client.post("/account/mfa/enrol", data={"csrf_token": token}).get_data(as_text=True)
    assert "<svg" in page  # the QR code is drawn here, not by a third party
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', page).group(1)
    secret = secret.replace(" ", "")
    assert len(secret) == 32

    wrong = client.post("/account/mfa/confirm", data={"csrf_token": token, "code": "000000"})
    assert wrong.status_code == 422 and "does not match" in wrong.get_data(as_text=True)
    done = client.post("/account/mfa/confirm",
                       data={"csrf_token": token, "code": totp.code_at(secret, time.time())})
    assert done.status_code == 200
    codes = sorted(set(CODE_RE.findall(done.get_data(as_text=True))))
    assert len(codes) == 10 and "shown only this once" in done.get_data(as_text=True)
    assert "is <strong>on</strong>" in client.get("/account/mfa").get_data(as_text=True)
    return client, secret, codes


def test_enrol_then_sign_in_with_a_totp_code_and_a_replayed_code_is_refused(app, world):
    client, secret, _ = enrol_through_pages(app, world, "a_builder")
    email = world.users["a_builder"].email
    db.session.expire_all()
    row = db.session.scalars(select(UserMfa)).one()
    assert secret not in row.totp_secret_sealed  # sealed under the master key
    sign_out(client)

    r = password_step(client, email, next_url="/account/mfa")
    assert r.status_code == 302 and r.headers["Location"].endswith("/login/mfa")
    cookie = client.get_cookie("mfa_challenge", path="/login/mfa")
    assert cookie.http_only and cookie.same_site == "Lax"
    stored = db.session.scalars(select(MfaChallenge.token_hash)).one()
    assert stored == hashlib.sha256(cookie.value.encode()).hexdigest()
    assert me(client) == 401  # the password alone gives no session

    code = next_code(secret)
    r = answer(client, code)
    assert r.status_code == 302 and r.headers["Location"] == "/account/mfa"
    assert me(client) == 200
    db.session.expire_all()
    assert db.session.scalars(select(UserSession.auth_method)).one() == "password+totp"
    sign_out(client)

    password_step(client, email)
    r = answer(client, code)  # the same code again: refused, and counted
    assert r.status_code == 401 and "not valid" in r.get_data(as_text=True)
    assert me(client) == 401
    db.session.expire_all()
    assert [c.attempts for c in db.session.scalars(select(MfaChallenge)
                                                    .where(MfaChallenge.used_at.is_(None)))] == [1]
    assert audit_actions("auth.mfa_failed") == ["auth.mfa_failed"]
    assert audit_actions("mfa.") == ["mfa.enrolled"]


def test_a_recovery_code_signs_in_once_and_wrong_codes_end_the_challenge(app, world):
    client, _, codes = enrol_through_pages(app, world, "a_admin")
    email = world.users["a_admin"].email
    sign_out(client)

    password_step(client, email)
    r = answer(client, codes[0].upper().replace("-", " "), recovery=True)  # as people type
    assert r.status_code == 302 and me(client) == 200
    assert "9 unused recovery codes" in client.get("/account/mfa").get_data(as_text=True)
    sign_out(client)

    password_step(client, email)
    r = answer(client, codes[0], recovery=True)
    assert r.status_code == 401 and "used already" in r.get_data(as_text=True)
    for _ in range(3):
        assert answer(client, "123456").status_code == 401
    token = challenge_form_token(client)
    last = client.post("/login/mfa", data={"code": codes[1], "csrf_token": token})
    assert last.status_code == 302  # the fifth try, right, still counts

    sign_out(client)
    password_step(client, email)
    for _ in range(4):
        assert answer(client, "123456").status_code == 401
    token = challenge_form_token(client)
    dead = client.post("/login/mfa", data={"code": "654321", "csrf_token": token})
    assert dead.status_code == 410 and "Sign in again" in dead.get_data(as_text=True)
    r = client.post("/login/mfa", data={"code": codes[2], "csrf_token": token})
    assert r.status_code == 410 and me(client) == 401  # even a right code, now
    assert audit_actions("auth.mfa_recovery") == ["auth.mfa_recovery_code_used"] * 2


def test_the_challenge_cookie_alone_gives_no_session(app, world):
    client, _, _ = enrol_through_pages(app, world, "b_admin")
    sign_out(client)
    password_step(client, world.users["b_admin"].email)
    stolen = client.get_cookie("mfa_challenge", path="/login/mfa").value

    other = app.test_client()
    other.set_cookie("mfa_challenge", stolen, path="/login/mfa")
    assert other.get("/login/mfa").status_code == 200
    for path in ("/api/v1/me", "/api/v1/me/mfa", "/api/v1/tenant"):
        assert other.get(path).status_code == 401
    assert other.get("/account/mfa").status_code == 302
    r = other.post("/login/mfa", data={"code": "", "csrf_token": challenge_form_token(other)})
    assert r.status_code == 401 and me(other) == 401

    db.session.execute(update(MfaChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert other.get("/login/mfa").status_code == 410


def test_the_api_enrols_and_turning_off_needs_the_password_again(app, world):
    person = as_user(app, world, "nw_admin")
    assert person.get("/me/mfa").get_json()["enabled"] is False
    begun = person.post("/me/mfa/totp")
    assert begun.status_code == 201
    body = begun.get_json()
    assert body["uri"].startswith("otpauth://totp/") and body["svg"].lstrip().startswith("<")
    r = person.post("/me/mfa/totp/confirm", json={"code": "000000"})
    assert r.status_code == 422 and r.mimetype == PROBLEM
    r = person.post("/me/mfa/totp/confirm",
                    json={"code": totp.code_at(body["secret"], time.time())})
    assert r.status_code == 200 and len(r.get_json()["recovery_codes"]) == 10
    assert person.get("/me/mfa").get_json()["recovery_codes_left"] == 10

    key = as_key(app, world, "nw_admin")
    assert key.get("/me/mfa").status_code == 403  # an API key manages no one's factor

    db.session.execute(update(UserSession).values(authenticated_at=utcnow()
                                                  - timedelta(minutes=11)))
    db.session.commit()
    r = person.delete("/me/mfa")
    assert r.status_code == 403
    assert r.get_json()["type"] == "urn:overture:problem:reauthentication-required"
    assert person.post("/me/mfa/recovery-codes").status_code == 403
    assert person.post("/me/mfa/totp").status_code == 403  # nor may it enrol anew
    assert person.post("/me/reauthenticate", json={"password": PASSWORD}).status_code == 204
    fresh = person.post("/me/mfa/recovery-codes").get_json()["recovery_codes"]
    assert len(fresh) == 10
    assert person.delete("/me/mfa").status_code == 204
    assert person.get("/me/mfa").get_json()["enabled"] is False
    assert audit_actions("mfa.") == ["mfa.enrolled", "mfa.recovery_codes_regenerated",
                                     "mfa.removed"]


def test_a_tenant_that_requires_mfa_makes_its_staff_enrol(app, world):
    owner = as_user(app, world, "a_owner", "a")
    r = owner.patch("/tenant", json={"mfa_required": True})
    assert r.status_code == 200 and r.get_json()["mfa_required"] is True
    builder = as_user(app, world, "a_builder", "a")
    r = builder.get("/tenant")
    assert r.status_code == 403 and r.mimetype == PROBLEM
    problem = r.get_json()
    assert problem["type"] == "urn:overture:problem:mfa-enrolment-required"
    assert "/account/mfa" in problem["detail"]
    assert as_user(app, world, "b_admin", "b").get("/tenant").status_code == 200  # not B
    assert as_key(app, world, "a_admin", "a").get("/tenant").status_code == 200  # keys pass
    assert builder.client.get("/account/mfa").status_code == 200  # enrolling is never blocked

    secret = builder.post("/me/mfa/totp").get_json()["secret"]
    builder.post("/me/mfa/totp/confirm", json={"code": totp.code_at(secret, time.time())})
    assert builder.get("/tenant").status_code == 200
    with scoped_to(world.tenants["a"].id):
        changed = db.session.scalars(select(AuditEvent.details).where(
            AuditEvent.action == "tenant.mfa_required_changed")).all()
    assert changed == [{"mfa_required": True}]


def test_pages_send_unenrolled_staff_to_enrol(app):
    """The page answer to the policy: a redirect, not a JSON problem."""
    from overture.tenants.mfa import MfaEnrolmentRequired

    with app.test_request_context("/some/page", headers={"Accept": "text/html"}):
        response = app.handle_user_exception(MfaEnrolmentRequired("enrol"))
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/account/mfa?required=1")


def test_a_master_key_rotation_reseals_the_totp_seeds(world, database):
    from overture.tenants import mfa, vault_rotation
    from overture.web.app import create_app
    from tests.conftest import pg_settings
    from tests.vault_support import master_entry, restored_broker, superuser

    def wipe_probes() -> None:
        with superuser(database) as conn:
            conn.execute("TRUNCATE user_mfa, master_key_probes CASCADE")

    k1, k2 = master_entry("k1"), master_entry("k2")
    user = world.users["a_viewer"]
    wipe_probes()
    try:
        with restored_broker():
            with create_app(pg_settings(database, OVERTURE_MASTER_KEY=k1)).app_context():
                secret = mfa.begin_enrolment(user).secret
                mfa.confirm(user, totp.code_at(secret, time.time()))
                db.session.commit()
            with create_app(pg_settings(database, OVERTURE_MASTER_KEY=f"{k2},{k1}")) \
                    .app_context():
                assert vault_rotation.rotate_master().retired_kids == ["k1"]
            with create_app(pg_settings(database, OVERTURE_MASTER_KEY=k2)).app_context():
                assert mfa.verify(user, next_code(secret)) == "totp"  # opens without k1
    finally:
        wipe_probes()


def test_turning_off_on_the_page_asks_for_the_password(app, world):
    client, _, _ = enrol_through_pages(app, world, "b_viewer")
    token = CSRF_RE.search(client.get("/account/mfa").get_data(as_text=True)).group(1)
    r = client.post("/account/mfa/disable", data={"csrf_token": token, "password": "nope"})
    assert r.status_code == 422 and "not your password" in r.get_data(as_text=True)
    assert client.post("/account/mfa/disable",
                       data={"csrf_token": token, "password": PASSWORD}).status_code == 302
    assert "is <strong>off</strong>" in client.get("/account/mfa").get_data(as_text=True)
    assert audit_actions("auth.reauth") == ["auth.reauthentication_failed",
                                            "auth.reauthenticated"]
    assert audit_actions("mfa.") == ["mfa.enrolled", "mfa.removed"]
