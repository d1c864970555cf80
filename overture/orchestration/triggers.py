"""Connector triggers: an event starts a run once, however often it is seen.

Every event a trigger delivers carries a dedupe key. It is recorded as a
`TriggerEvent` under a unique (tenant, source, dedupe key) in the same transaction
as the run it starts, and the run's idempotency key is derived from it: a second
delivery of the same event (a webhook retried by its sender, two polls that race,
a cursor that went back) finds the record, or waits on the first writer's row and
then finds it, and starts nothing. An event may go by several keys (a signed webhook
call: the event id it names and the delivery its signature vouches for); it starts one
run if any of them was seen.

Polling triggers are subscriptions of a workflow to a connection's trigger. The
scheduler polls the due ones (`poll_all`); a subscription is claimed by moving its
next poll time with a compare-and-set, so two schedulers seldom poll it twice, and
the dedupe record makes a double poll harmless anyway.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from overture.connectors import polling, registry
from overture.connectors.library.webhook import canonical_event_id
from overture.connectors.models import Connection, TriggerEvent
from overture.orchestration import runs
from overture.orchestration.models import Run, Workflow
from overture.orchestration.trigger_models import TriggerSubscription
from overture.platform import audit
from overture.platform.db import db, get_or_404, scoped_to, utcnow
from overture.platform.errors import Conflict, OvertureError, PaymentRequired, ValidationFailed
from overture.platform.logging import get_logger
from overture.platform.pagination import Page, paginate
from overture.platform.webhook_signing import SignedDelivery
from overture.tenants.lifecycle import all_tenants

log = get_logger(__name__)

MIN_INTERVAL = 15
MAX_INTERVAL = 86_400
DEFAULT_INTERVAL = 300
POLL_TIMEOUT = 30.0
DUE_PER_ROUND = 100
WEBHOOK_CONNECTOR, WEBHOOK_TRIGGER = "webhook", "event"


# --------------------------------------------------------------------------- events


def run_key(source: str, dedupe_key: str) -> str:
    """The idempotency key of the run an event starts (fits the 200-character column)."""
    return "event:" + hashlib.sha256(f"{source}\n{dedupe_key}".encode()).hexdigest()


def record_event(source: str, dedupe_key: str) -> TriggerEvent | None:
    """Record an event; None if it was recorded before (by this or a concurrent
    transaction: the unique key makes the second writer wait, then fail)."""
    event = TriggerEvent(source=source, dedupe_key=polling.dedupe_key(dedupe_key))
    try:
        with db.session.begin_nested():
            db.session.add(event)
            db.session.flush()
    except IntegrityError:
        return None
    return event


def start_once(workflow: Workflow, source: str, dedupe_keys: Sequence[str], input: Any,
               trigger: str, idempotency_key: str | None = None,
               check_schema: bool = False) -> tuple[Run, bool]:
    """Start the run of one event, unless any of its keys was seen: then (its run, False).

    Keys are recorded in one order (sorted), so two requests that share some of them
    wait on each other instead of deadlocking. A caller's `idempotency_key` is held to
    its first input (another input under it is refused); the key derived from the event
    is not: a sender may redeliver an event with a changed body, and it is still that
    event. With `check_schema` the input must fit the version's input schema (a hosted
    form's submission), as `runs.start_run` checks it.
    The caller commits; the event records and the run commit together."""
    keys = sorted({polling.dedupe_key(k) for k in dedupe_keys})
    if not keys:
        raise ValueError("an event needs a dedupe key")
    recorded: list[TriggerEvent] = []
    for key in keys:
        event = record_event(source, key)
        if event is not None:
            recorded.append(event)
            continue
        seen = db.session.scalars(select(TriggerEvent).where(
            TriggerEvent.source == source, TriggerEvent.dedupe_key == key)).one_or_none()
        run = db.session.get(Run, seen.run_id) if seen is not None and seen.run_id else None
        if run is not None:
            _attach(recorded, run)  # its other names now lead to the same run
            return run, False
    run, created = runs.start_run(workflow, input, trigger,
                                  idempotency_key=idempotency_key or run_key(source, keys[0]),
                                  check_reuse=idempotency_key is not None,
                                  check_schema=check_schema)
    _attach(recorded, run)
    return run, created


def _attach(events: list[TriggerEvent], run: Run) -> None:
    for event in events:
        event.run_id = run.id


def webhook_event_keys(headers: Mapping[str, str], payload: Any,
                       signed: SignedDelivery | None = None) -> list[str]:
    """The dedupe keys of a webhook call, [] if it names no event.

    One namespace of delivery ids (`id:`) whichever header or body field carried one
    (see the webhook connector), plus, for a signed call, what its signature vouches
    for: the signed `webhook-id`, or (`X-Overture-Signature`, which signs no id) the
    signed content itself. An unsigned header cannot then make a replayed call new."""
    keys = []
    connector = registry.find(WEBHOOK_CONNECTOR)
    trigger = connector.trigger(WEBHOOK_TRIGGER) if connector else None
    if trigger is not None:
        named = trigger.dedupe_key({"headers": dict(headers.items()), "body": payload})
        if named:
            keys.append("id:" + named)
    if signed is not None and signed.message_id is not None:
        keys.append("id:" + canonical_event_id(signed.message_id))
    elif signed is not None:
        keys.append("signed:" + signed.digest)
    return list(dict.fromkeys(keys))


# --------------------------------------------------------------------------- subscriptions


def _interval(seconds: Any) -> int:
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not (
            MIN_INTERVAL <= seconds <= MAX_INTERVAL):
        raise ValidationFailed.field("interval_seconds", f"whole seconds from {MIN_INTERVAL} "
                                                         f"to {MAX_INTERVAL}")
    return seconds


def create_subscription(workflow: Workflow, connection_id: Any, trigger_key: str,
                        interval_seconds: int = DEFAULT_INTERVAL, enabled: bool = True,
                        created_by: uuid.UUID | None = None) -> TriggerSubscription:
    """Subscribe the workflow to a connection's polling trigger; the first poll is due
    at once (it usually only notes where the app stands)."""
    try:
        connection = get_or_404(Connection, connection_id, "connection")
    except OvertureError as exc:
        raise ValidationFailed.field("connection_id", "no such connection") from exc
    polling.polling_trigger(connection.connector_key, trigger_key)
    subscription = TriggerSubscription(
        workflow_id=workflow.id, connection_id=connection.id, trigger_key=trigger_key,
        interval_seconds=_interval(interval_seconds), enabled=enabled, state={},
        next_poll_at=utcnow(), created_by_id=created_by)
    try:
        with db.session.begin_nested():
            db.session.add(subscription)
            db.session.flush()
    except IntegrityError as exc:
        raise Conflict("the workflow already subscribes to this trigger of this "
                       "connection") from exc
    audit.record("trigger.subscribed", target_type="trigger_subscription",
                 target_id=subscription.id,
                 details={"workflow_id": str(workflow.id), "connection_id": str(connection.id),
                          "trigger": f"{connection.connector_key}.{trigger_key}",
                          "interval_seconds": subscription.interval_seconds})
    return subscription


def list_subscriptions(cursor: str | None, limit: int | None,
                       workflow_id: uuid.UUID | None = None) -> Page[TriggerSubscription]:
    stmt = select(TriggerSubscription)
    if workflow_id is not None:
        stmt = stmt.where(TriggerSubscription.workflow_id == workflow_id)
    return paginate(stmt, TriggerSubscription.id, cursor, limit)


def get_subscription(subscription_id: Any) -> TriggerSubscription:
    return get_or_404(TriggerSubscription, subscription_id, "trigger subscription")


def update_subscription(subscription: TriggerSubscription, *, enabled: bool | None = None,
                        interval_seconds: int | None = None) -> TriggerSubscription:
    changed: dict[str, Any] = {}
    if interval_seconds is not None:
        subscription.interval_seconds = changed["interval_seconds"] = _interval(interval_seconds)
    if enabled is not None:
        subscription.enabled = changed["enabled"] = enabled
        if enabled:
            subscription.next_poll_at = utcnow()
    audit.record("trigger.updated", target_type="trigger_subscription",
                 target_id=subscription.id, details=changed)
    return subscription


def delete_subscription(subscription: TriggerSubscription) -> None:
    audit.record("trigger.unsubscribed", target_type="trigger_subscription",
                 target_id=subscription.id,
                 details={"workflow_id": str(subscription.workflow_id)})
    db.session.delete(subscription)


# --------------------------------------------------------------------------- polling


def source_of(subscription_id: uuid.UUID) -> str:
    """Events are deduplicated per subscription: two workflows watching one mailbox
    each get their run."""
    return f"subscription:{subscription_id}"


def poll_subscription(subscription_id: Any, now: datetime | None = None) -> int:
    """Poll one subscription of the scope tenant now; returns how many runs it started.
    A failure to reach the app is kept on the subscription (`last_error`)."""
    now = now or utcnow()
    subscription = get_subscription(subscription_id)
    workflow = db.session.get(Workflow, subscription.workflow_id)
    if workflow is None or workflow.archived_at is not None or not workflow.current_version_id:
        subscription.last_error = "the workflow is archived or has no published version"
        subscription.last_polled_at = now
        db.session.commit()
        return 0
    connection = db.session.get(Connection, subscription.connection_id)
    sub_id, trigger_key = subscription.id, subscription.trigger_key
    try:
        assert connection is not None  # the foreign key cascades
        result = polling.poll(connection, trigger_key, dict(subscription.state or {}),
                              POLL_TIMEOUT)
    except OvertureError as failure:  # ActionFailed, or the connector is gone
        db.session.rollback()
        reason = getattr(failure, "reason", failure.code)
        log.warning("trigger.poll_failed", subscription=str(sub_id), reason=reason)
        subscription = get_subscription(sub_id)
        subscription.last_error = f"{reason}: {failure.detail}"[:1000]
        subscription.last_polled_at = now
        db.session.commit()
        return 0
    started = 0
    workflow = db.session.get(Workflow, subscription.workflow_id)
    assert workflow is not None
    try:
        for key, event in result.events:
            _, created = start_once(workflow, source_of(sub_id), [key], event, "polling")
            started += int(created)
    except PaymentRequired as refused:  # keep the app's events for a later poll
        return _refused(sub_id, refused, now)
    subscription = get_subscription(sub_id)
    subscription.state = result.state
    subscription.last_polled_at, subscription.last_error = now, None
    db.session.commit()
    return started


def _refused(sub_id: uuid.UUID, refused: PaymentRequired, now: datetime) -> int:
    """A limit or the standing refused the runs: none of this poll's start, its state
    stays where it was (the next poll sees the same events), and the refusal is kept
    on the subscription and audited."""
    db.session.rollback()
    log.warning("trigger.runs_refused", subscription=str(sub_id), problem=refused.code)
    subscription = get_subscription(sub_id)
    subscription.last_error = f"{refused.code}: {refused.detail}"[:1000]
    subscription.last_polled_at = now
    audit.record("trigger.runs_refused", target_type="trigger_subscription",
                 target_id=sub_id, details={"problem": refused.code, "detail": refused.detail})
    db.session.commit()
    return 0


def poll_due(now: datetime | None = None) -> int:
    """Poll every due subscription of the scope tenant that this process claims."""
    now = now or utcnow()
    due = db.session.execute(
        select(TriggerSubscription.id, TriggerSubscription.next_poll_at,
               TriggerSubscription.interval_seconds)
        .where(TriggerSubscription.enabled.is_(True), TriggerSubscription.next_poll_at <= now)
        .order_by(TriggerSubscription.next_poll_at).limit(DUE_PER_ROUND)).all()
    db.session.commit()
    started = 0
    for sub_id, seen, interval in due:
        claimed = db.session.execute(
            update(TriggerSubscription)
            .where(TriggerSubscription.id == sub_id, TriggerSubscription.next_poll_at == seen)
            .values(next_poll_at=now + timedelta(seconds=interval))
            .execution_options(synchronize_session=False)).rowcount
        db.session.commit()
        if not claimed:
            continue  # another scheduler took it
        try:
            started += poll_subscription(sub_id, now)
        except Exception:  # one broken subscription must not stop the others
            log.exception("trigger.poll_crashed", subscription=str(sub_id))
            db.session.rollback()
    return started


def poll_all() -> int:
    started = 0
    for tenant in all_tenants():
        if tenant.status != "active":
            continue
        with scoped_to(tenant.id):
            started += poll_due()
    return started
