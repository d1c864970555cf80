"""Messages for step runs, sent only after the transaction that made the rows commits.

The rows are the outbox: a message lost between commit and send (or with Redis)
is re-sent by the sweeper, and a duplicate is dropped by the claim.

Sending never fails what committed. While the broker is unreachable a message that
cannot leave is left to the sweeper: its row is marked unsent (`enqueued_at` cleared,
so the sweeper's next round sends it rather than waiting out RESEND_AFTER), the
outage is logged once and shown by `overture_broker_unreachable`, and this process
skips the broker but for one attempt every few seconds until it answers again.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from overture.orchestration.models import StepRun, StepStatus
from overture.platform import after_commit as commit_hooks
from overture.platform import metrics
from overture.platform.db import tenant_transaction
from overture.platform.logging import get_logger
from overture.platform.outage import Outage

log = get_logger(__name__)

OUTBOX = "overture_outbox"
SENDER = "overture.step_sender"
BROKER_OUTAGE = "overture.broker_outage"
RETRY_EVERY = 2.0  # seconds between attempts to reach a broker that is down
Sender = Callable[[uuid.UUID, uuid.UUID, int | None], None]
Message = tuple[uuid.UUID, uuid.UUID, int | None]


def set_sender(app: Any, sender: Sender) -> None:
    """Where this app's messages go: its broker's step actor, bound at boot."""
    app.extensions[SENDER] = sender
    app.extensions[BROKER_OUTAGE] = Outage(
        "broker", retry_every=RETRY_EVERY, active=metrics.BROKER_UNREACHABLE,
        errors=metrics.BROKER_SEND_FAILURES)


def after_commit(session: Session, step_run_id: uuid.UUID, tenant_id: uuid.UUID,
                 delay_ms: int | None = None) -> None:
    commit_hooks.defer(session, OUTBOX, (step_run_id, tenant_id, delay_ms))


def send_now(step_run_id: uuid.UUID, tenant_id: uuid.UUID, delay_ms: int | None = None) -> bool:
    """Send the message of a committed row; False when it could not leave (the
    sweeper sends it)."""
    return not send_committed([(step_run_id, tenant_id, delay_ms)])


def send_committed(messages: list[Message]) -> list[Message]:
    """Send messages for rows already committed; returns those that could not leave,
    whose rows are left to the sweeper. Never raises: what committed stands."""
    if not messages or not has_app_context() or SENDER not in current_app.extensions:
        return []
    sender: Sender = current_app.extensions[SENDER]
    outage: Outage = current_app.extensions[BROKER_OUTAGE]
    unsent = []
    for message in messages:
        if not outage.worth_trying():
            metrics.BROKER_SEND_FAILURES.inc()
            unsent.append(message)
            continue
        try:
            sender(*message)
        except Exception as error:  # whatever the cause, the row waits for the sweeper
            outage.failed(error)
            unsent.append(message)
        else:
            outage.succeeded()
    if unsent:
        _mark_unsent(unsent)
    return unsent


def _mark_unsent(messages: list[Message]) -> None:
    """Clear `enqueued_at` of rows still queued whose message did not leave, so the
    sweeper's next round sends them. A row locked by a transaction still open is
    skipped rather than waited for; it keeps the sweeper's ordinary delay."""
    by_tenant: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for step_run_id, tenant_id, _ in messages:
        by_tenant[tenant_id].append(step_run_id)
    rows = StepRun.__table__
    try:
        for tenant_id, ids in by_tenant.items():
            still_queued = (select(rows.c.id)
                            .where(rows.c.id.in_(ids), rows.c.status == StepStatus.QUEUED)
                            .with_for_update(skip_locked=True))
            with tenant_transaction(tenant_id) as connection:
                connection.execute(update(rows).where(rows.c.id.in_(still_queued))
                                   .values(enqueued_at=None))
    except Exception:  # the database is unwell too: the sweeper still finds them later
        log.warning("dispatch.mark_unsent_failed", count=len(messages), exc_info=True)


def pending(session: Session) -> list[Any]:
    return commit_hooks.deferred(session, OUTBOX)


commit_hooks.register(OUTBOX, send_committed)
