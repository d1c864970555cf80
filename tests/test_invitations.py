"""Invitations with consent: inviting makes only a pending, emailed invitation; the person
behind the address accepts it (a new account, or one click after signing in).

ASVS 5.0 requirements each test covers are listed in docs/asvs.md.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, update

from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to, utcnow
from overture.platform.mail import OutboxMessage
from overture.tenants import account_tokens
from overture.tenants.account_tokens import AccountToken, TokenPurpose
from overture.tenants.users import find_user_by_email
from tests.support import (
    CSRF_RE,
    PASSWORD,
    Api,
    as_key,
    as_user,
    csrf_token,
    signed_in_csrf_token,
)

LINK_RE = re.compile(r"https?://[^/\s]+(/invite/[A-Za-z0-9_-]+)")
GOOD = "lantern over the quiet harbour"


def invite(api, email: str, role: str = "viewer", **kw):
    r = api.post("/members", json={"email": email, "role": role}, **kw)
    assert r.status_code == 202, r.get_json()
    return r


def link_for(email: str) -> str:
    """The path of the link in the latest invitation mailed to `email`."""
    db.session.rollback()
    message = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.to_address == email,
                                    OutboxMessage.template == "invitation")
        .order_by(OutboxMessage.created_at.desc())).first()
    assert message is not None, f"no invitation mailed to {email}"
    (path,) = set(LINK_RE.findall(message.text_body))
    assert path in message.html_body
    return path


def form_csrf(page) -> str:
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, "the page carries a form"
    return match.group(1)


def member_emails(api, tenant: str | None = None) -> set[str]:
    kw = {"tenant": tenant} if tenant else {}
    items = api.get("/members", query_string={"limit": 200}, **kw).get_json()["items"]
    return {m["user"]["email"] for m in items}


def text(response) -> str:
    return response.get_data(as_text=True)


def test_inviting_an_existing_user_elsewhere_adds_nothing_and_reveals_nothing(app, world):
    admin = as_user(app, world, "a_admin")
    b_owner, root = world.users["b_owner"], world.users["platform"]
    answers = [invite(admin, email) for email in (b_owner.email, root.email,
                                                  "nobody.yet@example.com")]
    shapes = [sorted(r.get_json()) for r in answers]
    assert shapes[0] == shapes[1] == shapes[2]
    for r, email in zip(answers, (b_owner.email, root.email, "nobody.yet@example.com"),
                        strict=True):
        body = r.get_json()
        assert (body["email"], body["status"], body["send_count"]) == (email, "pending", 1)
        assert r.headers["Content-Length"] == str(len(r.data))
        for secret in (str(b_owner.id), str(root.id), "b_owner", "Root", "platform_admin",
                       world.tid("b")):
            assert secret not in text(r)
    # Lengths differ only by the address typed: the same fields, the same kind of values.
    lengths = {len(r.data) - len(r.get_json()["email"]) for r in answers}
    assert len(lengths) == 1, lengths
    assert b_owner.email not in member_emails(admin)
    assert root.email not in member_emails(admin)
    assert member_emails(as_user(app, world, "b_admin")) >= {b_owner.email}


def test_an_existing_user_joins_with_one_click_and_keeps_being_asked_which_tenant(app, world):
    admin = as_user(app, world, "a_admin")
    person = world.users["b_viewer"]  # one membership (B): B is where they act by default
    invite(admin, person.email, "builder")
    link = link_for(person.email)

    anonymous = app.test_client()
    page = anonymous.get(link)
    assert page.status_code == 200
    assert "Workspace A" in text(page) and "builder" in text(page) and "a_admin" in text(page)
    assert f"/login?next={link}" in text(page).replace("%2F", "/")

    signed_in = anonymous.post(f"/login?next={link}", data={
        "email": person.email, "password": PASSWORD, "csrf_token": csrf_token(anonymous)})
    assert signed_in.headers["Location"].endswith(link), "back to the invitation"
    viewer = Api(anonymous, csrf=signed_in_csrf_token(anonymous))
    assert viewer.get("/tenant").get_json()["id"] == world.tid("b")
    page = viewer.client.get(link)
    assert "Join Workspace A" in text(page)
    joined = viewer.client.post(link, data={"csrf_token": form_csrf(page)})
    assert joined.status_code == 200, text(joined)
    assert "You joined Workspace A" in text(joined)

    member = next(m for m in admin.get("/members").get_json()["items"]
                  if m["user"]["email"] == person.email)
    assert member["role"] == "builder"
    # Joining switched nothing: with two tenants they must name one, and B still works.
    r = viewer.get("/tenant")
    assert r.status_code == 400 and r.get_json()["type"].endswith("tenant-required")
    assert viewer.get("/tenant", tenant=world.tid("b")).get_json()["id"] == world.tid("b")
    assert viewer.client.get(link).status_code == 410, "the link is used up"
    assert admin.get("/invitations").get_json()["items"] == []


def test_a_new_person_sets_a_password_and_is_signed_in(app, world):
    invite(as_user(app, world, "a_admin"), "New.Hire@Example.com", "operator")
    link = link_for("new.hire@example.com")
    client = app.test_client()
    page = client.get(link)
    assert page.status_code == 200 and 'name="password"' in text(page)
    token = form_csrf(page)

    assert client.post(link, data={"name": "Nia", "password": GOOD,
                                   "confirm": GOOD}).status_code == 400, "CSRF"
    weak = client.post(link, data={"csrf_token": token, "name": "Nia",
                                   "password": "password1234", "confirm": "password1234"})
    assert weak.status_code == 422 and "most common passwords" in text(weak)
    mismatch = client.post(link, data={"csrf_token": token, "name": "Nia", "password": GOOD,
                                       "confirm": GOOD + "!"})
    assert mismatch.status_code == 422 and "do not match" in text(mismatch)
    assert find_user_by_email("new.hire@example.com") is None

    done = client.post(link, data={"csrf_token": token, "name": "Nia", "password": GOOD,
                                   "confirm": GOOD})
    assert done.status_code == 302, text(done)
    me = client.get("/api/v1/me").get_json()
    assert (me["user"]["email"], me["user"]["name"], me["user"]["status"]) == (
        "new.hire@example.com", "Nia", "active")
    assert [(t["id"], t["role"]) for t in me["tenants"]] == [(world.tid("a"), "operator")]
    with scoped_to(world.tenants["a"].id):
        actions = db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.action.in_(["member.invited", "invitation.accepted"]))
            .order_by(AuditEvent.seq)).all()
    assert actions == ["member.invited", "invitation.accepted"]

    again = app.test_client().get(link)
    assert again.status_code == 410 and "already been used" in text(again)


def test_a_platform_admin_is_never_made_a_member(app, world):
    invite(as_user(app, world, "a_admin"), world.users["platform"].email, "admin")
    link = link_for(world.users["platform"].email)
    root = as_user(app, world, "platform")
    page = root.client.get(link)
    assert "platform admin cannot join" in text(page)
    refused = root.client.post(link, data={"csrf_token": signed_in_csrf_token(root.client)})
    assert refused.status_code == 403 and "platform admin cannot join" in text(refused)
    assert world.users["platform"].email not in member_emails(as_user(app, world, "a_admin"))
    assert root.get("/tenants").status_code == 200, "still acting as the platform"


def test_unusable_links_say_why(app, world):
    admin = as_user(app, world, "a_admin")
    unknown = app.test_client().get("/invite/not-a-real-token")
    assert unknown.status_code == 404 and "not valid" in text(unknown)

    # Re-sending withdraws the old link; the new one works.
    first = invite(admin, "resent@example.com").get_json()
    old = link_for("resent@example.com")
    r = admin.post(f"/invitations/{first['id']}/resend")
    assert r.status_code == 200 and r.get_json()["send_count"] == 2
    new = link_for("resent@example.com")
    assert new != old
    gone = app.test_client().get(old)
    assert gone.status_code == 410 and "withdrawn" in text(gone)
    assert app.test_client().get(new).status_code == 200

    # Another tenant can neither see nor touch the invitation.
    other = as_user(app, world, "b_admin")
    assert other.post(f"/invitations/{first['id']}/resend").status_code == 404
    assert other.delete(f"/invitations/{first['id']}").status_code == 404
    assert other.get("/invitations").get_json()["items"] == []

    # Revoked.
    assert admin.delete(f"/invitations/{first['id']}").status_code == 204
    revoked = app.test_client().get(new)
    assert revoked.status_code == 410 and "withdrawn" in text(revoked)
    assert admin.post(f"/invitations/{first['id']}/resend").status_code == 409

    # Expired.
    invite(admin, "late@example.com")
    late = link_for("late@example.com")
    db.session.execute(update(AccountToken).where(AccountToken.purpose == "invitation",
                                                  AccountToken.used_at.is_(None),
                                                  AccountToken.revoked_at.is_(None))
                       .values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    expired = app.test_client().get(late)
    assert expired.status_code == 410 and "expired" in text(expired)

    # A token for another purpose (a password reset of the same address) opens nothing.
    _, foreign = account_tokens.issue(TokenPurpose.PASSWORD_RESET,
                                      user_id=world.users["a_viewer"].id)
    db.session.commit()
    assert app.test_client().get(f"/invite/{foreign}").status_code == 404


def test_signed_in_as_someone_else_is_told_so(app, world):
    invite(as_user(app, world, "a_admin"), "someone.else@example.com")
    link = link_for("someone.else@example.com")
    intruder = as_user(app, world, "c_owner")
    page = intruder.client.get(link)
    assert "this invitation is for someone.else@example.com" in text(page)
    assert "Sign out" in text(page)
    r = intruder.client.post(link, data={"csrf_token": form_csrf(page)})
    assert r.status_code == 403
    assert "someone.else@example.com" not in member_emails(as_user(app, world, "a_admin"))
    assert app.test_client().get(link).status_code == 200, "the link still works"


def test_sending_invitations_is_rate_limited_per_person(app, world):
    admin = as_key(app, world, "a_admin")
    for n in range(30):
        invite(admin, f"bulk{n}@example.com")
    refused = admin.post("/members", json={"email": "one.more@example.com", "role": "viewer"})
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    first = admin.get("/invitations", query_string={"limit": 1}).get_json()["items"][0]
    assert admin.post(f"/invitations/{first['id']}/resend").status_code == 429, "shared"
    # The same person signed in shares the bucket; another person does not.
    assert as_user(app, world, "a_admin").post(
        "/members", json={"email": "one.more@example.com", "role": "viewer"}).status_code == 429
    invite(as_user(app, world, "a_owner"), "one.more@example.com")
