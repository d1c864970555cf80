"""API rate limits: one allowance per API key (or per user for sessions) across the
whole API, charged after authentication; failed authentications counted per client
address without locking valid callers out; the client address behind trusted proxies;
and what a limited caller is told (RateLimit fields, Retry-After, a problem body)."""

from __future__ import annotations

import ipaddress
import re

import dramatiq
import pytest

from overture.platform.errors import ConfigError
from overture.web.app import create_app
from overture.web.extensions import forwarded_client
from tests.conftest import IsolatedClient, pg_settings
from tests.support import Api, csrf_token, login

PROBLEM = "application/problem+json"
RATE_LIMITED = "urn:overture:problem:rate-limited"
PROXY = "10.0.0.5"


@pytest.fixture
def make_app(database):
    """An app on the suite's database with some settings changed."""
    previous = dramatiq.get_broker()  # create_app installs its broker process-wide

    def make(**overrides: str):
        app = create_app(pg_settings(database, **overrides))
        app.test_client_class = IsolatedClient
        return app

    yield make
    dramatiq.set_broker(previous)


def session(app, world, handle: str) -> Api:
    client = app.test_client()
    return Api(client, csrf=login(client, world.users[handle].email))


def via(client, token: str | None, peer: str, forwarded: str | None = None,
        path: str = "/members"):
    """A call whose connection comes from `peer`, with `X-Forwarded-For` if given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    return client.get("/api/v1" + path, headers=headers, environ_base={"REMOTE_ADDR": peer})


def assert_rate_limited(response) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["type"] == RATE_LIMITED and body["status"] == 429 and body["detail"]
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def test_bogus_tokens_with_a_keys_prefix_do_not_spend_its_allowance(make_app, world):
    app = make_app(OVERTURE_API_RATE_LIMIT="3 per minute")
    victim_key, victim_token = world.keys["a_admin"]
    attacker = Api(app.test_client(), token=f"{victim_key.prefix}_{'x' * 43}")
    assert [attacker.get("/members").status_code for _ in range(6)] == [401] * 6
    victim = Api(app.test_client(), token=victim_token)
    statuses = [victim.get("/members").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_one_allowance_per_key_across_every_endpoint(make_app, world):
    app = make_app(OVERTURE_API_RATE_LIMIT="4 per minute")
    key = Api(app.test_client(), token=world.keys["a_admin"][1])
    statuses = [key.get(path).status_code
                for path in ("/members", "/workflows", "/runs", "/me", "/api-keys")]
    assert statuses == [200, 200, 200, 200, 429]
    # Another key of the same person has an allowance of its own.
    assert Api(app.test_client(), token=world.keys["a_readonly"][1]).get("/members") \
        .status_code == 200


def test_signed_in_users_have_one_allowance_each_whatever_their_sessions(make_app, world):
    app = make_app(OVERTURE_API_RATE_LIMIT="3 per minute")
    first, second = session(app, world, "a_admin"), session(app, world, "a_admin")
    assert first.get("/members").status_code == 200
    assert second.get("/workflows").status_code == 200
    assert first.get("/me").status_code == 200
    assert_rate_limited(second.get("/members"))
    # Someone else signed in from the same address is not held back.
    assert session(app, world, "a_viewer").get("/members").status_code == 200


def test_failed_authentications_lock_out_failures_not_valid_callers(make_app, world):
    app = make_app(OVERTURE_AUTH_FAILURE_RATE_LIMIT="3 per minute")
    client = app.test_client()
    prefix = world.keys["a_admin"][0].prefix
    assert [via(client, "ovt_aaaaaaaaaaaa_guess", PROXY).status_code
            for _ in range(3)] == [401] * 3
    # Over the limit every failure looks the same, whatever made it fail: a guess on a
    # real key's prefix, an unknown prefix, a malformed token, no credentials at all.
    answers = [via(client, token, PROXY)
               for token in (f"{prefix}_wrong", "ovt_bbbbbbbbbbbb_guess", "garbage", None)]
    for answer in answers:
        assert_rate_limited(answer)
    assert len({(a.get_json()["title"], a.get_json()["detail"]) for a in answers}) == 1
    # A valid key and a signed-in person from the very same address still get through.
    assert via(client, world.keys["a_admin"][1], PROXY).status_code == 200
    person = session(app, world, "a_viewer")
    assert person.get("/members", environ_base={"REMOTE_ADDR": PROXY}).status_code == 200
    # ...without lifting the lockout, and another address counts on its own.
    assert_rate_limited(via(client, "ovt_aaaaaaaaaaaa_guess", PROXY))
    assert via(client, "ovt_aaaaaaaaaaaa_guess", "192.0.2.7").status_code == 401


def audited_ips(app, world) -> list[str]:
    admin = Api(app.test_client(), token=world.keys["a_admin"][1])
    page = admin.get("/audit", query_string={"action": "apikey.used_from_new_ip"},
                     environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert page.status_code == 200, page.get_json()
    return [event["ip"] for event in page.get_json()["items"]]


def test_behind_a_trusted_proxy_the_forwarded_client_is_the_caller(make_app, world):
    app = make_app(OVERTURE_AUTH_FAILURE_RATE_LIMIT="2 per minute",
                   OVERTURE_TRUSTED_PROXIES="10.0.0.0/8, 192.0.2.1")
    client, guess = app.test_client(), "ovt_aaaaaaaaaaaa_guess"
    # Two proxies deep: the client wrote nothing trustworthy but its own hop.
    assert via(client, guess, PROXY, "203.0.113.9, 10.0.0.7").status_code == 401
    assert via(client, guess, PROXY, "203.0.113.9").status_code == 401
    assert_rate_limited(via(client, guess, PROXY, "203.0.113.9"))
    # Another client behind the same proxy has its own count...
    assert via(client, guess, PROXY, "198.51.100.4").status_code == 401
    # ...and claiming its address on the left of the header does not escape the count.
    assert_rate_limited(via(client, guess, PROXY, "198.51.100.4, 203.0.113.9"))
    # Audit events and a key's use from a new address see the same client address.
    assert via(client, world.keys["a_admin"][1], PROXY, "203.0.113.50").status_code == 200
    assert "203.0.113.50" in audited_ips(app, world)


def test_without_trusted_proxies_forwarded_for_is_ignored(make_app, world):
    app = make_app(OVERTURE_AUTH_FAILURE_RATE_LIMIT="2 per minute")
    client, guess = app.test_client(), "ovt_aaaaaaaaaaaa_guess"
    assert via(client, guess, PROXY, "203.0.113.1").status_code == 401
    assert via(client, guess, PROXY, "203.0.113.2").status_code == 401
    assert_rate_limited(via(client, guess, PROXY, "203.0.113.3"))
    assert via(client, world.keys["a_admin"][1], PROXY, "203.0.113.50").status_code == 200
    ips = audited_ips(app, world)
    assert PROXY in ips and "203.0.113.50" not in ips


def rate_fields(response) -> tuple[str, int, int, int, int]:
    policy = re.fullmatch(r'"([\w.-]+)";q=(\d+);w=(\d+)', response.headers["RateLimit-Policy"])
    state = re.fullmatch(r'"([\w.-]+)";r=(\d+);t=(\d+)', response.headers["RateLimit"])
    assert policy and state and policy.group(1) == state.group(1), response.headers
    return (policy.group(1), int(policy.group(2)), int(policy.group(3)), int(state.group(2)),
            int(state.group(3)))


def test_answers_tell_the_caller_its_allowance(make_app, world):
    app = make_app(OVERTURE_API_RATE_LIMIT="2 per minute", OVERTURE_LOGIN_RATE_LIMIT="1/minute")
    key = Api(app.test_client(), token=world.keys["b_admin"][1])
    first, second, third = (key.get("/members") for _ in range(3))
    assert [rate_fields(r)[:4] for r in (first, second, third)] == [
        ("api", 2, 60, 1), ("api", 2, 60, 0), ("api", 2, 60, 0)]
    assert 1 <= rate_fields(third)[4] <= 60
    assert_rate_limited(third)
    assert "Retry-After" not in first.headers
    # A failed authentication shows the address's allowance for failures.
    failed = Api(app.test_client(), token="ovt_aaaaaaaaaaaa_guess").get("/members")
    assert failed.status_code == 401
    assert rate_fields(failed)[:3] == ("auth-failures", 30, 60)
    # Route limits (here the sign-in form's) answer the same way.
    client = app.test_client()
    form = {"email": "nobody@example.com", "password": "wrong", "csrf_token": csrf_token(client)}
    assert client.post("/login", data=form).status_code == 401
    limited = client.post("/login", data=form)
    assert_rate_limited(limited)
    assert rate_fields(limited)[:4] == ("console.login", 1, 60, 0)


@pytest.mark.parametrize(("peer", "forwarded", "client"), [
    ("10.0.0.5", ["203.0.113.9"], "203.0.113.9"),
    ("10.0.0.5", ["198.51.100.4, 203.0.113.9:4711", "10.1.2.3"], "203.0.113.9"),
    ("10.0.0.5", ["[2001:db8::7]:443"], "2001:db8::7"),
    ("::ffff:10.0.0.5", ["::ffff:203.0.113.9"], "203.0.113.9"),
    ("10.0.0.5", ["unknown, 10.0.0.6"], "10.0.0.6"),  # garbage: the last vouched-for hop
    ("10.0.0.5", [], "10.0.0.5"),
    ("203.0.113.1", ["198.51.100.4"], "203.0.113.1"),  # not from a proxy: header ignored
])
def test_forwarded_client_reads_proxies_from_the_right(peer, forwarded, client):
    trusted = [ipaddress.ip_network("10.0.0.0/8")]
    assert forwarded_client(peer, forwarded, trusted) == client


@pytest.mark.parametrize(("name", "value"), [
    ("OVERTURE_TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal"),
    ("OVERTURE_API_RATE_LIMIT", "lots"),
    ("OVERTURE_AUTH_FAILURE_RATE_LIMIT", "30 per fortnight"),
])
def test_a_bad_rate_or_proxy_setting_refuses_to_start(database, name, value):
    previous = dramatiq.get_broker()
    try:
        with pytest.raises(ConfigError, match=name):
            create_app(pg_settings(database, **{name: value}))
    finally:
        dramatiq.set_broker(previous)
