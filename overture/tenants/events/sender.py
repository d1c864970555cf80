"""Sending deliveries: the Dramatiq actor `deliver_event` on the `events` queue, and the
scheduler's `resend_due` for messages the broker lost.

A delivery is POSTed as JSON `{type, timestamp, data}` with the Standard Webhooks
headers: `webhook-id` (the delivery's, the same on every attempt), `webhook-timestamp`
(the moment of the attempt) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">`, one per valid secret). It goes through the one outbound
client (platform/http.py), so the SSRF guard checks every connection and redirect.

A worker claims a pending, due delivery by moving `next_attempt_at` LEASE ahead in one
statement, so a duplicate message finds it not due. Each attempt is logged (status
code, latency, error). A 2xx delivers it. Anything else retries after an exponential
delay with jitter, for up to MAX_AGE after the event; then the delivery fails, the
subscription is disabled and its workspace's owners and admins get a mail. A disabled
subscription's pending deliveries wait (nothing is lost): enabling it sends them.

`now` drives the retry schedule and may be given (tests); the signature's timestamp is
always the real time of sending, which is what a receiver checks.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import dramatiq
from flask import current_app, has_app_context
from sqlalchemy import or_, select, update

from overture.platform import after_commit, http, mail, page_links
from overture.platform.db import db, scoped_to, utcnow
from overture.platform.logging import get_logger
from overture.platform.webhook_signing import sign_standard
from overture.tenants import domains, members
from overture.tenants.events import outbox, subscriptions
from overture.tenants.events.models import (
    DeliveryStatus,
    EventAttempt,
    EventDelivery,
    EventSubscription,
)
from overture.tenants.lifecycle import all_tenants
from overture.tenants.models import Tenant
from overture.tenants.roles import Role

log = get_logger(__name__)

QUEUE = "events"
ACTOR = "deliver_event"
EXTENSION = "overture.events_sender"
TIMEOUT = 15.0
LEASE = timedelta(minutes=2)  # longer than an attempt can take
EARLY = timedelta(seconds=1)
FIRST_DELAY = timedelta(seconds=10)
MAX_DELAY = timedelta(hours=1)
MAX_AGE = timedelta(days=1)
RESEND_AFTER = timedelta(seconds=60)
MAX_ERROR = 1000


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure: doubling, capped, with jitter (between
    half and all of it) so that many deliveries failing together do not return together."""
    ceiling = min(FIRST_DELAY * 2 ** max(attempts - 1, 0), MAX_DELAY)
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 (spreading load, not a secret)


# --------------------------------------------------------------------------- the actor


def bind(app: Any, broker: dramatiq.Broker) -> dramatiq.Actor:
    def deliver_event(tenant_id: str, delivery_id: str) -> None:
        with app.app_context():
            try:
                with scoped_to(uuid.UUID(tenant_id)):
                    deliver(uuid.UUID(delivery_id))
            finally:
                db.session.remove()

    actor = broker.actors.get(ACTOR) or dramatiq.actor(
        deliver_event, actor_name=ACTOR, queue_name=QUEUE, broker=broker, max_retries=0,
        time_limit=2 * 60 * 1000)

    def send(tenant_id: uuid.UUID, delivery_id: uuid.UUID, delay_ms: int | None) -> None:
        actor.send_with_options(args=(str(tenant_id), str(delivery_id)), delay=delay_ms)

    app.extensions[EXTENSION] = send
    return actor


def announce(messages: list[tuple[uuid.UUID, uuid.UUID]], delay_ms: int | None = None) -> int:
    """Hand committed deliveries to the actor; how many left (the rest wait for
    `resend_due`)."""
    if not has_app_context() or EXTENSION not in current_app.extensions:
        return 0
    sent = 0
    for tenant_id, delivery_id in messages:
        try:
            current_app.extensions[EXTENSION](tenant_id, delivery_id, delay_ms)
            sent += 1
        except Exception:  # the row stays pending: resend_due sends it later
            log.warning("events.enqueue_failed", delivery_id=str(delivery_id), exc_info=True)
    return sent


after_commit.register(outbox.ANNOUNCE, announce)


# --------------------------------------------------------------------------- one attempt


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    latency_ms: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def deliver(delivery_id: uuid.UUID, *, now: datetime | None = None,
            manual: bool = False) -> EventAttempt | None:
    """One attempt of a delivery of the scope tenant; None when it was not claimed (gone,
    not pending or not due, or its subscription is disabled). `manual` (a redelivery
    from the log) sends it whatever its state. Never raises for a failed POST."""
    now = now or utcnow()
    if not _claim(delivery_id, now, manual):
        db.session.rollback()
        return None
    delivery = db.session.get(EventDelivery, delivery_id, populate_existing=True)
    subscription = db.session.get(EventSubscription, delivery.subscription_id) \
        if delivery else None
    if delivery is None or subscription is None:
        db.session.rollback()
        return None
    secrets = subscriptions.signing_secrets(subscription, now)
    url, body, webhook_id = subscription.url, delivery.body.encode(), delivery.webhook_id
    db.session.commit()  # no transaction stays open while the receiver answers
    outcome = post(url, webhook_id, body, secrets)
    return _record(delivery_id, outcome, now, manual)


