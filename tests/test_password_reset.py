"""Password reset by an emailed single-use link (issue 13), through the HTTP pages and
the API. ASVS 5.0: V6.4.1 (reset links are single use, short-lived), V6.3.x (no account
enumeration through the answer), V7.4.3 (a reset ends every other session), V6.2.1
(the policy applies to the new password)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from overture.platform.db import db
from overture.tenants import account_tokens
from overture.tenants.account_tokens import TokenPurpose
from tests.recovery_support import (
    SENT,
    link_in,
    mails,
    outbox,  # noqa: F401  (fixture)
    platform_events,
    post_form,
    text,
)
from tests.support import PASSWORD, login

pytestmark = pytest.mark.usefixtures("outbox")
NEW_PASSWORD = "plum tractor violet seventeen"


def me_status(client) -> int:
    return client.get("/api/v1/me").status_code


def test_reset_link_sets_a_password_signs_in_and_ends_every_other_session(app, world):
    email = world.users["a_viewer"].email
    kept_cookie = app.test_client()
    login(kept_cookie, email)
    assert me_status(kept_cookie) == 200

    browser = app.test_client()
    asked = post_form(browser, "/password/forgot", email=email.upper())
    assert asked.status_code == 200 and SENT in text(asked)
    [message] = mails(email)
    assert message.template == "password_reset"
    assert message.subject == "Reset your Overture password"
    path = link_in(message)
    assert path.startswith("/password/reset/")

    form = browser.get(path)
    assert form.status_code == 200 and email in text(form)
    assert form.headers["Cache-Control"] == "no-store"
    weak = post_form(browser, path, password="short", confirm="short")
    assert weak.status_code == 422 and "at least 12 characters" in text(weak)
    common = post_form(browser, path, password="password1234", confirm="password1234")
    assert common.status_code == 422 and "most common passwords" in text(common)
    assert browser.get(path).status_code == 200, "a refused password does not use the link up"

    done = post_form(browser, path, password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert done.status_code == 302
    assert me_status(browser) == 200, "the reset signs the person in"
    assert me_status(kept_cookie) == 401, "every session from before the reset has ended"

    again = post_form(browser, path, password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert again.status_code == 410 and "already been used" in text(again)
    assert post_form(app.test_client(), "/login", email=email,
                     password=PASSWORD).status_code == 401
    assert post_form(app.test_client(), "/login", email=email,
                     password=NEW_PASSWORD).status_code == 302
    actions = [(action, target) for action, target, _ in platform_events("auth.password_reset")]
    user_id = str(world.users["a_viewer"].id)
    assert actions == [("auth.password_reset_requested", user_id),
                       ("auth.password_reset", user_id)]


def test_reset_request_answers_the_same_for_unknown_and_inactive_addresses(app, world):
    browser = app.test_client()
    known = post_form(browser, "/password/forgot", email=world.users["a_admin"].email)
    unknown = post_form(browser, "/password/forgot", email="nobody@people.example.com")
    assert (unknown.status_code, text(unknown)) == (known.status_code, text(known))
    assert [m.to_address for m in mails()] == [world.users["a_admin"].email]
    details = [d for _, _, d in platform_events("auth.password_reset_requested")]
    assert details == [{"email_known": True}, {"email_known": False}]
    bad = post_form(browser, "/password/forgot", email="not an address")
    assert bad.status_code == 422 and "email address" in text(bad)


def test_expired_withdrawn_foreign_and_unknown_links_say_why(app, world):
    user = world.users["a_builder"]
    browser = app.test_client()
    for _ in range(2):
        post_form(browser, "/password/forgot", email=user.email)
    first, second = (link_in(m) for m in mails(user.email))
    withdrawn = browser.get(first)
    assert withdrawn.status_code == 410 and "withdrawn" in text(withdrawn)
    assert browser.get(second).status_code == 200, "the newest link works"

    _, expired = account_tokens.issue(TokenPurpose.PASSWORD_RESET, user_id=user.id,
                                      lifetime=timedelta(seconds=-1))
    _, sign_in = account_tokens.issue(TokenPurpose.SIGN_IN_LINK, user_id=user.id)
    db.session.commit()
    answer = post_form(browser, f"/password/reset/{expired}", password=NEW_PASSWORD,
                       confirm=NEW_PASSWORD)
    assert answer.status_code == 410 and "has expired" in text(answer)
    for token in (sign_in, "not-a-token"):
        answer = browser.get(f"/password/reset/{token}")
        assert answer.status_code == 404 and "is not valid" in text(answer)
        assert "Ask for a new link" in text(answer)


def test_reset_requests_are_rate_limited_with_a_readable_page(app, world):
    browser = app.test_client()
    answers = [post_form(browser, "/password/forgot", email="someone@people.example.com")
               for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert "Too many requests" in text(answers[-1])
    assert answers[-1].mimetype == "text/html"


def test_reset_through_the_api(app, world):
    user = world.users["b_viewer"]
    api = app.test_client()
    for address in (user.email, "nobody@people.example.com"):
        answer = api.post("/api/v1/auth/password-reset", json={"email": address})
        assert answer.status_code == 202 and answer.get_json() == {"status": "accepted"}
    [message] = mails()
    token = link_in(message).rsplit("/", 1)[1]
    weak = api.post("/api/v1/auth/password-reset/confirm", json={"token": token,
                                                               "password": "short"})
    assert weak.status_code == 422 and weak.get_json()["errors"][0]["field"] == "password"
    done = api.post("/api/v1/auth/password-reset/confirm", json={"token": token,
                                                               "password": NEW_PASSWORD})
    assert done.status_code == 204
    again = api.post("/api/v1/auth/password-reset/confirm", json={"token": token,
                                                                "password": NEW_PASSWORD})
    assert again.status_code == 410 and again.get_json()["reason"] == "used"
    assert post_form(app.test_client(), "/login", email=user.email,
                     password=NEW_PASSWORD).status_code == 302
