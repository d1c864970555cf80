"""Signed outbound events (issue 18, acceptance 3): deliveries reach a local receiver
with signatures the `standardwebhooks` verifier accepts, survive a receiver that fails
for a while (each event delivered once it recovers, under one webhook-id), show in the
delivery log, keep two secrets valid while a rotation overlaps, refuse what the SSRF
guard refuses, and give up after a day with a mail to the workspace's owners and admins.
Time is driven by passing `now`, never by sleeping."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select

from overture.platform.db import db, scoped_to, utcnow
from overture.platform.mail import OutboxMessage
from overture.tenants.events import deliveries, outbox, sender, subscriptions
from overture.tenants.events.models import (
    DeliveryStatus,
    EventAttempt,
    EventDelivery,
    EventSubscription,
)
from tests.events_support import Receiver, admin_access, subscribe
from tests.support import World


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERTURE_OUTBOUND_ALLOWLIST", "127.0.0.0/8")


@pytest.fixture
def receiver(httpserver: HTTPServer, loopback: None) -> Iterator[Receiver]:
    yield Receiver(httpserver)


def emit(w: World, event_type: str, data: dict[str, Any], tenant: str = "a") -> None:
    with scoped_to(w.tenants[tenant].id):
        outbox.emit(event_type, data)
        db.session.commit()


def sweep(w: World, now: Any, tenant: str = "a") -> int:
    with scoped_to(w.tenants[tenant].id):
        return sender.send_due(now)


def rows(model: Any, tenant_id: Any) -> list[Any]:
    with scoped_to(tenant_id):
        found = list(db.session.scalars(select(model).order_by(model.created_at)))
        db.session.commit()  # it only read; the rows stay readable (expire_on_commit off)
        return found


def test_a_failing_receiver_gets_each_event_once_it_recovers(world: World,
                                                              receiver: Receiver) -> None:
    _, secret = subscribe(world, receiver.url, ["run.started", "run.failed"])
    receiver.secrets, receiver.failures_left = [secret], 5
    for n in range(3):
        emit(world, "run.started", {"run_id": f"r{n}"})
    emit(world, "approval.requested", {"approval_id": "x"})  # not subscribed to

    now = utcnow()
    for hour in range(6):  # retries wait at most an hour: each pass finds them all due
        sweep(world, now + timedelta(hours=hour))

    got = receiver.of_type("run.started")
    assert sorted(r.data["run_id"] for r in got) == ["r0", "r1", "r2"]
    assert all(r.verified_with == [secret] for r in got)
    ids = [r.webhook_id for r in got]
    assert len(set(ids)) == 3 and all(i.startswith("msg_") for i in ids)
    assert len(receiver.failed) == 5 and set(receiver.failed) <= set(ids)  # retried, same ids
    assert receiver.of_type("approval.requested") == []

    tenant_id = world.tenants["a"].id
    assert {d.status for d in rows(EventDelivery, tenant_id)} == {DeliveryStatus.DELIVERED}
    attempts = rows(EventAttempt, tenant_id)
    assert sorted(a.status_code for a in attempts) == [204] * 3 + [500] * 5
    assert all(a.latency_ms >= 0 for a in attempts)
    assert all("HTTP 500" in (a.error or "") for a in attempts if a.status_code == 500)


def test_both_secrets_verify_while_a_rotation_overlaps(world: World,
                                                       receiver: Receiver) -> None:
    subscription_id, old = subscribe(world, receiver.url, ["*"])
    now = utcnow()
    with scoped_to(world.tenants["a"].id, user_id=world.users["a_admin"].id):
        access = admin_access(world)
        subscription = subscriptions.get_subscription(access, subscription_id)
        new = subscriptions.rotate_secret(access, subscription, timedelta(hours=1), now).secret
        db.session.commit()
        assert new != old and new.startswith("whsec_")
        receiver.secrets = [old, new]
        deliveries.ping(access, subscription, now + timedelta(minutes=30))
        deliveries.ping(access, subscription, now + timedelta(hours=2))
    during, after = receiver.of_type("ping")
    assert during.verified_with == [old, new]
    assert after.verified_with == [new]  # the overlap ended: the old secret is refused


def test_a_url_the_guard_refuses_is_not_subscribed_nor_reached(world: World,
                                                                receiver: Receiver,
                                                                monkeypatch: Any) -> None:
    from overture.platform.errors import ValidationFailed

    for url in ("http://169.254.169.254/latest/meta-data", "http://10.1.2.3/hook",
                "ftp://example.com/x", "not a url"):
        with pytest.raises(ValidationFailed) as refused:
            subscribe(world, url, ["*"])
        assert refused.value.errors[0]["field"] == "url"
    # Allowed when made, refused when sent (the operator narrowed the allow-list): the
    # attempt is logged with the guard's reason and retried, nothing reaches the host.
    subscribe(world, receiver.url, ["*"])
    monkeypatch.delenv("OVERTURE_OUTBOUND_ALLOWLIST")
    emit(world, "workflow.published", {"workflow_id": "w"})
    sweep(world, utcnow())
    assert receiver.got == [] and receiver.failed == []
    (attempt,) = rows(EventAttempt, world.tenants["a"].id)
    assert attempt.status_code is None and "outbound guard" in attempt.error


def test_a_day_of_failures_disables_the_subscription_and_mails_the_admins(
        world: World, receiver: Receiver) -> None:
    subscription_id, _ = subscribe(world, receiver.url, ["run.failed"])
    receiver.failures_left = 10_000
    emit(world, "run.failed", {"run_id": "r"})
    emit(world, "run.failed", {"run_id": "r1"})
    now = utcnow()
    for hour in range(26):
        sweep(world, now + timedelta(hours=hour, minutes=1))

    tenant_id = world.tenants["a"].id
    # The first to give up turned the subscription off; the other waits for it.
    failed, waiting = sorted(rows(EventDelivery, tenant_id), key=lambda d: d.status)
    assert (failed.status, waiting.status) == (DeliveryStatus.FAILED, DeliveryStatus.PENDING)
    (subscription,) = rows(EventSubscription, tenant_id)
    assert subscription.id == subscription_id and not subscription.enabled
    assert "HTTP 500" in subscription.disabled_reason
    mails = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.template == "event_subscription_disabled")).all()
    assert sorted(m.to_address for m in mails) == ["a.admin@people.example.com",
                                                   "a.owner@people.example.com"]
    assert receiver.url in mails[0].text_body and "turned" in mails[0].subject
    # Nothing more is queued for a disabled subscription.
    emit(world, "run.failed", {"run_id": "r2"})
    assert len(rows(EventDelivery, tenant_id)) == 2
    # Turned back on once the receiver works, what waited is delivered.
    receiver.failures_left = 0
    with scoped_to(tenant_id, user_id=world.users["a_admin"].id):
        access = admin_access(world)
        subscriptions.update(access, subscriptions.get_subscription(access, subscription_id),
                             enabled=True)
        db.session.commit()
    sweep(world, now + timedelta(hours=27))
    (got,) = receiver.of_type("run.failed")
    assert got.webhook_id == waiting.webhook_id


def test_a_redelivery_from_the_log_keeps_the_webhook_id(world: World,
                                                        receiver: Receiver) -> None:
    _, secret = subscribe(world, receiver.url, ["workflow.published"])
    receiver.secrets = [secret]
    emit(world, "workflow.published", {"workflow_id": "w"})
    sweep(world, utcnow())
    with scoped_to(world.tenants["a"].id, user_id=world.users["a_admin"].id):
        (delivery,) = db.session.scalars(select(EventDelivery)).all()
        attempt = deliveries.redeliver(admin_access(world), delivery)
        assert attempt is not None and attempt.manual and attempt.status_code == 204
    first, again = receiver.of_type("workflow.published")
    assert first.webhook_id == again.webhook_id == delivery.webhook_id
    assert again.verified_with == [secret]


def test_an_agency_subscription_hears_its_clients_only(world: World,
                                                       receiver: Receiver) -> None:
    subscribe(world, receiver.url, ["run.started"], tenant="northwind", handle="nw_admin",
              include_clients=True)
    emit(world, "run.started", {"run_id": "in-a"}, tenant="a")
    emit(world, "run.started", {"run_id": "in-c"}, tenant="c")  # another agency's client
    sweep(world, utcnow(), tenant="northwind")
    (got,) = receiver.of_type("run.started")
    assert got.data["run_id"] == "in-a"
    assert got.data["workspace_id"] == world.tid("a")
    assert rows(EventDelivery, world.tenants["a"].id) == []  # kept by the agency


def test_include_clients_is_for_agencies(world: World, receiver: Receiver) -> None:
    from overture.platform.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        subscribe(world, receiver.url, ["*"], include_clients=True)
    assert refused.value.errors[0]["field"] == "include_clients"


def test_a_budget_threshold_crossed_is_an_event(world: World, receiver: Receiver) -> None:
    from decimal import Decimal

    from overture.billing import alerts

    _, secret = subscribe(world, receiver.url, ["budget.threshold"])
    receiver.secrets = [secret]
    with scoped_to(world.tenants["a"].id):
        assert alerts.send_budget_alert(world.tenants["a"].id, 80, Decimal("80.00"),
                                        Decimal("100.00"), "EUR")
        assert not alerts.send_budget_alert(world.tenants["a"].id, 80, Decimal("81.00"),
                                            Decimal("100.00"), "EUR")  # once a month
        db.session.commit()
    sweep(world, utcnow())
    (got,) = receiver.of_type("budget.threshold")
    assert got.verified_with == [secret]
    assert (got.data["threshold_percent"], got.data["spent"], got.data["budget"],
            got.data["currency"]) == (80, "80.00", "100.00", "EUR")


def test_a_paused_subscription_queues_nothing_until_turned_back_on(
        world: World, receiver: Receiver) -> None:
    subscription_id, secret = subscribe(world, receiver.url, ["run.failed"])
    receiver.secrets = [secret]
    with scoped_to(world.tenants["a"].id, user_id=world.users["a_admin"].id):
        access = admin_access(world)
        subscription = subscriptions.get_subscription(access, subscription_id)
        subscriptions.update(access, subscription, enabled=False)
        db.session.commit()
    emit(world, "run.failed", {"run_id": "r"})  # nothing is queued while it is off
    assert sweep(world, utcnow()) == 0
    with scoped_to(world.tenants["a"].id, user_id=world.users["a_admin"].id):
        subscription = subscriptions.get_subscription(access, subscription_id)
        subscriptions.update(access, subscription, enabled=True)
        db.session.commit()
    emit(world, "run.failed", {"run_id": "r2"})
    sweep(world, utcnow())
    assert [r.data["run_id"] for r in receiver.of_type("run.failed")] == ["r2"]
