"""API v1 of outbound events: subscribe (the secret shown once), read, change, rotate,
test ping, delivery log, redeliver, delete; bad and refused URLs are 422s naming `url`;
only `tenant.manage` holders of the workspace reach them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from tests.engine_api_support import ok
from tests.events_support import Receiver
from tests.support import World, as_key, as_user


@pytest.fixture
def receiver(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.0/8")
    yield Receiver(httpserver)


def problem_field(response: Any) -> str:
    assert response.status_code == 422, response.get_data(as_text=True)
    return response.get_json()["errors"][0]["field"]


def test_subscribe_test_redeliver_rotate_and_delete(app: Any, world: World,
                                                   receiver: Receiver) -> None:
    admin = as_key(app, world, "a_admin")
    made = ok(admin.post("/event-subscriptions", json={
        "url": receiver.url, "event_types": ["run.failed", "run.succeeded"],
        "description": "CRM"}), 201)
    assert made["secret"].startswith("whsec_") and made["enabled"]
    receiver.secrets = [made["secret"]]
    sid = made["id"]
    shown = ok(admin.get(f"/event-subscriptions/{sid}"))
    assert "secret" not in shown and shown["event_types"] == ["run.failed", "run.succeeded"]
    assert [s["id"] for s in ok(admin.get("/event-subscriptions"))["items"]] == [sid]

    pinged = ok(admin.post(f"/event-subscriptions/{sid}/test"))
    assert pinged["status"] == "delivered" and pinged["webhook_id"].startswith("msg_")
    assert pinged["log"][0]["status_code"] == 204
    again = ok(admin.post(f"/event-deliveries/{pinged['id']}/redeliver"))
    assert [a["manual"] for a in again["log"]] == [True, True]
    first, second = receiver.of_type("ping")
    assert first.webhook_id == second.webhook_id == pinged["webhook_id"]
    assert first.verified_with == [made["secret"]]

    rotated = ok(admin.post(f"/event-subscriptions/{sid}/rotate-secret",
                            json={"overlap_seconds": 3600}))
    assert rotated["secret"] != made["secret"] and rotated["previous_secret_valid_until"]
    receiver.secrets = [made["secret"], rotated["secret"]]
    ok(admin.post(f"/event-subscriptions/{sid}/test"))
    assert receiver.of_type("ping")[-1].verified_with == receiver.secrets

    log = ok(admin.get(f"/event-subscriptions/{sid}/deliveries"))
    assert len(log["items"]) == 2  # the ping and the second ping; the redelivery is an attempt
    paused = ok(admin.patch(f"/event-subscriptions/{sid}", json={"enabled": False}))
    assert not paused["enabled"]
    assert admin.delete(f"/event-subscriptions/{sid}").status_code == 204
    assert admin.get(f"/event-subscriptions/{sid}").status_code == 404


def test_bad_refused_and_unknown_input_are_422s_naming_the_field(app: Any,
                                                                 world: World) -> None:
    admin = as_key(app, world, "a_admin")
    for url in ("nonsense", "ftp://example.com/", "http://169.254.169.254/latest",
                "http://127.0.0.1:9/hook"):  # no allow-list here: loopback is refused
        assert problem_field(admin.post("/event-subscriptions", json={
            "url": url, "event_types": ["*"]})) == "url"
    assert problem_field(admin.post("/event-subscriptions", json={
        "url": "https://93.184.215.14/hook", "event_types": ["run.exploded"]})) == "event_types"
    assert problem_field(admin.post("/event-subscriptions", json={
        "url": "https://93.184.215.14/hook", "event_types": []})) == "event_types"


def test_only_managers_of_the_workspace_reach_its_subscriptions(app: Any, world: World,
                                                                receiver: Receiver) -> None:
    admin = as_key(app, world, "a_admin")
    sid = ok(admin.post("/event-subscriptions", json={
        "url": receiver.url, "event_types": ["*"]}), 201)["id"]
    builder = as_user(app, world, "a_builder")
    assert builder.get("/event-subscriptions").status_code == 403
    other = as_key(app, world, "b_admin")
    assert other.get(f"/event-subscriptions/{sid}").status_code == 404
    assert other.get("/event-subscriptions").get_json()["items"] == []


def test_the_signing_secret_credential_changes_only_with_its_subscription(
        app: Any, world: World, receiver: Receiver) -> None:
    admin = as_key(app, world, "a_admin")
    ok(admin.post("/event-subscriptions", json={"url": receiver.url, "event_types": ["*"]}),
       201)
    (credential,) = [c for c in ok(admin.get("/credentials"))["items"]
                     if c["name"].startswith("Event subscription")]
    assert admin.delete(f"/credentials/{credential['id']}").status_code == 409
    assert admin.patch(f"/credentials/{credential['id']}",
                       json={"name": "mine now"}).status_code == 409