def _claim(delivery_id: uuid.UUID, now: datetime, manual: bool) -> bool:
    stmt = update(EventDelivery).where(EventDelivery.id == delivery_id)
    if not manual:
        enabled = select(EventSubscription.id).where(EventSubscription.enabled.is_(True))
        stmt = stmt.where(EventDelivery.status == DeliveryStatus.PENDING,
                          EventDelivery.subscription_id.in_(enabled),
                          or_(EventDelivery.next_attempt_at.is_(None),
                              EventDelivery.next_attempt_at <= now + EARLY))
    claimed = db.session.execute(stmt.values(next_attempt_at=now + LEASE)
                                 .returning(EventDelivery.id)
                                 .execution_options(synchronize_session=False)).scalar()
    return claimed is not None


def post(url: str, webhook_id: str, body: bytes, secrets: list[str]) -> Outcome:
    """POST one signed delivery; what happened, never an exception."""
    timestamp = int(time.time())
    headers = sign_standard(secrets[0], webhook_id, timestamp, body)
    headers["webhook-signature"] = " ".join(
        sign_standard(secret, webhook_id, timestamp, body)["webhook-signature"]
        for secret in secrets)
    headers.update({"content-type": "application/json", "user-agent": "Overture-Webhooks/1"})
    started = time.monotonic()
    try:
        response = http.request("POST", url, headers=headers, content=body, timeout=TIMEOUT)
    except http.BlockedDestination as exc:
        return Outcome(None, _ms(started), f"refused by the outbound guard: {exc}"[:MAX_ERROR])
    except Exception as exc:  # a timeout, a refused connection, a TLS failure
        return Outcome(None, _ms(started), f"{type(exc).__name__}: {exc}"[:MAX_ERROR])
    error = None if 200 <= response.status_code < 300 else \
        f"HTTP {response.status_code}: {response.text[:200]}"
    return Outcome(response.status_code, _ms(started), error)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _record(delivery_id: uuid.UUID, outcome: Outcome, now: datetime,
            manual: bool) -> EventAttempt | None:
    delivery = db.session.get(EventDelivery, delivery_id, populate_existing=True)
    if delivery is None:  # deleted with its subscription meanwhile
        db.session.rollback()
        return None
    attempt = EventAttempt(tenant_id=delivery.tenant_id, delivery_id=delivery.id,
                           attempted_at=now, status_code=outcome.status_code,
                           latency_ms=outcome.latency_ms, error=outcome.error, manual=manual)
    db.session.add(attempt)
    delivery.attempts += 1
    delivery.last_status_code, delivery.last_error = outcome.status_code, outcome.error
    retry_in: timedelta | None = None
    if outcome.ok:
        delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, now
        delivery.next_attempt_at = None
    elif delivery.status != DeliveryStatus.PENDING:
        delivery.next_attempt_at = None  # a redelivery of a settled one: no retries
    elif now - delivery.created_at >= MAX_AGE:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
        _give_up(delivery, now)
    else:
        retry_in = backoff(delivery.attempts)
        delivery.next_attempt_at = now + retry_in
    message = (delivery.tenant_id, delivery.id)
    db.session.commit()
    if retry_in is not None:
        announce([message], int(retry_in.total_seconds() * 1000))
    return attempt


# --------------------------------------------------------------------------- giving up


def _give_up(delivery: EventDelivery, now: datetime) -> None:
    """Disable the subscription (once) and write to the workspace's owners and admins."""
    subscription = db.session.get(EventSubscription, delivery.subscription_id)
    if subscription is None or not subscription.enabled:
        return
    subscription.enabled = False
    subscription.disabled_at = now
    subscription.disabled_reason = (f"deliveries failed for {MAX_AGE.days} day; last: "
                                    f"{delivery.last_error or 'no answer'}")[:500]
    outbox.forget()
    tenant = db.session.get(Tenant, subscription.tenant_id)
    link = domains.public_base_url(subscription.tenant_id) + page_links.path("events")
    for user in members.people_holding(subscription.tenant_id, [Role.OWNER, Role.ADMIN]):
        mail.queue_mail(user.email, "event_subscription_disabled", {
            "name": user.name, "workspace": tenant.name if tenant else "",
            "url": subscription.url, "error": delivery.last_error or "no answer",
            "event_type": delivery.event_type, "link": link,
        }, tenant_id=subscription.tenant_id)
    log.warning("events.subscription_disabled", subscription_id=str(subscription.id))


# --------------------------------------------------------------------------- sweeps


def due_ids(before: datetime, limit: int = 500) -> list[uuid.UUID]:
    """The scope tenant's pending deliveries due before `before`, of enabled subscriptions."""
    enabled = select(EventSubscription.id).where(EventSubscription.enabled.is_(True))
    return list(db.session.scalars(select(EventDelivery.id).where(
        EventDelivery.status == DeliveryStatus.PENDING,
        EventDelivery.subscription_id.in_(enabled),
        EventDelivery.next_attempt_at <= before)
        .order_by(EventDelivery.next_attempt_at).limit(limit)))


def send_due(now: datetime | None = None) -> int:
    """Attempt, here and now, every due delivery of the scope tenant; how many were tried
    (for `overture` commands and tests; workers use the actor)."""
    now = now or utcnow()
    tried = 0
    for delivery_id in due_ids(now + EARLY):
        tried += deliver(delivery_id, now=now) is not None
    return tried


def resend_due(now: datetime | None = None) -> int:
    """Hand the actor again every delivery overdue by RESEND_AFTER (its message was lost
    with the broker, or its worker died); how many left."""
    overdue = (now or utcnow()) - RESEND_AFTER
    messages = []
    for tenant in all_tenants():
        with scoped_to(tenant.id):
            messages += [(tenant.id, d) for d in due_ids(overdue)]
            db.session.rollback()
    return announce(messages)
