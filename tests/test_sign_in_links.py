"""Sign-in links (magic links) by email (issue 13), through the HTTP pages. ASVS 5.0:
V6.4.1 (single use, 15 minutes), V6.3.x (the answer does not tell whether an address
has an account), V7.2.4 (a new session id at sign-in)."""

from __future__ import annotations

import pytest

from tests.recovery_support import (
    SENT,
    link_in,
    mails,
    outbox,  # noqa: F401  (fixture)
    platform_events,
    post_form,
    text,
)

pytestmark = pytest.mark.usefixtures("outbox")


def test_sign_in_link_signs_in_once_and_only_after_the_button(app, world):
    user = world.users["a_operator"]
    browser = app.test_client()
    asked = post_form(browser, "/login/link", email=user.email)
    assert asked.status_code == 200 and SENT in text(asked)
    [message] = mails(user.email)
    assert message.template == "sign_in_link"
    path = link_in(message)

    for _ in range(2):  # a mail scanner fetching the link uses nothing up
        shown = browser.get(path)
        assert shown.status_code == 200 and f"Sign in as {user.email}" in text(shown)
    assert browser.get("/api/v1/me").status_code == 401

    signed_in = post_form(browser, path)
    assert signed_in.status_code == 302
    assert browser.get("/api/v1/me").get_json()["user"]["email"] == user.email
    again = post_form(app.test_client(), path)
    assert again.status_code == 410 and "already been used" in text(again)
    logins = [(action, details) for action, _, details in platform_events("auth.")]
    assert logins == [("auth.link_requested", {"email_known": True}),
                      ("auth.login", {"method": "link"})]


def test_sign_in_link_request_answers_the_same_for_unknown_addresses(app, world):
    browser = app.test_client()
    known = post_form(browser, "/login/link", email=world.users["b_admin"].email)
    unknown = post_form(browser, "/login/link", email="nobody@people.example.com")
    assert (unknown.status_code, text(unknown)) == (known.status_code, text(known))
    assert [m.to_address for m in mails()] == [world.users["b_admin"].email]
    assert "Email me a sign-in link" in text(app.test_client().get("/login"))


def test_a_reset_link_does_not_sign_in_as_a_sign_in_link(app, world):
    user = world.users["b_viewer"]
    browser = app.test_client()
    post_form(browser, "/password/forgot", email=user.email)
    token = link_in(mails(user.email)[0]).rsplit("/", 1)[1]
    refused = post_form(browser, f"/login/link/{token}")
    assert refused.status_code == 404 and "sign-in link is not valid" in text(refused)
    assert browser.get("/api/v1/me").status_code == 401
