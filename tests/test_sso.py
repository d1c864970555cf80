"""Single sign-on end to end: a real OpenID provider (tests/oidc_provider.py) on
loopback, the provider configured through the API, and the browser's trip through
/sso/<slug>/start -> the provider -> /sso/callback followed by hand."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from joserfc.jwk import RSAKey
from sqlalchemy import func, select

from overture.platform.audit import AuditEvent
from overture.platform.db import db, scoped_to
from overture.tenants import sso
from overture.tenants.models import Membership, User
from overture.tenants.sso_models import SsoProvider, UserIdentity
from tests.oidc_provider import OidcProvider
from tests.support import as_user

CALLBACK = "http://localhost/sso/callback"
ALICE = {"sub": "alice-1", "email": "alice@acme.example", "email_verified": True,
         "name": "Alice"}


@pytest.fixture(autouse=True)
def allow_loopback(monkeypatch):
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.1/32")


@pytest.fixture
def provider():
    with OidcProvider(CALLBACK, user=dict(ALICE)) as running:
        yield running


def configure(app: Any, world: Any, provider: OidcProvider, **changes: Any) -> Any:
    admin = as_user(app, world, "a_admin", tenant="a")
    body = {"issuer": provider.issuer, "client_id": provider.client_id,
            "client_secret": provider.client_secret, "allowed_domains": ["acme.example"],
            "default_role": "builder", **changes}
    response = admin.call("PUT", "/sso", json=body)
    assert response.status_code == 200, response.get_json()
    return admin


def to_provider(client: Any, slug: str = "ws-a") -> str:
    """Start at our app and let the provider approve: the callback URL it sends back."""
    start = client.get(f"/sso/{slug}/start?next=/after")
    assert start.status_code == 302, start.get_data(as_text=True)
    approved = httpx2.get(start.headers["Location"], follow_redirects=False)
    assert approved.status_code == 302, approved.text
    assert approved.headers["location"].startswith(CALLBACK)
    return approved.headers["location"]


def callback(client: Any, url: str) -> Any:
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def actions(tenant_id: Any, prefix: str) -> list[str]:
    with scoped_to(tenant_id):
        return list(db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.action.startswith(prefix)).order_by(AuditEvent.seq)))


def alice() -> User | None:
    return db.session.scalars(select(User).where(User.email == ALICE["email"])).one_or_none()


def test_sso_configured_by_api_signs_in_with_jit_membership_then_reuses_identity(
        app, world, provider):
    admin = configure(app, world, provider)
    shown = admin.get("/sso")
    assert shown.status_code == 200
    assert shown.get_json()["client_secret"] == "********"
    assert provider.client_secret not in shown.get_data(as_text=True)
    assert as_user(app, world, "a_viewer", tenant="a").get("/sso").status_code == 403

    browser = app.test_client()
    signed_in = callback(browser, to_provider(browser))
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/after"
    assert ALICE["email"] in browser.get("/").get_data(as_text=True)
    token_request = provider.token_requests[-1]
    assert token_request["form"]["code_verifier"] and token_request["basic"]

    user = alice()
    assert user is not None and user.password_hash is None and user.is_active
    with scoped_to(world.tenants["a"].id):
        (member,) = db.session.scalars(select(Membership).where(Membership.user_id == user.id))
    assert member.role == "builder"

    again = app.test_client()
    assert callback(again, to_provider(again)).status_code == 302
    assert db.session.scalar(select(func.count()).select_from(UserIdentity)) == 1
    assert actions(world.tenants["a"].id, "member.jit_joined") == ["member.jit_joined"]
    assert actions(world.tenants["a"].id, "auth.sso_login") == ["auth.sso_login"] * 2
    assert actions(world.tenants["a"].id, "sso.configured") == ["sso.configured"]

    assert admin.delete("/sso").status_code == 204
    assert actions(world.tenants["a"].id, "sso.removed") == ["sso.removed"]
    refused = app.test_client().get("/sso/ws-a/start")
    assert refused.status_code == 403 and "not set up" in refused.get_data(as_text=True)


def test_sso_configuration_is_validated(app, world, provider):
    admin = as_user(app, world, "a_admin", tenant="a")
    good = {"issuer": "https://id.acme.example", "client_id": "c", "client_secret": "s"}
    for bad, field in [({"issuer": "http://id.acme.example"}, "issuer"),
                       ({"issuer": "ftp://id.acme.example"}, "issuer"),
                       ({"default_role": "owner"}, "default_role"),
                       ({"allowed_domains": ["not a domain"]}, "allowed_domains.0"),
                       ({"client_secret": None}, "client_secret")]:
        body = {k: v for k, v in {**good, **bad}.items() if v is not None}
        response = admin.call("PUT", "/sso", json=body)
        assert response.status_code == 422, (bad, response.get_json())
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert field in str(response.get_json()), response.get_json()
    assert admin.get("/sso").status_code == 404
    assert admin.call("PUT", "/sso", json=good).status_code == 200
    moved = admin.call("PUT", "/sso", json={"issuer": "https://evil.example",
                                            "client_id": "c"})
    assert moved.status_code == 422 and "issuer changes" in moved.get_json()["detail"]


def test_sso_refuses_wrong_domain_and_unverified_email(app, world, provider):
    configure(app, world, provider)
    provider.user.update(email="mallory@elsewhere.example", sub="mallory")
    browser = app.test_client()
    refused = callback(browser, to_provider(browser))
    assert refused.status_code == 403
    assert "elsewhere.example" in refused.get_data(as_text=True)

    provider.user.update(email="bob@acme.example", sub="bob", email_verified=False)
    browser = app.test_client()
    refused = callback(browser, to_provider(browser))
    assert refused.status_code == 403 and "not verified" in refused.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(UserIdentity)) == 0
    assert "bob@acme.example" not in browser.get("/").get_data(as_text=True)
    assert actions(world.tenants["a"].id, "auth.sso_failed") == ["auth.sso_failed"] * 2


def test_sso_refuses_tampered_state_and_replayed_callback(app, world, provider):
    configure(app, world, provider)
    browser = app.test_client()
    url = to_provider(browser)
    state = parse_qs(urlsplit(url).query)["state"][0]
    tampered = callback(browser, url.replace(state, state[:-2] + "xx"))
    assert tampered.status_code == 400
    assert "not started from this browser" in tampered.get_data(as_text=True)

    browser = app.test_client()
    url = to_provider(browser)
    assert callback(app.test_client(), url).status_code == 400  # another browser
    assert callback(browser, url).status_code == 302
    replayed = callback(browser, url)
    assert replayed.status_code == 400


def test_sso_links_a_member_of_the_organisation_never_an_account_held_elsewhere(
        app, world, provider):
    """A provider the organisation controls speaks for an existing account only if that
    account belongs to nothing beyond the organisation (else it could take over a
    member of another tenant by asserting their email)."""
    configure(app, world, provider, allowed_domains=["people.example.com"])
    provider.user.update(email=world.users["b_viewer"].email, sub="b-viewer")
    browser = app.test_client()
    refused = callback(browser, to_provider(browser))
    assert refused.status_code == 403 and "outside this organisation" in refused.get_data(
        as_text=True)

    provider.user.update(email=world.users["a_viewer"].email, sub="a-viewer")
    browser = app.test_client()
    assert callback(browser, to_provider(browser)).status_code == 302
    (identity,) = db.session.scalars(select(UserIdentity))
    assert identity.user_id == world.users["a_viewer"].id
    with scoped_to(world.tenants["a"].id):  # already a member: the role is kept
        assert world.members["a_viewer"].role == db.session.get(
            Membership, world.members["a_viewer"].id).role == "viewer"


def test_sso_refuses_tokens_that_do_not_check_out(app, world, provider):
    """Nonce, audience and signature (ASVS 10.5.1, 10.5.4, 6.8.2): nothing is created."""
    configure(app, world, provider)
    for overrides, published, says in [
            ({"nonce": "not-the-one-we-sent"}, None, "nonce"),
            ({"aud": "another-client"}, None, "another client"),
            ({}, RSAKey.generate_key(2048, parameters={"kid": "test-key"}), "not valid")]:
        provider.overrides, provider.published_key = overrides, published or provider.key
        browser = app.test_client()
        refused = callback(browser, to_provider(browser))
        assert refused.status_code == 401 and says in refused.get_data(as_text=True), says
    assert alice() is None
    assert db.session.scalar(select(func.count()).select_from(UserIdentity)) == 0


def test_sso_provider_errors_and_an_unusable_provider_give_clear_pages(app, world, provider):
    configure(app, world, provider)
    browser = app.test_client()
    url = to_provider(browser)
    state = parse_qs(urlsplit(url).query)["state"][0]
    denied = browser.get(f"/sso/callback?error=access_denied&state={state}")
    assert denied.status_code == 403 and "access_denied" in denied.get_data(as_text=True)

    provider.discovery_overrides = {"issuer": "https://impostor.example"}  # ASVS 10.5.3
    impostor = app.test_client().get("/sso/ws-a/start")
    assert impostor.status_code == 502
    assert "another issuer" in impostor.get_data(as_text=True)

    configure(app, world, provider, issuer="http://127.0.0.1:9")  # nothing listens there
    unreachable = app.test_client().get("/sso/ws-a/start")
    assert unreachable.status_code == 502
    assert "cannot reach" in unreachable.get_data(as_text=True)
    assert app.test_client().get("/sso/no-such-org/start").status_code == 404

    with scoped_to(world.tenants["a"].id):  # a secret that no longer opens
        stored = db.session.scalars(select(SsoProvider)).one()
        stored.client_secret_sealed = stored.client_secret_sealed[:-4] + "AAAA"
        db.session.commit()
    unreadable = app.test_client().get("/sso/ws-a/start")
    assert unreadable.status_code == 403
    assert "client secret again" in unreadable.get_data(as_text=True)


def test_sso_start_and_callback_are_rate_limited_per_address(app, world):
    browser = app.test_client()
    answers = [browser.get("/sso/callback?state=guess&code=x").status_code
               for _ in range(31)]
    assert answers[:30] == [400] * 30 and answers[30] == 429
    assert browser.get("/sso/ws-a/start").status_code == 429


def test_the_sign_in_page_leads_to_the_organisation_form_and_on_to_its_provider(app, world):
    browser = app.test_client()
    assert "/sso" in browser.get("/login").get_data(as_text=True)
    form = browser.get("/sso?next=/after")
    assert form.status_code == 200 and 'name="organisation"' in form.get_data(as_text=True)
    chosen = browser.get("/sso?organisation=ws-a&next=/after")
    assert chosen.status_code == 302
    assert chosen.headers["Location"] == "/sso/ws-a/start?next=/after"


def test_a_first_sign_in_racing_another_uses_the_identity_the_other_made(
        app, world, provider, monkeypatch):
    """Two browsers finishing the same person's first sign-in at once: the second finds
    no identity, loses the insert, and signs in as the identity the first made."""
    configure(app, world, provider)
    first = app.test_client()
    assert callback(first, to_provider(first)).status_code == 302
    monkeypatch.setattr(sso, "_identity", _missing_once(sso._identity))
    second = app.test_client()
    signed_in = callback(second, to_provider(second))
    assert signed_in.status_code == 302, signed_in.get_data(as_text=True)
    assert ALICE["email"] in second.get("/").get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(UserIdentity)) == 1


def _missing_once(real: Any) -> Any:
    calls = []

    def lookup(*args: Any) -> Any:
        calls.append(1)
        return None if len(calls) == 1 else real(*args)
    return lookup
