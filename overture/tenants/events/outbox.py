"""Writing events: `emit` adds one delivery row per matching subscription to the
caller's session, in the transaction of the fact it reports (a rolled-back fact sends
nothing; a committed one is never lost). The rows are announced to the sender once the
transaction commits.

The engine calls `emit` for every run, so a tenant that subscribes to nothing must pay
nothing: `wanted` answers from a per-process cache (CACHE_SECONDS) which event types the
tenant, or its agency for all its clients, has enabled subscriptions for. A change made
in this process clears the cache at once; other processes see it within CACHE_SECONDS.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from overture.platform import after_commit
from overture.platform.db import current_tenant_id, db, in_tenant, utcnow
from overture.tenants.events.models import DeliveryStatus, EventDelivery, EventSubscription
from overture.tenants.models import Tenant

EVENT_TYPES = ("run.started", "run.succeeded", "run.failed", "approval.requested",
               "approval.decided", "budget.threshold", "workflow.published")
PING = "ping"
ANNOUNCE = "overture_event_deliveries"
CACHE_SECONDS = 30.0

_cache: dict[uuid.UUID, tuple[float, frozenset[str]]] = {}
_lock = threading.Lock()


def forget() -> None:
    """Drop the cache (a subscription changed)."""
    with _lock:
        _cache.clear()


def wanted(tenant_id: uuid.UUID, event_type: str) -> bool:
    """Does any enabled subscription want this tenant's `event_type`? Cached."""
    now = time.monotonic()
    cached = _cache.get(tenant_id)
    if cached is None or cached[0] < now:
        idle = not db.session().in_transaction()
        cached = (now + CACHE_SECONDS, _types_for(tenant_id))
        if idle:  # the engine's direct path asks between transactions: leave none open
            db.session.rollback()
        with _lock:
            _cache[tenant_id] = cached
    return bool(cached[1]) and ("*" in cached[1] or event_type in cached[1])


def _types_for(tenant_id: uuid.UUID) -> frozenset[str]:
    types: set[str] = set()
    for subscription in _subscribers(tenant_id):
        types.update(subscription.event_types)
    return frozenset(types)


def _subscribers(tenant_id: uuid.UUID) -> list[EventSubscription]:
    """The enabled subscriptions that hear of this tenant's events: its own, and its
    agency's that include the clients (read in the agency's scope)."""
    with in_tenant(tenant_id):
        found = list(db.session.scalars(select(EventSubscription).where(
            EventSubscription.enabled.is_(True))))
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is not None and tenant.parent_id is not None:
        with in_tenant(tenant.parent_id):
            found += db.session.scalars(select(EventSubscription).where(
                EventSubscription.enabled.is_(True),
                EventSubscription.include_clients.is_(True)))
    return found


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _plain(value: object) -> str:
    """JSON for what json does not know: times in ISO 8601 (UTC, `Z`), the rest as text
    (ids, Decimals: money stays exact)."""
    return _iso(value) if isinstance(value, datetime) else str(value)


def body_of(event_type: str, data: dict[str, Any], at: datetime) -> str:
    return json.dumps({"type": event_type, "timestamp": _iso(at), "data": data},
                      separators=(",", ":"), sort_keys=True, default=_plain)


def emit(event_type: str, data: dict[str, Any], *, tenant_id: uuid.UUID | None = None,
         now: datetime | None = None) -> list[EventDelivery]:
    """Queue `event_type` of the tenant (the scope's by default) for every subscription
    that wants it, in the caller's transaction; the caller commits."""
    tenant_id = tenant_id or current_tenant_id()
    if tenant_id is None or not wanted(tenant_id, event_type):
        return []
    at = now or utcnow()
    body = body_of(event_type, {"workspace_id": str(tenant_id), **data}, at)
    db.session.flush()  # the caller's rows belong to its scope: write them before switching
    rows = [queue(subscription, event_type, body, tenant_id, at)
            for subscription in _subscribers(tenant_id) if subscription.wants(event_type)]
    return rows


def announce_waiting(subscription: EventSubscription) -> None:
    """After the commit, hand the sender every pending delivery of the subscription
    (turned back on: the deliveries that waited while it was off go now)."""
    for delivery_id in db.session.scalars(select(EventDelivery.id).where(
            EventDelivery.subscription_id == subscription.id,
            EventDelivery.status == DeliveryStatus.PENDING)):
        after_commit.defer(db.session(), ANNOUNCE, (subscription.tenant_id, delivery_id))


def queue(subscription: EventSubscription, event_type: str, body: str,
          source_tenant_id: uuid.UUID, at: datetime, announce: bool = True) -> EventDelivery:
    """One delivery row, in the subscription's tenant (flushed there)."""
    with in_tenant(subscription.tenant_id):
        row = EventDelivery(id=uuid.uuid4(), tenant_id=subscription.tenant_id,
                            subscription_id=subscription.id, event_type=event_type,
                            source_tenant_id=source_tenant_id, body=body,
                            status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=at)
        db.session.add(row)
        db.session.flush()
    if announce:
        after_commit.defer(db.session(), ANNOUNCE, (subscription.tenant_id, row.id))
    return row
