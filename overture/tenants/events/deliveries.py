"""The delivery log of a subscription, redelivery from it, and a test `ping`.

A redelivery is a new attempt of the same delivery: the same `webhook-id` and the same
body, so a receiver that already took it can tell. Both act at once, in the request
(bounded by the sender's timeout), so the person who asked sees the answer.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

from sqlalchemy import select

from overture.platform import audit
from overture.platform.db import db, get_or_404, utcnow
from overture.tenants.access import Access
from overture.tenants.events import outbox, sender
from overture.tenants.events.models import EventAttempt, EventDelivery, EventSubscription
from overture.tenants.events.subscriptions import PERMISSION

MAX_LOG = 200


def list_deliveries(access: Access, subscription: EventSubscription,
                    limit: int = 50) -> list[EventDelivery]:
    access.require(PERMISSION)
    return list(db.session.scalars(select(EventDelivery)
                                   .where(EventDelivery.subscription_id == subscription.id)
                                   .order_by(EventDelivery.created_at.desc(),
                                             EventDelivery.id.desc())
                                   .limit(max(1, min(limit, MAX_LOG)))))


def attempts_of(deliveries: list[EventDelivery]) -> dict[uuid.UUID, list[EventAttempt]]:
    """Each delivery's attempts, oldest first."""
    found: dict[uuid.UUID, list[EventAttempt]] = defaultdict(list)
    if deliveries:
        for attempt in db.session.scalars(
                select(EventAttempt)
                .where(EventAttempt.delivery_id.in_([d.id for d in deliveries]))
                .order_by(EventAttempt.attempted_at, EventAttempt.created_at)):
            found[attempt.delivery_id].append(attempt)
    return found


def get_delivery(access: Access, delivery_id: str | uuid.UUID) -> EventDelivery:
    access.require(PERMISSION)
    return get_or_404(EventDelivery, delivery_id, "event delivery")


def redeliver(access: Access, delivery: EventDelivery,
              now: datetime | None = None) -> EventAttempt | None:
    access.require(PERMISSION)
    audit.record("event_delivery.redelivered", target_type="event_delivery",
                 target_id=delivery.id, details={"webhook_id": delivery.webhook_id})
    delivery_id = delivery.id
    db.session.commit()
    return sender.deliver(delivery_id, now=now, manual=True)


def ping(access: Access, subscription: EventSubscription,
         now: datetime | None = None) -> tuple[EventDelivery, EventAttempt | None]:
    """Send a `ping` event to the subscription now (enabled or not)."""
    access.require(PERMISSION)
    now = now or utcnow()
    body = outbox.body_of(outbox.PING, {"workspace_id": str(subscription.tenant_id),
                                        "subscription_id": str(subscription.id)}, now)
    delivery = outbox.queue(subscription, outbox.PING, body, subscription.tenant_id, now,
                            announce=False)
    delivery_id = delivery.id
    db.session.commit()
    attempt = sender.deliver(delivery_id, now=now, manual=True)
    return get_or_404(EventDelivery, delivery_id, "event delivery"), attempt
